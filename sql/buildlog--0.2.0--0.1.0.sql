-- buildlog 0.2.0 -> 0.1.0: the way back, for DBAs who revert (the sqitch
-- change buildlog_0.2.0 uses it).  Data kept; what 0.2.0 added is dropped.
\echo Use "ALTER EXTENSION buildlog UPDATE TO '0.1.0'" to load this file. \quit

-- ------------------------------------------------ privileges and search_path
do $$
declare
  f regprocedure;
begin
  for f in
    select p.oid::regprocedure from pg_catalog.pg_proc p
     where p.pronamespace = 'buildlog'::regnamespace and p.proconfig is not null
  loop
    execute pg_catalog.format('alter function %s reset all', f);
  end loop;
end
$$;

-- ------------------------------------------------ archive and S3
drop view buildlog.archive_stats;
drop view buildlog.lifecycle;
drop function buildlog.s3_client_stats();
drop index buildlog.logs_to_delete;
alter table buildlog.logs
  drop column archive_gzip,
  drop column archive_object,
  drop column archive_delete_since,
  drop column archive_delete_attempts,
  drop column archive_delete_after,
  drop column archive_deleted_at;
create view buildlog.archive_stats as
  select w.*, q.queued
    from buildlog.archive_worker_stats() w,
         (select count(*) as queued from buildlog.logs
           where content is not null and archived_at is null) q;
comment on view buildlog.archive_stats is
  'Archive workers: log in flight, archived, bytes and bytes/s while uploading, verified, purged, re-uploads (archive missing or different), retries (S3 unreachable, 5xx), failures (4xx, errors), last error; queued = logs waiting for an upload.';
create view buildlog.lifecycle as
  select (select count(distinct p.job_id) from buildlog.log_parts p
           where not exists (select 1 from buildlog.logs l
                              where l.job_id = p.job_id and l.aggregated_at is not null)) as streaming,
         (select count(*) from buildlog.aggregatable(2147483647)) as due,
         count(*) filter (where content is not null and archived_at is null) as aggregated,
         count(*) filter (where archived_at is not null and purged_at is null) as archived,
         count(*) filter (where verified_at is not null) as verified,
         count(*) filter (where purged_at is not null) as purged,
         count(*) filter (where removed_at is not null) as removed
    from buildlog.logs;
comment on view buildlog.lifecycle is
  'How many logs are streaming (parts, never aggregated), due for aggregation, aggregated (waiting for the archive), archived (waiting for verification and purge), verified, purged, removed.';

-- ------------------------------------------------ drain
drop function buildlog.parse_message(bytea, boolean);
create function buildlog.parse_message(body bytea, reference boolean default false,
  out ok boolean, out job_id bigint, out number int, out final boolean, out content text,
  out reason text)
returns record
language c stable strict parallel safe
as 'MODULE_PATHNAME', 'buildlog_parse_message';
comment on function buildlog.parse_message(bytea, boolean) is
  'What the drain makes of a delivery body, without writing it: the part (ok) or the reason it would be rejected. Check a fixed body before buildlog.replay_rejected(). reference = true parses with jansson only (tests compare it with the fast scanner).';
drop view buildlog.drain_stats;
drop function buildlog.drain_worker_stats();
create function buildlog.drain_worker_stats(
  out worker int, out pid int, out queues text, out connected boolean,
  out connected_since timestamptz, out deliveries bigint, out parts bigint,
  out rejected bigint, out replaced bigint, out batches bigint, out mean_batch float8,
  out max_batch bigint, out last_commit timestamptz, out reconnects bigint,
  out failed_batches bigint, out last_error text, out last_error_at timestamptz)
returns setof record
language c volatile parallel restricted
as 'MODULE_PATHNAME', 'buildlog_drain_stats';
comment on function buildlog.drain_worker_stats() is
  'Counters of the running drain workers, from shared memory (see the view buildlog.drain_stats).';

create view buildlog.drain_stats as select * from buildlog.drain_worker_stats();
comment on view buildlog.drain_stats is
  'One row per running drain worker: queues, connection, deliveries, parts written, rejected, batches, last commit, reconnects, last error.';

-- ------------------------------------------------ aggregation and maintenance
drop function buildlog.aggregate_failed(bigint, text);
drop function buildlog.run_maintenance(int);
create function buildlog.run_maintenance(attempts int default 5,
                                         out created text[], out dropped text[], out tries int)
language plpgsql volatile
as $$
declare
  before text[];
  done boolean := false;
  expired boolean;
  message text;
  backoff float8 := 0.05;
begin
  if attempts is null or attempts < 1 then
    raise exception 'attempts must be at least 1'
      using errcode = 'invalid_parameter_value';
  end if;
  -- one maintenance at a time; a second caller waits for the first
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('buildlog.run_maintenance'));
  select coalesce(pg_catalog.array_agg(c.oid::regclass::text order by c.oid), '{}') into before
    from pg_catalog.pg_inherits i join pg_catalog.pg_class c on c.oid = i.inhrelid
   where i.inhparent = 'buildlog.log_parts'::regclass;

  for attempt in 1..attempts loop
    tries := attempt;
    begin
      perform pg_catalog.set_config('lock_timeout',
                                    pg_catalog.current_setting('buildlog.maintenance_lock_timeout'), true);
      -- a retention drop needs ACCESS EXCLUSIVE on log_parts: queue for it
      -- here, under lock_timeout, so a timeout raises a clean lock_not_available
      select exists (
        select 1
          from partman.show_partitions('buildlog.log_parts') s,
               partman.show_partition_info(s.partition_schemaname || '.' || s.partition_tablename,
                                           p_parent_table := 'buildlog.log_parts') info,
               partman.part_config cfg
         where cfg.parent_table = 'buildlog.log_parts'
           and info.child_end_time < now() - cfg.retention::interval) into expired;
      if expired then
        lock table buildlog.log_parts in access exclusive mode;
      end if;
      perform partman.run_maintenance(p_parent_table := 'buildlog.log_parts',
                                      p_analyze := false, p_jobmon := false);
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

  select coalesce(pg_catalog.array_agg(n order by n), '{}') into created
    from (select c.oid::regclass::text as n
            from pg_catalog.pg_inherits i join pg_catalog.pg_class c on c.oid = i.inhrelid
           where i.inhparent = 'buildlog.log_parts'::regclass) now_
   where n <> all (before);
  select coalesce(pg_catalog.array_agg(n order by n), '{}') into dropped
    from pg_catalog.unnest(before) as b(n)
   where pg_catalog.to_regclass(n) is null;
end
$$;
comment on function buildlog.run_maintenance(int) is
  'pg_partman maintenance of log_parts (premake, retention drop) under lock_timeout = buildlog.maintenance_lock_timeout, retried with back-off; returns the partitions created and dropped.';
revoke execute on function buildlog.run_maintenance(int) from public;
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
  select job_id from due group by job_id order by min(since), job_id limit max
$$;
comment on function buildlog.aggregatable(int) is
  'Jobs due for aggregation, oldest first: a final (or late) part older than buildlog.aggregate_delay, or the newest part older than buildlog.aggregate_force_after.';
drop index buildlog.logs_aggregate_failing;
alter table buildlog.logs
  drop column aggregate_failures,
  drop column aggregate_error,
  drop column aggregate_retry_at;
update partman.part_config set automatic_maintenance = 'on'
 where parent_table = 'buildlog.log_parts';

-- ------------------------------------------------ stored data and redaction
drop function buildlog.redact(bigint, text, text, text);
