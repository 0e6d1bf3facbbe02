-- buildlog 0.1.0: CI build logs inside PostgreSQL.
\echo Use "CREATE EXTENSION buildlog" to load this file. \quit

-- Preconditions: a UTF-8 database and pg_partman 4.x in schema partman.
do $$
declare
  partman_schema name;
  partman_version text;
begin
  if pg_catalog.getdatabaseencoding() <> 'UTF8' then
    raise exception 'buildlog needs a UTF-8 database'
      using errcode = 'feature_not_supported',
            detail = format('Database %I has encoding %s.', pg_catalog.current_database(),
                            pg_catalog.getdatabaseencoding()),
            hint = 'Create the database with ENCODING ''UTF8''.';
  end if;
  select n.nspname, e.extversion into partman_schema, partman_version
    from pg_catalog.pg_extension e join pg_catalog.pg_namespace n on n.oid = e.extnamespace
   where e.extname = 'pg_partman';
  if partman_schema is null then
    raise exception 'buildlog needs the pg_partman extension in schema partman'
      using errcode = 'undefined_object',
            detail = 'pg_partman is not installed in this database.',
            hint = 'Run: CREATE SCHEMA partman; CREATE EXTENSION pg_partman SCHEMA partman;';
  end if;
  if partman_schema <> 'partman' or partman_version not like '4.%' then
    raise exception 'buildlog needs pg_partman 4.x in schema partman'
      using errcode = 'feature_not_supported',
            detail = format('pg_partman %s is installed in schema %I.', partman_version, partman_schema),
            hint = 'Install pg_partman 4.7 with: CREATE EXTENSION pg_partman SCHEMA partman;';
  end if;
end
$$;

-- One row per job: the aggregated log and its life-cycle facts.
create table buildlog.logs (
  job_id        bigint primary key check (job_id > 0),
  content       text,
  part_numbers  int4[] not null default '{}',
  part_starts   int4[] not null default '{}',
  final_number  int4,
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now(),
  aggregated_at timestamptz,
  archived_at   timestamptz,
  archive_size  bigint,
  archive_sha256 text,
  archive_etag  text,
  verified_at   timestamptz,
  purged_at     timestamptz,
  removed_at    timestamptz,
  removed_by    bigint
);
-- Uncompressed out-of-line storage: slices of a log are read without
-- decompressing all of it (archive streaming, range reads).
alter table buildlog.logs alter column content set storage external;
comment on table buildlog.logs is
  'One row per job: the aggregated log (content), the number and byte offset of every part merged into it, and its archive facts.';
comment on column buildlog.logs.part_numbers is 'Numbers of the parts merged into content, ascending.';
comment on column buildlog.logs.part_starts is 'Byte offset in content where each merged part starts; bytes before the first are the head set by set_content().';
comment on column buildlog.logs.final_number is 'Number of the merged part that was flagged final, if any.';
select pg_catalog.pg_extension_config_dump('buildlog.logs', '');

-- Pending log parts, partitioned by day on created_at (pg_partman).
create table buildlog.log_parts (
  job_id     bigint not null,
  number     int4 not null,
  content    text not null,
  final      boolean not null default false,
  late       boolean not null default false,
  created_at timestamptz not null default now()
) partition by range (created_at);
comment on table buildlog.log_parts is
  'Log parts not yet aggregated. Duplicates (same job_id and number) may be stored; readers and aggregation see one per number.';
comment on column buildlog.log_parts.late is 'Written after the log had been aggregated: due for aggregation after buildlog.aggregate_delay.';
create index log_parts_job_number on buildlog.log_parts (job_id, number);
create index log_parts_due on buildlog.log_parts (created_at) where final or late;
create index log_parts_created_at on buildlog.log_parts using brin (created_at)
  with (autosummarize = on);

-- Register with pg_partman: daily, two days premade, three days retention, dropped.
delete from partman.part_config where parent_table = 'buildlog.log_parts';
select partman.create_parent(
  p_parent_table := 'buildlog.log_parts',
  p_control := 'created_at',
  p_type := 'native',
  p_interval := 'daily',
  p_premake := 2,
  p_start_partition := pg_catalog.to_char(now() - interval '3 days', 'YYYY-MM-DD'));
