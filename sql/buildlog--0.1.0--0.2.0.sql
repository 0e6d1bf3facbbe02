-- buildlog 0.1.0 -> 0.2.0: hardening against hostile input and operator
-- mistakes (issue 8).  CREATE EXTENSION buildlog installs 0.1.0 and applies
-- this script, so every install runs the upgrade path.
\echo Use "ALTER EXTENSION buildlog UPDATE TO '0.2.0'" to load this file. \quit

-- ------------------------------------------------ stored data and redaction

create function buildlog.redact(job_id bigint, pattern text,
                                replacement text default '[REDACTED]',
                                flags text default 'g')
returns int
language c volatile parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_redact';
comment on function buildlog.redact(bigint, text, text, text) is
  'Edit a stored log (e.g. a leaked secret): merges pending parts, restores a purged log, rewrites the head and each part with regexp_replace(pattern, replacement, flags), keeps the part offsets consistent and re-archives the log over the old object. Returns the parts changed; NULL for an unknown job.';

-- ------------------------------------------------ aggregation and maintenance

-- Per-job back-off of the scheduler: a job whose aggregation fails is
-- retried later and later, and never crowds out healthy due jobs.
alter table buildlog.logs
  add column aggregate_failures int not null default 0,
  add column aggregate_error text,
  add column aggregate_retry_at timestamptz;
comment on column buildlog.logs.aggregate_failures is 'Consecutive failed aggregations by the scheduler (0 after a success).';
comment on column buildlog.logs.aggregate_error is 'Error of the last failed aggregation by the scheduler.';
comment on column buildlog.logs.aggregate_retry_at is 'The scheduler does not try to aggregate this job again before this time.';
create index logs_aggregate_failing on buildlog.logs (aggregate_retry_at)
  where aggregate_retry_at is not null;

create or replace function buildlog.aggregatable(max int default 500) returns table (job_id bigint)
language sql stable parallel safe
as $$
  with cutoffs as (
    select now() - pg_catalog.current_setting('buildlog.aggregate_delay')::interval as due,
           now() - pg_catalog.current_setting('buildlog.aggregate_force_after')::interval as stale
  ), due as (
    select p.job_id, min(p.created_at) as since
      from buildlog.log_parts p, cutoffs c
     where (p.final or p.late) and p.created_at < c.due
     group by p.job_id
    union all
    select p.job_id, min(p.created_at)
      from buildlog.log_parts p, cutoffs c
     where p.created_at < c.stale
       and not exists (select 1 from buildlog.log_parts q
                        where q.job_id = p.job_id and q.created_at >= c.stale)
     group by p.job_id
  )
  select d.job_id
    from due d left join buildlog.logs l on l.job_id = d.job_id
   where l.aggregate_retry_at is null or l.aggregate_retry_at <= now()
   group by d.job_id, l.aggregate_failures
   order by coalesce(l.aggregate_failures, 0) > 0, min(d.since), d.job_id
   limit max
$$;
comment on function buildlog.aggregatable(int) is
  'Jobs due for aggregation: a final (or late) part older than buildlog.aggregate_delay, or the newest part older than buildlog.aggregate_force_after; healthy jobs first, oldest first; jobs whose aggregation failed only once their aggregate_retry_at has passed.';

create function buildlog.aggregate_failed(job_id bigint, error text) returns timestamptz
language sql volatile parallel unsafe
as $$
  update buildlog.logs l
     set aggregate_failures = l.aggregate_failures + 1,
         aggregate_error = aggregate_failed.error,
         aggregate_retry_at = now() + least(interval '1 hour',
                                            interval '1 second' * power(2, least(l.aggregate_failures, 12)))
   where l.job_id = aggregate_failed.job_id
  returning l.aggregate_retry_at
$$;
comment on function buildlog.aggregate_failed(bigint, text) is
  'Record a failed aggregation of a job (the scheduler calls it): counts it, keeps the error and backs the job off, 1 s doubling up to 1 h. Returns when it is tried again.';

