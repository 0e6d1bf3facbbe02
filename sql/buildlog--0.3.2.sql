-- buildlog 0.3.2: CI build logs inside PostgreSQL.  The complete install
-- script, ordered by concern: preconditions, tables, ingest, read,
-- aggregation and maintenance, drain, archive and S3, HTTP service,
-- monitoring, privileges.  Installing it gives exactly what 0.1.0 updated to
-- 0.3.2 gives (a test compares the two catalogs).
\echo Use "CREATE EXTENSION buildlog" to load this file. \quit

-- ------------------------------------------------ preconditions

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

-- ------------------------------------------------ tables

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
  removed_by    bigint,
  aggregate_failures int not null default 0,
  aggregate_error text,
  aggregate_retry_at timestamptz,
  archive_gzip boolean,
  archive_object boolean not null default false,
  archive_delete_since timestamptz,
  archive_delete_attempts int not null default 0,
  archive_delete_after timestamptz,
  archive_deleted_at timestamptz,
  part_arrivals timestamptz[]
);
-- Uncompressed out-of-line storage: slices of a log are read without
-- decompressing all of it (archive streaming, range reads).
alter table buildlog.logs alter column content set storage external;
comment on table buildlog.logs is
  'One row per job: the aggregated log (content), the number and byte offset of every part merged into it, and its archive facts.';
comment on column buildlog.logs.part_numbers is 'Numbers of the parts merged into content, ascending.';
comment on column buildlog.logs.part_starts is 'Byte offset in content where each merged part starts; bytes before the first are the head set by set_content().';
comment on column buildlog.logs.final_number is 'Number of the merged part that was flagged final, if any.';
comment on column buildlog.logs.aggregate_failures is 'Consecutive failed aggregations by the scheduler (0 after a success).';
comment on column buildlog.logs.aggregate_error is 'Error of the last failed aggregation by the scheduler.';
comment on column buildlog.logs.aggregate_retry_at is 'The scheduler does not try to aggregate this job again before this time.';
comment on column buildlog.logs.archive_gzip is 'Whether the archive was stored gzip-compressed (NULL: not archived, or archived before 0.2.0).';
comment on column buildlog.logs.archive_object is 'An archive object may exist at the job''s key (set by an upload, cleared once a deletion was proven).';
comment on column buildlog.logs.archive_delete_since is 'A removal (set_content) asked for the archive object to be deleted; NULL when no deletion is pending.';
comment on column buildlog.logs.archive_delete_attempts is 'Failed attempts of the pending deletion (S3 down, object still there); the next waits longer.';
comment on column buildlog.logs.archive_delete_after is 'The next attempt of the pending deletion is not made before this time.';
comment on column buildlog.logs.archive_deleted_at is 'When the archive object was last proven deleted (DELETE, then HEAD 404).';
comment on column buildlog.logs.part_arrivals is 'When each merged part arrived (parallel to part_numbers), so readers show arrival times after aggregation; NULL for parts merged before 0.3.0.';
select pg_catalog.pg_extension_config_dump('buildlog.logs', '');
create index logs_to_archive on buildlog.logs (updated_at)
  where content is not null and archived_at is null;
create index logs_to_verify on buildlog.logs (archived_at)
  where archived_at is not null and purged_at is null and content is not null;
create index logs_aggregate_failing on buildlog.logs (aggregate_retry_at)
  where aggregate_retry_at is not null;
create index logs_to_delete on buildlog.logs (archive_delete_since)
  where archive_delete_since is not null;

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

-- pg_partman must not maintain log_parts on its own (its background worker
-- or a cron job calling partman.run_maintenance() without buildlog's lock
-- timeout and retries would stall writers, and would drop partitions that
-- still hold parts that were never aggregated): buildlog.run_maintenance()
-- owns it.
update partman.part_config set automatic_maintenance = 'off'
 where parent_table = 'buildlog.log_parts';

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

-- A restored dump must go on numbering rejected deliveries after the last one.
select pg_catalog.pg_extension_config_dump('buildlog.rejected_parts_id_seq', '');

-- Revoked job tokens (revoke_tokens()), dumped with the data: a restored
-- database refuses what the original refused.
create table buildlog.token_revocations (
  job_id     bigint primary key check (job_id > 0),
  revoked_at timestamptz not null
);
comment on table buildlog.token_revocations is
  'Revoked job tokens: the HTTP service refuses every token of job_id issued up to revoked_at (and every bl1 token of the job, which carries no issue time). Written by revoke_tokens(); rows older than 30 days, the longest token lifetime, refuse nothing alive and may be deleted.';