update partman.part_config
   set retention = '3 days',
       retention_keep_table = false,
       retention_keep_index = false,
       infinite_time_partitions = true
 where parent_table = 'buildlog.log_parts';

-- Ingest ------------------------------------------------------------------

create type buildlog.write_result as (parts bigint, bytes bigint, replaced bigint);
comment on type buildlog.write_result is 'What one write_parts() batch stored: parts, content bytes, U+FFFD replacements made.';

create function buildlog.write_parts(job_ids bigint[], numbers int[], contents text[],
                                     finals bool[])
returns buildlog.write_result
language c volatile parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_write_parts';
comment on function buildlog.write_parts(bigint[], int[], text[], bool[]) is
  'Write a batch of log parts (parallel arrays) in one statement; creates logs rows as needed. The one ingest path.';

create function buildlog.write_raw_parts(job_ids bigint[], numbers int[], contents bytea[],
                                     finals bool[])
returns buildlog.write_result
language c volatile parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_write_raw_parts';
comment on function buildlog.write_raw_parts(bigint[], int[], bytea[], bool[]) is
  'Write a batch of raw log parts through the same path as write_parts: invalid UTF-8 and NUL bytes become U+FFFD and are counted in replaced.';

create function buildlog.clean_utf8(raw bytea, out content text, out replaced int)
language c immutable strict parallel safe
as 'MODULE_PATHNAME', 'buildlog_clean_utf8';
comment on function buildlog.clean_utf8(bytea) is
  'The ingest UTF-8 cleaning: invalid sequences and NUL become U+FFFD (counted in replaced); valid text passes unchanged.';

-- Read --------------------------------------------------------------------

create function buildlog.log(job_id bigint) returns text
language c stable strict parallel safe
as 'MODULE_PATHNAME', 'buildlog_log';
comment on function buildlog.log(bigint) is
  'The log of a job as a reader sees it now: aggregated content merged with pending parts, one copy per number, in number order. NULL for an unknown job.';

create function buildlog.parts(job_id bigint, after int default -1)
returns table (number int, content text, final boolean, created_at timestamptz)
language c stable parallel safe
as 'MODULE_PATHNAME', 'buildlog_parts';
comment on function buildlog.parts(bigint, int) is
  'Parts of a job numbered above after, one per number, in order, pending or already aggregated (created_at is then the aggregation time): the live-polling read.';

-- Aggregate ---------------------------------------------------------------

create function buildlog.aggregate(job_id bigint) returns int
language c volatile strict parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_aggregate';
comment on function buildlog.aggregate(bigint) is
  'Move the pending parts of a job into logs.content atomically, each at its numbered place, duplicates dropped. Returns the parts merged; NULL for an unknown job.';

create function buildlog.aggregatable(max int default 500) returns table (job_id bigint)
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

create function buildlog.set_content(job_id bigint, content text, removed_by bigint default null)
returns bigint
language c volatile parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_set_content';
comment on function buildlog.set_content(bigint, text, bigint) is
  'Replace (or with NULL clear) a job''s log: discards pending parts, resets archive state, stamps removed_at/removed_by when removed_by is given. Returns the pending parts discarded.';

-- Maintenance -------------------------------------------------------------

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

-- Privileges ----------------------------------------------------------------
-- Reading is open to whoever may read the tables; writing, aggregation,
-- content replacement and maintenance are granted explicitly (see README).
revoke execute on function buildlog.write_parts(bigint[], int[], text[], bool[]) from public;
revoke execute on function buildlog.write_raw_parts(bigint[], int[], bytea[], bool[]) from public;
revoke execute on function buildlog.aggregate(bigint) from public;
revoke execute on function buildlog.set_content(bigint, text, bigint) from public;
revoke execute on function buildlog.run_maintenance(int) from public;

-- AMQP drain -----------------------------------------------------------------