-- pg_partman must not maintain log_parts on its own (its background worker
-- or a cron job calling partman.run_maintenance() without buildlog's lock
-- timeout and retries would stall writers, and would drop partitions that
-- still hold parts that were never aggregated): buildlog.run_maintenance()
-- owns it.
update partman.part_config set automatic_maintenance = 'off'
 where parent_table = 'buildlog.log_parts';

drop function buildlog.run_maintenance(int);
create function buildlog.run_maintenance(attempts int default 5,
                                         out created text[], out dropped text[],
                                         out kept text[], out kept_parts bigint,
                                         out rejected_deleted bigint, out tries int)
language plpgsql volatile
as $$
declare
  before text[];
  done boolean := false;
  expired text[];
  keep_for interval;
  empties text[];
  child text;
  n bigint;
  message text;
  backoff float8 := 0.05;
  caller_path text := pg_catalog.current_setting('search_path');
begin
  -- a pinned search_path (not a SET clause: pg_partman restores the path it
  -- found with a session-level set_config(), which would outlive the call)
  perform pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
  if attempts is null or attempts < 1 then
    raise exception 'attempts must be at least 1'
      using errcode = 'invalid_parameter_value';
  end if;
  -- one maintenance at a time; a second caller waits for the first
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('buildlog.run_maintenance'));
  select coalesce(pg_catalog.array_agg(c.oid::regclass::text order by c.oid), '{}') into before
    from pg_catalog.pg_inherits i join pg_catalog.pg_class c on c.oid = i.inhrelid
   where i.inhparent = 'buildlog.log_parts'::regclass;
  select cfg.retention::interval into keep_for
    from partman.part_config cfg where cfg.parent_table = 'buildlog.log_parts';

  for attempt in 1..attempts loop
    tries := attempt;
    kept := '{}';
    kept_parts := 0;
    begin
      perform pg_catalog.set_config('lock_timeout',
                                    pg_catalog.current_setting('buildlog.maintenance_lock_timeout'), true);
      select coalesce(pg_catalog.array_agg(s.partition_schemaname || '.' || s.partition_tablename), '{}')
        into expired
        from partman.show_partitions('buildlog.log_parts') s,
             partman.show_partition_info(s.partition_schemaname || '.' || s.partition_tablename,
                                         p_parent_table := 'buildlog.log_parts') info
       where keep_for is not null and info.child_end_time < now() - keep_for;
      -- an expired partition holding parts that were never aggregated is
      -- kept (aggregation still needs them); the others are dropped
      empties := '{}';
      foreach child in array expired loop
        execute pg_catalog.format('select count(*) from %s', child::regclass) into n;
        if n > 0 then
          kept := kept || child;
          kept_parts := kept_parts + n;
        else
          empties := empties || child;
        end if;
      end loop;
      -- dropping needs ACCESS EXCLUSIVE on log_parts: queue for it here,
      -- under lock_timeout, so a timeout raises a clean lock_not_available
      if pg_catalog.cardinality(empties) > 0 then
        lock table buildlog.log_parts in access exclusive mode;
      end if;
      -- pg_partman premakes; it must not drop (retention is applied below)
      update partman.part_config set retention = null
       where parent_table = 'buildlog.log_parts';
      perform partman.run_maintenance(p_parent_table := 'buildlog.log_parts',
                                      p_analyze := false, p_jobmon := false);
      perform pg_catalog.set_config('search_path', caller_path, false);
      perform pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
      update partman.part_config set retention = keep_for::text
       where parent_table = 'buildlog.log_parts';
      foreach child in array empties loop
        execute pg_catalog.format('select count(*) from %s', child::regclass) into n;
        if n > 0 then
          kept := kept || child;
          kept_parts := kept_parts + n;
        else
          execute pg_catalog.format('drop table %s', child::regclass);
        end if;
      end loop;
      done := true;
    exception
      when lock_not_available then
        null;
      when others then
        -- pg_partman re-raises lock timeouts as P0001 with the original text
        get stacked diagnostics message = message_text;
        if message not like '%lock timeout%' then
          raise;
        end if;
    end;
    exit when done;
    if attempt < attempts then
      perform pg_catalog.pg_sleep(backoff * (1 + pg_catalog.random()));
      backoff := least(backoff * 2, 2.0);
    end if;
  end loop;

  if not done then
    raise exception 'partition maintenance of buildlog.log_parts gave up after % attempts', attempts
      using errcode = 'lock_not_available',
            detail = format('Each attempt waited at most %s for its locks.',
                            pg_catalog.current_setting('buildlog.maintenance_lock_timeout')),
            hint = 'A long transaction holds a lock on buildlog.log_parts (see pg_locks); the next run retries.';
  end if;
  if kept_parts > 0 then
    raise warning 'kept % expired partition(s) of buildlog.log_parts holding % part(s) that were never aggregated', pg_catalog.cardinality(kept), kept_parts
      using detail = format('Partitions: %s.', pg_catalog.array_to_string(kept, ', ')),
            hint = 'See why their jobs do not aggregate: SELECT job_id, aggregate_error FROM buildlog.logs WHERE aggregate_failures > 0.';
  end if;

  -- rejected deliveries past buildlog.rejected_retention
  rejected_deleted := 0;
  if coalesce(pg_catalog.current_setting('buildlog.rejected_retention', true), '14d')::interval > interval '0' then
    delete from buildlog.rejected_parts r
     where r.received_at < now() - coalesce(pg_catalog.current_setting('buildlog.rejected_retention', true), '14d')::interval;
    get diagnostics rejected_deleted = row_count;
  end if;

  select coalesce(pg_catalog.array_agg(n_ order by n_), '{}') into created
    from (select c.oid::regclass::text as n_
            from pg_catalog.pg_inherits i join pg_catalog.pg_class c on c.oid = i.inhrelid
           where i.inhparent = 'buildlog.log_parts'::regclass) now_
   where n_ <> all (before);
  select coalesce(pg_catalog.array_agg(b.n_ order by b.n_), '{}') into dropped
    from pg_catalog.unnest(before) as b(n_)
   where pg_catalog.to_regclass(b.n_) is null;
  -- the pinned path was set for the transaction (is_local): hand the
  -- caller's back, or a caller inside a longer transaction keeps ours
  perform pg_catalog.set_config('search_path', caller_path, true);
