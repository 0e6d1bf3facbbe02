-- buildlog 0.1.0 -> 0.2.0: hardening against hostile input and operator
-- mistakes (issue 8).  CREATE EXTENSION buildlog installs 0.1.0 and applies
-- this script, so every install runs the upgrade path.
\echo Use "ALTER EXTENSION buildlog UPDATE TO '0.2.0'" to load this file. \quit

-- ------------------------------------------------ stored data and redaction

-- ------------------------------------------------ aggregation and maintenance

-- ------------------------------------------------ ingest

-- ------------------------------------------------ drain

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
         count(*) filter (where archive_delete_since is not null) as deleting
    from buildlog.logs;
comment on view buildlog.lifecycle is
  'How many logs are streaming (parts, never aggregated), due for aggregation, aggregated (waiting for the archive), archived (waiting for verification and purge), verified, purged, removed, and deleting (removed or replaced, the old archive object not yet proven deleted).';

-- ------------------------------------------------ monitoring

-- ------------------------------------------------ privileges and search_path