comment on column buildlog.token_revocations.revoked_at is
  'Tokens of the job issued up to this time are refused.';
select pg_catalog.pg_extension_config_dump('buildlog.token_revocations', '');
create index token_revocations_revoked_at on buildlog.token_revocations (revoked_at);

-- Where each job's HTTP stream upload stands, written by the group commit in
-- the transaction that stores the stream's parts: a runner resuming after a
-- restart of the HTTP worker, or on another primary, is told the offset the
-- database holds.
create table buildlog.stream_offsets (
  job_id      bigint primary key check (job_id > 0),
  raw_bytes   bigint not null check (raw_bytes >= 0),
  next_number int4 not null check (next_number >= 0),
  updated_at  timestamptz not null default now()
);
comment on table buildlog.stream_offsets is
  'Where the HTTP stream upload (POST /jobs/{id}/stream) of each job stands: raw_bytes of the runner''s body are stored, and its next part gets next_number. Written by the group commit with the parts; deleted when the log is set whole, removed or purged.';
comment on column buildlog.stream_offsets.raw_bytes is
  'Bytes of the stream''s raw body that are stored (before U+FFFD cleaning): the offset HEAD /jobs/{id}/stream tells.';
select pg_catalog.pg_extension_config_dump('buildlog.stream_offsets', '');

-- Each job's registered secrets (add_secrets(), or "::add-mask::" in its
-- log), sealed with AES-256-GCM under the key of buildlog.secrets_key_file:
-- the table holds no plain value.  Read and written only by buildlog's
-- functions, as the table's owner; dropped with the job's log.
create table buildlog.job_secrets (
  id         bigint generated always as identity primary key,
  job_id     bigint not null check (job_id > 0),
  sealed     bytea not null,
  created_at timestamptz not null default now()
);
create index job_secrets_job_id on buildlog.job_secrets (job_id, id);
comment on table buildlog.job_secrets is
  'Secrets masked in the log of job_id (add_secrets(), "::add-mask::" lines): sealed is nonce || AES-256-GCM ciphertext || tag under a key derived from buildlog.secrets_key_file (or buildlog.http_token_key_file), the job id as associated data. No privilege for anyone but the owner; rows go with the job''s log (removal, purge).';
revoke all on buildlog.job_secrets from public;
select pg_catalog.pg_extension_config_dump('buildlog.job_secrets', '');

-- Which deployment this database is: replicas of it (a promoted standby) share
-- the row; a database restored from a dump, or a new install, makes its own at
-- CREATE EXTENSION (the row is not dumped).  Archive objects carry the id, and
-- the archive workers never overwrite or delete another deployment's objects
-- (unless buildlog.s3_adopt_objects).
create table buildlog.installation (
  singleton  boolean primary key default true check (singleton),
  id         uuid not null default pg_catalog.gen_random_uuid(),
  created_at timestamptz not null default now()
);
insert into buildlog.installation default values;
comment on table buildlog.installation is
  'This deployment''s id (one row, made at CREATE EXTENSION, not dumped: a restored copy makes its own). Archive objects carry it as x-amz-meta-buildlog-owner; another deployment''s objects are never overwritten or deleted unless buildlog.s3_adopt_objects is on.';

-- ------------------------------------------------ ingest

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

-- ------------------------------------------------ read

create function buildlog.fetch(job_id bigint) returns text
language c stable strict parallel restricted
as 'MODULE_PATHNAME', 'buildlog_fetch';
comment on function buildlog.fetch(bigint) is
  'The log wherever it lives: pending parts, logs.content, or the S3 archive of a purged log (GET, gunzipped, checked against the SHA-256 recorded at upload), merged with late parts. NULL for an unknown job. The one read path; buildlog.log() is its alias.';

create function buildlog.log(job_id bigint) returns text
language sql stable strict parallel restricted
as $$ select buildlog.fetch(job_id) $$;
comment on function buildlog.log(bigint) is
  'Alias of buildlog.fetch(): the log of a job wherever it lives, as a reader sees it now (aggregated content merged with pending parts, one copy per number, in number order, or the S3 archive of a purged log). NULL for an unknown job.';

create function buildlog.parts(job_id bigint, after int default -1)
returns table (number int, content text, final boolean, created_at timestamptz)
language c stable parallel safe
as 'MODULE_PATHNAME', 'buildlog_parts';
comment on function buildlog.parts(bigint, int) is
  'Parts of a job numbered above after, one per number, in order, pending or already aggregated, each with the time it arrived (kept through aggregation; the aggregation time for parts merged before 0.3.0): the live-polling read. Read from the start (after = -1), a log whose text was set whole (set_content) comes first as part -1, its head, with the time it was set, final when no numbered part follows it.';