end
$$;
comment on function buildlog.run_maintenance(int) is
  'Partition maintenance of log_parts under lock_timeout = buildlog.maintenance_lock_timeout, retried with back-off: pg_partman premakes, expired partitions are dropped only when they hold no un-aggregated part (kept otherwise, with a warning), rejected_parts older than buildlog.rejected_retention are deleted.';
revoke execute on function buildlog.run_maintenance(int) from public;

-- A restored dump must go on numbering rejected deliveries after the last one.
select pg_catalog.pg_extension_config_dump('buildlog.rejected_parts_id_seq', '');
-- The partitions CREATE EXTENSION made (like those maintenance makes later)
-- are ordinary tables, not members of the extension: pg_dump dumps their
-- rows, the pending parts, which it skipped as extension members.
do $$
declare
  child regclass;
begin
  for child in
    select i.inhrelid::regclass
      from pg_catalog.pg_inherits i
      join pg_catalog.pg_depend d on d.classid = 'pg_catalog.pg_class'::regclass
                                 and d.objid = i.inhrelid and d.deptype = 'e'
                                 and d.refclassid = 'pg_catalog.pg_extension'::regclass
                                 and d.refobjid = (select oid from pg_catalog.pg_extension
                                                    where extname = 'buildlog')
     where i.inhparent = 'buildlog.log_parts'::regclass
  loop
    execute pg_catalog.format('alter extension buildlog drop table %s', child);
  end loop;