-- Deliveries that could not become a part, kept with their reason.
create table buildlog.rejected_parts (
  id           bigint generated always as identity primary key,
  received_at  timestamptz not null default now(),
  queue        text,
  exchange     text,
  routing_key  text,
  delivery_tag bigint,
  redelivered  boolean,
  reason       text not null,
  body         bytea not null,
  replayed_at  timestamptz,
  fixed_body   bytea
);
comment on table buildlog.rejected_parts is
  'Deliveries the drain workers could not turn into a log part (not JSON, bad id or number, bad base64, too large, ...), with the reason; acked with the batch they came in.';
select pg_catalog.pg_extension_config_dump('buildlog.rejected_parts', '');
create index rejected_parts_received_at on buildlog.rejected_parts (received_at);

create function buildlog.replay_rejected(id bigint, fixed_body bytea default null)
returns bigint
language c volatile parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_replay_rejected';
comment on function buildlog.replay_rejected(bigint, bytea) is
  'Parse a rejected delivery again (or the corrected body given) and write it through the ingest path; marks it replayed. Returns the job id.';

create function buildlog.parse_message(body bytea, reference boolean default false,
  out ok boolean, out job_id bigint, out number int, out final boolean, out content text,
  out reason text)
returns record
language c stable strict parallel safe
as 'MODULE_PATHNAME', 'buildlog_parse_message';
comment on function buildlog.parse_message(bytea, boolean) is
  'What the drain makes of a delivery body, without writing it: the part (ok) or the reason it would be rejected. Check a fixed body before buildlog.replay_rejected(). reference = true parses with jansson only (tests compare it with the fast scanner).';

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

create function buildlog.scheduler_worker_stats(
  out pid int, out aggregated bigint, out parts_merged bigint, out aggregate_failures bigint,
  out deferred bigint, out last_round timestamptz, out maintenance_runs bigint, out last_maintenance text,
  out last_maintenance_at timestamptz, out last_error text, out last_error_at timestamptz)
returns setof record
language c volatile parallel restricted
as 'MODULE_PATHNAME', 'buildlog_scheduler_stats';
comment on function buildlog.scheduler_worker_stats() is
  'Counters of the scheduler worker, from shared memory (see the view buildlog.scheduler_stats).';

create view buildlog.scheduler_stats as select * from buildlog.scheduler_worker_stats();
comment on view buildlog.scheduler_stats is
  'The scheduler worker: jobs aggregated, parts merged, failures, deferred (the log was being archived: retried next round), last round, partition maintenance runs and result, last error.';

-- Archive --------------------------------------------------------------------

create index logs_to_archive on buildlog.logs (updated_at)
  where content is not null and archived_at is null;
create index logs_to_verify on buildlog.logs (archived_at)
  where archived_at is not null and purged_at is null and content is not null;

create function buildlog.fetch(job_id bigint) returns text
language c stable strict parallel restricted
as 'MODULE_PATHNAME', 'buildlog_log';
comment on function buildlog.fetch(bigint) is
  'The log wherever it lives: pending parts, logs.content, or the S3 archive of a purged log (GET, gunzipped, checked against the SHA-256 recorded at upload), merged with late parts. NULL for an unknown job. Same as buildlog.log().';

create function buildlog.archive_worker_stats(
  out worker int, out pid int, out in_flight bigint, out archived bigint, out bytes bigint,
  out bytes_per_second float8, out verified bigint, out purged bigint, out reuploads bigint,
  out retries bigint, out failures bigint, out last_archived timestamptz,
  out last_error text, out last_error_at timestamptz)
returns setof record
language c volatile parallel restricted
as 'MODULE_PATHNAME', 'buildlog_archive_stats';
comment on function buildlog.archive_worker_stats() is
  'Counters of the running archive workers, from shared memory (see the view buildlog.archive_stats).';

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

create function buildlog.restart_workers() returns int
language c volatile parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_restart_workers';
comment on function buildlog.restart_workers() is
  'Make the drain workers re-read the configuration and reconnect (for buildlog.amqp_url, amqp_queues, amqp_heartbeat; a changed buildlog.database restarts them). Returns the number of workers told.';

create function buildlog.declare_queues(queue text default 'reporting.jobs.logs', shards int default 0,
                                        exchange text default 'reporting.jobs.logs_sharded')