-- ------------------------------------------------ aggregation and maintenance

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

create function buildlog.set_content(job_id bigint, content text, removed_by bigint default null)
returns bigint
language c volatile parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_set_content';
comment on function buildlog.set_content(bigint, text, bigint) is
  'Replace (or with NULL clear) a job''s log: discards pending parts, resets archive state, stamps removed_at/removed_by when removed_by is given. Returns the pending parts discarded.';

create function buildlog.redact(job_id bigint, pattern text,
                                replacement text default '[REDACTED]',
                                flags text default 'g')
returns int
language c volatile parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_redact';
comment on function buildlog.redact(bigint, text, text, text) is
  'Edit a stored log (e.g. a leaked secret): merges pending parts, restores a purged log, rewrites the head and each part with regexp_replace(pattern, replacement, flags), keeps the part offsets consistent and re-archives the log over the old object. Returns the parts changed; NULL for an unknown job.';

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

-- ------------------------------------------------ drain

create function buildlog.replay_rejected(id bigint, fixed_body bytea default null)
returns bigint
language c volatile parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_replay_rejected';
comment on function buildlog.replay_rejected(bigint, bytea) is
  'Parse a rejected delivery again (or the corrected body given) and write it through the ingest path; marks it replayed. Returns the job id.';

create function buildlog.parse_message(body bytea, reference boolean default false,
  out ok boolean, out job_id bigint, out number int, out final boolean, out content text,
  out reason text, out replaced int)
returns record
language c stable strict parallel safe
as 'MODULE_PATHNAME', 'buildlog_parse_message';
comment on function buildlog.parse_message(bytea, boolean) is
  'What the drain makes of a delivery body, without writing it: the part (ok) with the number of U+FFFD substitutions in its content (replaced), or the reason it would be rejected. Check a fixed body before buildlog.replay_rejected(). reference = true parses with the reference parser only (tests compare it with the fast scanner).';

create function buildlog.declare_queues(queue text default 'reporting.jobs.logs', shards int default 0,
                                        exchange text default 'reporting.jobs.logs_sharded',
                                        queue_type text default 'quorum')
returns table (queue_name text)
language c volatile strict parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_declare_queues';
comment on function buildlog.declare_queues(text, int, text, text) is
  'Declare the durable queue on buildlog.amqp_url (its first node that answers), or with shards > 0 an x-consistent-hash exchange routing by job id to queues <queue>.1..N. New queues are of queue_type (quorum: replicated over the cluster''s nodes; or classic); a queue that exists keeps its type. Returns the queue names for buildlog.amqp_queues.';

-- ------------------------------------------------ archive and S3
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
as 'MODULE_PATHNAME', 'buildlog_s3_get';
comment on function buildlog.s3_get(text, boolean) is
  'The bytes of the object key; with decode, an object stored with Content-Encoding: gzip is decompressed. Raises an error when the object cannot be read.';

create function buildlog.s3_head(key text,
                                 out status int, out outcome text, out size bigint,
                                 out etag text, out content_type text, out content_encoding text,
                                 out sha256 text, out error text)
returns record
language c volatile strict parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_s3_head';
comment on function buildlog.s3_head(text) is
  'HEAD of the object key: size, ETag, Content-Type, Content-Encoding and the SHA-256 recorded at upload (x-amz-meta-sha256). Does not raise for S3 failures: outcome is ok, not_found, retryable or permanent, with the error text.';

create function buildlog.s3_verify(key text,
                                   out status int, out outcome text, out size bigint,
                                   out sha256 text, out md5 text, out recorded_sha256 text,
                                   out content_size bigint, out error text)
returns record
language c volatile strict parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_s3_verify';
comment on function buildlog.s3_verify(text) is
  'GET the object key and checksum the stored bytes without keeping them: size, SHA-256, MD5, the SHA-256 recorded at upload, and the size after gunzip (gzip data must be complete). Does not raise for S3 failures: see outcome and error.';

create function buildlog.s3_client_stats(out requests bigint, out received_bytes bigint)
returns record
language c volatile parallel restricted
as 'MODULE_PATHNAME', 'buildlog_s3_client_stats';
comment on function buildlog.s3_client_stats() is
  'What the S3 client did in this session: requests sent and body bytes of successful GET responses received (range reads of purged logs fetch only what parts(job, after) needs).';
-- ------------------------------------------------ HTTP service

