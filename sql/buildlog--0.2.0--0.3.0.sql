-- buildlog 0.2.0 -> 0.3.0: the SQL surface named by concern (issue 10).  No
-- table changes: every C entry point is named buildlog_<sql name>, log() is
-- a thin SQL alias of fetch() with the same labels, restart_workers()
-- reaches every worker (its comment says so), run_maintenance() leaves the
-- caller's search_path as it found it (issue 9), and issue_token() signs
-- the HTTP service's job tokens (issue 11).
\echo Use "ALTER EXTENSION buildlog UPDATE TO '0.3.0'" to load this file. \quit

-- ------------------------------------------------ tables

-- Arrival times survive aggregation: parts() and the HTTP service show when
-- each line arrived, not when it was merged (NULL for older merges).
alter table buildlog.logs add column part_arrivals timestamptz[];
comment on column buildlog.logs.part_arrivals is 'When each merged part arrived (parallel to part_numbers), so readers show arrival times after aggregation; NULL for parts merged before 0.3.0.';
comment on function buildlog.parts(bigint, int) is
  'Parts of a job numbered above after, one per number, in order, pending or already aggregated, each with the time it arrived (kept through aggregation; the aggregation time for parts merged before 0.3.0): the live-polling read.';

-- ------------------------------------------------ read

create or replace function buildlog.fetch(job_id bigint) returns text
language c stable strict parallel restricted
set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'buildlog_fetch';
comment on function buildlog.fetch(bigint) is
  'The log wherever it lives: pending parts, logs.content, or the S3 archive of a purged log (GET, gunzipped, checked against the SHA-256 recorded at upload), merged with late parts. NULL for an unknown job. The one read path; buildlog.log() is its alias.';

create or replace function buildlog.log(job_id bigint) returns text
language sql stable strict parallel restricted
set search_path = pg_catalog, pg_temp
as $$ select buildlog.fetch(job_id) $$;
comment on function buildlog.log(bigint) is
  'Alias of buildlog.fetch(): the log of a job wherever it lives, as a reader sees it now (aggregated content merged with pending parts, one copy per number, in number order, or the S3 archive of a purged log). NULL for an unknown job.';

-- ------------------------------------------------ aggregation and maintenance

-- run_maintenance() handed the caller's search_path back only for the rest
-- of the call: a caller inside a longer transaction kept the pinned one.
create or replace function buildlog.run_maintenance(attempts int default 5,
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

-- ------------------------------------------------ archive and S3

create or replace function buildlog.s3_get(key text, decode boolean default true) returns bytea
language c volatile strict parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_s3_get';

create or replace function buildlog.s3_head(key text,
                                 out status int, out outcome text, out size bigint,
                                 out etag text, out content_type text, out content_encoding text,
                                 out sha256 text, out error text)
returns record
language c volatile strict parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_s3_head';

create or replace function buildlog.s3_verify(key text,
                                   out status int, out outcome text, out size bigint,
                                   out sha256 text, out md5 text, out recorded_sha256 text,
                                   out content_size bigint, out error text)
returns record
language c volatile strict parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_s3_verify';

-- ------------------------------------------------ HTTP service

create function buildlog.issue_token(job_id bigint, scope text, ttl interval default '1 hour')
returns text
language c volatile strict parallel restricted
as 'MODULE_PATHNAME', 'buildlog_issue_token';
comment on function buildlog.issue_token(bigint, text, interval) is
  'A token for the HTTP service: HMAC-SHA256 over the job id, the scope (read, write or admin) and the expiry (now + ttl, at most 30 days), keyed by the file named in buildlog.http_token_key_file. A write token uploads the job''s parts until its final part is stored.';
revoke execute on function buildlog.issue_token(bigint, text, interval) from public;

-- ------------------------------------------------ monitoring

create function buildlog.http_worker_stats(
  out pid int, out requests bigint, out responses_2xx bigint, out responses_4xx bigint,
  out responses_5xx bigint, out bytes_sent bigint, out connections bigint, out streams bigint,
  out events bigint, out last_error text, out last_error_at timestamptz)
returns setof record
language c volatile parallel restricted
as 'MODULE_PATHNAME', 'buildlog_http_worker_stats';
comment on function buildlog.http_worker_stats() is
  'Counters of the HTTP service worker, from shared memory (see the view buildlog.http_stats).';

create view buildlog.http_stats as select * from buildlog.http_worker_stats();
comment on view buildlog.http_stats is
  'The HTTP service: requests, responses by class, bytes sent, connections and event streams open now, part events sent, last error.';

create or replace function buildlog.drain_worker_stats(
  out worker int, out pid int, out queues text, out connected boolean,
  out connected_since timestamptz, out deliveries bigint, out parts bigint,
  out rejected bigint, out replaced bigint, out batches bigint, out mean_batch float8,
  out max_batch bigint, out last_commit timestamptz, out reconnects bigint,
  out failed_batches bigint, out split_retries bigint, out error_rejected bigint,
  out last_error text, out last_error_at timestamptz)
returns setof record
language c volatile parallel restricted
as 'MODULE_PATHNAME', 'buildlog_drain_worker_stats';

create or replace function buildlog.scheduler_worker_stats(
  out pid int, out aggregated bigint, out parts_merged bigint, out aggregate_failures bigint,
  out deferred bigint, out last_round timestamptz, out maintenance_runs bigint, out last_maintenance text,
  out last_maintenance_at timestamptz, out last_error text, out last_error_at timestamptz)
returns setof record
language c volatile parallel restricted
as 'MODULE_PATHNAME', 'buildlog_scheduler_worker_stats';

create or replace function buildlog.archive_worker_stats(
  out worker int, out pid int, out in_flight bigint, out archived bigint, out bytes bigint,
  out bytes_per_second float8, out verified bigint, out purged bigint, out reuploads bigint,
  out retries bigint, out failures bigint, out last_archived timestamptz,
  out last_error text, out last_error_at timestamptz)
returns setof record
language c volatile parallel restricted
as 'MODULE_PATHNAME', 'buildlog_archive_worker_stats';

comment on function buildlog.restart_workers() is
  'Make every worker re-read the configuration: drain workers reconnect (for buildlog.amqp_url, amqp_queues, amqp_heartbeat), the scheduler and archive workers retry at once; a changed buildlog.database restarts them. Returns the number of workers told.';
