-- buildlog 0.3.0 -> 0.2.0 (the sqitch revert of buildlog_0.3.0): the 0.2.0
-- declarations back, with the entry points 0.2.0 named; no data changes.
\echo Use "ALTER EXTENSION buildlog UPDATE TO '0.2.0'" to load this file. \quit

drop function buildlog.issue_token(bigint, text, interval);
alter table buildlog.logs drop column part_arrivals;
comment on function buildlog.parts(bigint, int) is
  'Parts of a job numbered above after, one per number, in order, pending or already aggregated (created_at is then the aggregation time): the live-polling read.';
drop view buildlog.http_stats;
drop function buildlog.http_worker_stats();

create or replace function buildlog.log(job_id bigint) returns text
language c stable strict parallel safe
set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'buildlog_log';
comment on function buildlog.log(bigint) is
  'The log of a job as a reader sees it now: aggregated content merged with pending parts, one copy per number, in number order. NULL for an unknown job.';

create or replace function buildlog.fetch(job_id bigint) returns text
language c stable strict parallel restricted
set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'buildlog_log';
comment on function buildlog.fetch(bigint) is
  'The log wherever it lives: pending parts, logs.content, or the S3 archive of a purged log (GET, gunzipped, checked against the SHA-256 recorded at upload), merged with late parts. NULL for an unknown job. Same as buildlog.log().';

create or replace function buildlog.s3_get(key text, decode boolean default true) returns bytea
language c volatile strict parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_s3_get_object';

create or replace function buildlog.s3_head(key text,
                                 out status int, out outcome text, out size bigint,
                                 out etag text, out content_type text, out content_encoding text,
                                 out sha256 text, out error text)
returns record
language c volatile strict parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_s3_head_object';

create or replace function buildlog.s3_verify(key text,
                                   out status int, out outcome text, out size bigint,
                                   out sha256 text, out md5 text, out recorded_sha256 text,
                                   out content_size bigint, out error text)
returns record
language c volatile strict parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_s3_verify_object';

create or replace function buildlog.drain_worker_stats(
  out worker int, out pid int, out queues text, out connected boolean,
  out connected_since timestamptz, out deliveries bigint, out parts bigint,
  out rejected bigint, out replaced bigint, out batches bigint, out mean_batch float8,
  out max_batch bigint, out last_commit timestamptz, out reconnects bigint,
  out failed_batches bigint, out split_retries bigint, out error_rejected bigint,
  out last_error text, out last_error_at timestamptz)
returns setof record
language c volatile parallel restricted
as 'MODULE_PATHNAME', 'buildlog_drain_stats';

create or replace function buildlog.scheduler_worker_stats(
  out pid int, out aggregated bigint, out parts_merged bigint, out aggregate_failures bigint,
  out deferred bigint, out last_round timestamptz, out maintenance_runs bigint, out last_maintenance text,
  out last_maintenance_at timestamptz, out last_error text, out last_error_at timestamptz)
returns setof record
language c volatile parallel restricted
as 'MODULE_PATHNAME', 'buildlog_scheduler_stats';

create or replace function buildlog.archive_worker_stats(
  out worker int, out pid int, out in_flight bigint, out archived bigint, out bytes bigint,
  out bytes_per_second float8, out verified bigint, out purged bigint, out reuploads bigint,
  out retries bigint, out failures bigint, out last_archived timestamptz,
  out last_error text, out last_error_at timestamptz)
returns setof record
language c volatile parallel restricted
as 'MODULE_PATHNAME', 'buildlog_archive_stats';

comment on function buildlog.restart_workers() is
  'Make the drain workers re-read the configuration and reconnect (for buildlog.amqp_url, amqp_queues, amqp_heartbeat; a changed buildlog.database restarts them). Returns the number of workers told.';