create function buildlog.issue_token(job_id bigint, scope text, ttl interval default '1 hour')
returns text
language c volatile strict parallel restricted
as 'MODULE_PATHNAME', 'buildlog_issue_token';
comment on function buildlog.issue_token(bigint, text, interval) is
  'A token for the HTTP service: HMAC-SHA256 over the job id, the scope (read, write or admin), the issue time and the expiry (now + ttl, at most 30 days), keyed by the file named in buildlog.http_token_key_file. A write token uploads the job''s parts until its final part is stored; revoke_tokens() refuses the job''s tokens issued before it.';

create function buildlog.issue_read_token(job_id bigint, ttl interval default '1 hour')
returns text
language c volatile strict parallel restricted
as 'MODULE_PATHNAME', 'buildlog_issue_read_token';
comment on function buildlog.issue_read_token(bigint, interval) is
  'issue_token(job_id, ''read'', ttl): a read token of the job, for roles granted this function and not issue_token().';

create function buildlog.issue_write_token(job_id bigint, ttl interval default '1 hour')
returns text
language c volatile strict parallel restricted
as 'MODULE_PATHNAME', 'buildlog_issue_write_token';
comment on function buildlog.issue_write_token(bigint, interval) is
  'issue_token(job_id, ''write'', ttl): a write token of the job (it also reads), for roles granted this function and not issue_token(), which mints admin tokens.';

create function buildlog.revoke_tokens(job_id bigint) returns timestamptz
language c volatile strict parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_revoke_tokens';
comment on function buildlog.revoke_tokens(bigint) is
  'Revoke the job''s tokens: from the commit on, the HTTP service refuses (401) every token of the job issued before the call, of any scope, and the job''s bl1 tokens. Waits for transactions issuing tokens of the job. Returns the revocation time, recorded in buildlog.token_revocations (revocations older than 30 days are deleted when the caller may).';

-- Every commit that changes the revocations tells the HTTP worker (a
-- counter in shared memory, token.c), whoever wrote them: revoke_tokens(),
-- a DBA's DELETE, pg_restore's COPY.
create function buildlog.token_revocations_changed() returns trigger
language c volatile parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_token_revocations_changed';
comment on function buildlog.token_revocations_changed() is
  'Trigger of buildlog.token_revocations: a transaction that changed it tells the HTTP worker at its commit to read the revocations again.';
create trigger token_revocations_changed
  after insert or update or delete or truncate on buildlog.token_revocations
  for each statement execute function buildlog.token_revocations_changed();


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

create function buildlog.drain_worker_stats(
  out worker int, out pid int, out queues text, out connected boolean,
  out connected_since timestamptz, out deliveries bigint, out parts bigint,
  out rejected bigint, out replaced bigint, out batches bigint, out mean_batch float8,
  out max_batch bigint, out last_commit timestamptz, out reconnects bigint,
  out failed_batches bigint, out split_retries bigint, out error_rejected bigint,
  out last_error text, out last_error_at timestamptz)
returns setof record
language c volatile parallel restricted
as 'MODULE_PATHNAME', 'buildlog_drain_worker_stats';
comment on function buildlog.drain_worker_stats() is
  'Counters of the running drain workers, from shared memory (see the view buildlog.drain_stats).';

create view buildlog.drain_stats as select * from buildlog.drain_worker_stats();
comment on view buildlog.drain_stats is
  'One row per running drain worker: queues, connection, deliveries, parts written, rejected (error_rejected: because writing them raised an ERROR), batches, failed write transactions, split retries, last commit, reconnects, last error.';

create function buildlog.scheduler_worker_stats(
  out pid int, out aggregated bigint, out parts_merged bigint, out aggregate_failures bigint,
  out deferred bigint, out last_round timestamptz, out maintenance_runs bigint, out last_maintenance text,
  out last_maintenance_at timestamptz, out last_error text, out last_error_at timestamptz)
returns setof record
language c volatile parallel restricted
as 'MODULE_PATHNAME', 'buildlog_scheduler_worker_stats';
comment on function buildlog.scheduler_worker_stats() is
  'Counters of the scheduler worker, from shared memory (see the view buildlog.scheduler_stats).';

create view buildlog.scheduler_stats as select * from buildlog.scheduler_worker_stats();
comment on view buildlog.scheduler_stats is
  'The scheduler worker: jobs aggregated, parts merged, failures, deferred (the log was being archived: retried next round), last round, partition maintenance runs and result, last error.';

create function buildlog.archive_worker_stats(
  out worker int, out pid int, out in_flight bigint, out archived bigint, out bytes bigint,
  out bytes_per_second float8, out verified bigint, out purged bigint, out reuploads bigint,
  out retries bigint, out failures bigint, out last_archived timestamptz,
  out last_error text, out last_error_at timestamptz)