returns table (queue_name text)
language c volatile strict parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_declare_queues';
comment on function buildlog.declare_queues(text, int, text) is
  'Declare the durable queue on buildlog.amqp_url, or with shards > 0 an x-consistent-hash exchange routing by job id to queues <queue>.1..N. Returns the queue names for buildlog.amqp_queues.';

revoke execute on function buildlog.replay_rejected(bigint, bytea) from public;
revoke execute on function buildlog.restart_workers() from public;
revoke execute on function buildlog.declare_queues(text, int, text) from public;

-- ---------------------------------------------------------------- S3 client
-- Operator and test functions over the S3 client (extension/s3.c, s3_sql.c),
-- with the buildlog.s3_* settings.  None is open to PUBLIC.

create function buildlog.s3_signature_selftest(
  out example text, out signature text, out authorization_header text)
returns setof record
language c volatile parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_s3_signature_selftest';
comment on function buildlog.s3_signature_selftest() is
  'Known-answer test of S3 request signing: sends AWS''s published Signature V4 examples (GET Object with Range, PUT Object) through the request path to a listener on 127.0.0.1 and returns the Authorization header libcurl sent. Expected signatures: f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41 (GET), 98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd (PUT).';

create function buildlog.s3_key(job_id bigint) returns text
language c stable strict parallel safe
as 'MODULE_PATHNAME', 'buildlog_s3_key';
comment on function buildlog.s3_key(bigint) is
  'The S3 object key of a job''s archived log: <buildlog.s3_prefix>jobs/<job_id>/log.txt.';

create function buildlog.s3_put_text(key text, body text, gzip boolean default false,
                                     repeat int default 1,
                                     out status int, out size bigint, out sha256 text,
                                     out md5 text, out etag text)
returns record
language c volatile strict parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_s3_put_text';
comment on function buildlog.s3_put_text(text, text, boolean, int) is
  'Upload body (repeated repeat times, streamed in slices; gzip-compressed when gzip) to the object key, as the archive worker uploads logs. Returns the HTTP status, the size, SHA-256 (hex) and MD5 (base64) of the stored bytes and the ETag; raises an error when the upload fails.';

create function buildlog.s3_get(key text, decode boolean default true) returns bytea
language c volatile strict parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_s3_get_object';
comment on function buildlog.s3_get(text, boolean) is
  'The bytes of the object key; with decode, an object stored with Content-Encoding: gzip is decompressed. Raises an error when the object cannot be read.';

create function buildlog.s3_head(key text,
                                 out status int, out outcome text, out size bigint,
                                 out etag text, out content_type text, out content_encoding text,
                                 out sha256 text, out error text)
returns record
language c volatile strict parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_s3_head_object';
comment on function buildlog.s3_head(text) is
  'HEAD of the object key: size, ETag, Content-Type, Content-Encoding and the SHA-256 recorded at upload (x-amz-meta-sha256). Does not raise for S3 failures: outcome is ok, not_found, retryable or permanent, with the error text.';

create function buildlog.s3_verify(key text,
                                   out status int, out outcome text, out size bigint,
                                   out sha256 text, out md5 text, out recorded_sha256 text,
                                   out content_size bigint, out error text)
returns record
language c volatile strict parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_s3_verify_object';
comment on function buildlog.s3_verify(text) is
  'GET the object key and checksum the stored bytes without keeping them: size, SHA-256, MD5, the SHA-256 recorded at upload, and the size after gunzip (gzip data must be complete). Does not raise for S3 failures: see outcome and error.';

revoke execute on function buildlog.s3_signature_selftest() from public;
revoke execute on function buildlog.s3_key(bigint) from public;
revoke execute on function buildlog.s3_put_text(text, text, boolean, int) from public;
revoke execute on function buildlog.s3_get(text, boolean) from public;
revoke execute on function buildlog.s3_head(text) from public;
revoke execute on function buildlog.s3_verify(text) from public;

-- pg_partman's create_parent() restores the search_path it found with a
-- session-level set_config(); inside CREATE EXTENSION that is the script's own
-- "buildlog, pg_temp", which would outlive the script.  Give the session its
-- configured search_path back (last statement: nothing below needs the
-- script's search_path).
reset search_path;