end
$$;

-- ------------------------------------------------ ingest

-- ------------------------------------------------ drain

-- drain_stats gains split_retries (failed pieces retried in halves) and
-- error_rejected (single deliveries kept aside because writing them raised
-- an ERROR); a function's OUT columns cannot be changed in place.
drop view buildlog.drain_stats;
drop function buildlog.drain_worker_stats();
create function buildlog.drain_worker_stats(
  out worker int, out pid int, out queues text, out connected boolean,
  out connected_since timestamptz, out deliveries bigint, out parts bigint,
  out rejected bigint, out replaced bigint, out batches bigint, out mean_batch float8,
  out max_batch bigint, out last_commit timestamptz, out reconnects bigint,
  out failed_batches bigint, out split_retries bigint, out error_rejected bigint,
  out last_error text, out last_error_at timestamptz)
returns setof record
language c volatile parallel restricted
as 'MODULE_PATHNAME', 'buildlog_drain_stats';
comment on function buildlog.drain_worker_stats() is
  'Counters of the running drain workers, from shared memory (see the view buildlog.drain_stats).';

create view buildlog.drain_stats as select * from buildlog.drain_worker_stats();
comment on view buildlog.drain_stats is
  'One row per running drain worker: queues, connection, deliveries, parts written, rejected (error_rejected: because writing them raised an ERROR), batches, failed write transactions, split retries, last commit, reconnects, last error.';

-- wire-format parser (issue 8, items 6-8): parse_message also reports the
-- U+FFFD substitutions, and its reference parser is no longer jansson
drop function buildlog.parse_message(bytea, boolean);
create function buildlog.parse_message(body bytea, reference boolean default false,
  out ok boolean, out job_id bigint, out number int, out final boolean, out content text,
  out reason text, out replaced int)
returns record
language c stable strict parallel safe
as 'MODULE_PATHNAME', 'buildlog_parse_message';
comment on function buildlog.parse_message(bytea, boolean) is
  'What the drain makes of a delivery body, without writing it: the part (ok) with the number of U+FFFD substitutions in its content (replaced), or the reason it would be rejected. Check a fixed body before buildlog.replay_rejected(). reference = true parses with the reference parser only (tests compare it with the fast scanner).';

-- ------------------------------------------------ archive and S3

-- Removal deletes the archive (issue 8, item 12): set_content() on a log
-- whose object may exist records a pending deletion in the row; the archive
-- workers DELETE the object, prove it gone (HEAD 404) and stamp it.  The
-- state lives in the row, so it survives restarts and S3 outages.
alter table buildlog.logs
  add column archive_gzip boolean,
  add column archive_object boolean not null default false,
  add column archive_delete_since timestamptz,
  add column archive_delete_attempts int not null default 0,
  add column archive_delete_after timestamptz,
  add column archive_deleted_at timestamptz;
update buildlog.logs set archive_object = true
 where archived_at is not null or purged_at is not null;
comment on column buildlog.logs.archive_gzip is 'Whether the archive was stored gzip-compressed (NULL: not archived, or archived before 0.2.0).';
comment on column buildlog.logs.archive_object is 'An archive object may exist at the job''s key (set by an upload, cleared once a deletion was proven).';
comment on column buildlog.logs.archive_delete_since is 'A removal (set_content) asked for the archive object to be deleted; NULL when no deletion is pending.';
comment on column buildlog.logs.archive_delete_attempts is 'Failed attempts of the pending deletion (S3 down, object still there); the next waits longer.';
comment on column buildlog.logs.archive_delete_after is 'The next attempt of the pending deletion is not made before this time.';
comment on column buildlog.logs.archive_deleted_at is 'When the archive object was last proven deleted (DELETE, then HEAD 404).';
create index logs_to_delete on buildlog.logs (archive_delete_since)
  where archive_delete_since is not null;