returns setof record
language c volatile parallel restricted
as 'MODULE_PATHNAME', 'buildlog_archive_worker_stats';
comment on function buildlog.archive_worker_stats() is
  'Counters of the running archive workers, from shared memory (see the view buildlog.archive_stats).';

create view buildlog.archive_stats as
  select w.*, q.queued, d.deletions_pending, d.deleted
    from buildlog.archive_worker_stats() w,
         (select count(*) as queued from buildlog.logs
           where content is not null and archived_at is null) q,
         (select count(*) filter (where archive_delete_since is not null) as deletions_pending,
                 count(*) filter (where archive_deleted_at is not null) as deleted
            from buildlog.logs) d;
comment on view buildlog.archive_stats is
  'Archive workers: log in flight, archived, bytes and bytes/s while uploading, verified, purged, re-uploads (archive missing or different), retries (S3 unreachable, 5xx), failures (4xx, errors), last error; queued = logs waiting for an upload; deletions_pending = removed logs whose archive object is still to be deleted; deleted = logs whose archive object was proven deleted.';

create view buildlog.lifecycle as
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

create function buildlog.restart_workers() returns int
language c volatile parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_restart_workers';
comment on function buildlog.restart_workers() is
  'Make every worker re-read the configuration: drain workers reconnect (for buildlog.amqp_url, amqp_queues, amqp_heartbeat), the scheduler and archive workers retry at once; a changed buildlog.database restarts them. Returns the number of workers told.';

create function buildlog.add_secrets(job_id bigint, secrets text[]) returns int
language c volatile parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_add_secrets';
comment on function buildlog.add_secrets(bigint, text[]) is
  'Register secrets of a job (each at least 4 and at most 1024 bytes; a multi-line value as its lines): every later occurrence in its log, and its base64 (three alignments) and URL encodings, is stored as ***; the parts and the log already stored are masked now. Pass the values as bound parameters. Returns how many were new to the job.';
revoke execute on function buildlog.add_secrets(bigint, text[]) from public;
alter function buildlog.add_secrets(bigint, text[]) set search_path = pg_catalog, pg_temp;

-- ------------------------------------------------ privileges

-- Reading is open to whoever may read the tables; writing, aggregation,
-- content replacement, maintenance, the drain's and S3's operator functions
-- are granted explicitly (see README).
revoke execute on function buildlog.write_parts(bigint[], int[], text[], bool[]) from public;
revoke execute on function buildlog.write_raw_parts(bigint[], int[], bytea[], bool[]) from public;
revoke execute on function buildlog.aggregate(bigint) from public;
revoke execute on function buildlog.aggregate_failed(bigint, text) from public;
revoke execute on function buildlog.set_content(bigint, text, bigint) from public;
revoke execute on function buildlog.redact(bigint, text, text, text) from public;
revoke execute on function buildlog.run_maintenance(int) from public;
revoke execute on function buildlog.replay_rejected(bigint, bytea) from public;
revoke execute on function buildlog.declare_queues(text, int, text, text) from public;
revoke execute on function buildlog.restart_workers() from public;
revoke execute on function buildlog.s3_signature_selftest() from public;
revoke execute on function buildlog.s3_key(bigint) from public;
revoke execute on function buildlog.s3_put_text(text, text, boolean, int) from public;
revoke execute on function buildlog.s3_get(text, boolean) from public;
revoke execute on function buildlog.s3_head(text) from public;
revoke execute on function buildlog.s3_verify(text) from public;
revoke execute on function buildlog.s3_client_stats() from public;
revoke execute on function buildlog.issue_token(bigint, text, interval) from public;
revoke execute on function buildlog.issue_read_token(bigint, interval) from public;
revoke execute on function buildlog.issue_write_token(bigint, interval) from public;
revoke execute on function buildlog.revoke_tokens(bigint) from public;
revoke execute on function buildlog.token_revocations_changed() from public;

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
    'buildlog.redact(bigint, text, text, text)',
    'buildlog.revoke_tokens(bigint)'
  ]::regprocedure[] loop
    execute pg_catalog.format('alter function %s set search_path = pg_catalog, pg_temp', f);
  end loop;
end
$$;

-- pg_partman's create_parent() restores the search_path it found with a
-- session-level set_config(); inside CREATE EXTENSION that is the script's own
-- "buildlog, pg_temp", which would outlive the script.  Give the session its
-- configured search_path back (last statement: nothing below needs the
-- script's search_path).
reset search_path;