create function buildlog.s3_client_stats(out requests bigint, out received_bytes bigint)
returns record
language c volatile parallel restricted
as 'MODULE_PATHNAME', 'buildlog_s3_client_stats';
comment on function buildlog.s3_client_stats() is
  'What the S3 client did in this session: requests sent and body bytes of successful GET responses received (range reads of purged logs fetch only what parts(job, after) needs).';
revoke execute on function buildlog.s3_client_stats() from public;

create or replace view buildlog.archive_stats as
  select w.*, q.queued, d.deletions_pending, d.deleted
    from buildlog.archive_worker_stats() w,
         (select count(*) as queued from buildlog.logs
           where content is not null and archived_at is null) q,
         (select count(*) filter (where archive_delete_since is not null) as deletions_pending,
                 count(*) filter (where archive_deleted_at is not null) as deleted
            from buildlog.logs) d;
comment on view buildlog.archive_stats is
  'Archive workers: log in flight, archived, bytes and bytes/s while uploading, verified, purged, re-uploads (archive missing or different), retries (S3 unreachable, 5xx), failures (4xx, errors), last error; queued = logs waiting for an upload; deletions_pending = removed logs whose archive object is still to be deleted; deleted = logs whose archive object was proven deleted.';

create or replace view buildlog.lifecycle as
  select (select count(distinct p.job_id) from buildlog.log_parts p
           where not exists (select 1 from buildlog.logs l
                              where l.job_id = p.job_id and l.aggregated_at is not null)) as streaming,
         (select count(*) from buildlog.aggregatable(2147483647)) as due,
         count(*) filter (where content is not null and archived_at is null) as aggregated,
         count(*) filter (where archived_at is not null and purged_at is null) as archived,
         count(*) filter (where verified_at is not null) as verified,
         count(*) filter (where purged_at is not null) as purged,
         count(*) filter (where removed_at is not null) as removed,
         count(*) filter (where archive_delete_since is not null) as deleting,
         (select count(*) from buildlog.log_parts p, partman.part_config c
           where c.parent_table = 'buildlog.log_parts' and c.retention is not null
             and p.created_at < now() - c.retention::interval) as expired_parts
    from buildlog.logs;
comment on view buildlog.lifecycle is
  'How many logs are streaming (parts, never aggregated), due for aggregation, aggregated (waiting for the archive), archived (waiting for verification and purge), verified, purged, removed, deleting (removed or replaced, the old archive object not yet proven deleted), and expired_parts (parts older than the retention that were never aggregated: maintenance keeps their partitions).';

-- ------------------------------------------------ monitoring

-- ------------------------------------------------ privileges and search_path

revoke execute on function buildlog.redact(bigint, text, text, text) from public;
revoke execute on function buildlog.aggregate_failed(bigint, text) from public;

-- Every function that runs SQL resolves names through a pinned search_path:
-- a database owner who sets search_path = evil, pg_catalog must not get a
-- planted evil.now() or evil.= run by a superuser (the workers) calling them.
do $$
declare
  f regprocedure;
begin
  foreach f in array array[
    'buildlog.write_parts(bigint[], int[], text[], bool[])',
    'buildlog.write_raw_parts(bigint[], int[], bytea[], bool[])',
    'buildlog.log(bigint)',
    'buildlog.fetch(bigint)',
    'buildlog.parts(bigint, int)',
    'buildlog.aggregate(bigint)',
    'buildlog.aggregatable(int)',
    'buildlog.aggregate_failed(bigint, text)',
    'buildlog.set_content(bigint, text, bigint)',
    'buildlog.replay_rejected(bigint, bytea)',
    'buildlog.redact(bigint, text, text, text)'
  ]::regprocedure[] loop
    execute pg_catalog.format('alter function %s set search_path = pg_catalog, pg_temp', f);
  end loop;
end
$$;
