-- buildlog 0.3.1 -> 0.3.2: stream uploads keep their offsets in the database
-- (buildlog.stream_offsets), the deployment has an id for its archive objects
-- (buildlog.installation), and declare_queues() declares quorum queues unless
-- told queue_type => 'classic'.  Jobs' secrets are registered with
-- add_secrets() (buildlog.job_secrets) and masked in their logs.
\echo Use "ALTER EXTENSION buildlog UPDATE TO '0.3.2'" to load this file. \quit

-- ------------------------------------------------ tables

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

create function buildlog.add_secrets(job_id bigint, secrets text[]) returns int
language c volatile parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_add_secrets';
comment on function buildlog.add_secrets(bigint, text[]) is
  'Register secrets of a job (each at least 4 and at most 1024 bytes; a multi-line value as its lines): every later occurrence in its log, and its base64 (three alignments) and URL encodings, is stored as ***; the parts and the log already stored are masked now. Pass the values as bound parameters. Returns how many were new to the job.';
revoke execute on function buildlog.add_secrets(bigint, text[]) from public;
alter function buildlog.add_secrets(bigint, text[]) set search_path = pg_catalog, pg_temp;

-- ------------------------------------------------ drain

drop function buildlog.declare_queues(text, int, text);
create function buildlog.declare_queues(queue text default 'reporting.jobs.logs', shards int default 0,
                                        exchange text default 'reporting.jobs.logs_sharded',
                                        queue_type text default 'quorum')
returns table (queue_name text)
language c volatile strict parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_declare_queues';
comment on function buildlog.declare_queues(text, int, text, text) is
  'Declare the durable queue on buildlog.amqp_url (its first node that answers), or with shards > 0 an x-consistent-hash exchange routing by job id to queues <queue>.1..N. New queues are of queue_type (quorum: replicated over the cluster''s nodes; or classic); a queue that exists keeps its type. Returns the queue names for buildlog.amqp_queues.';
revoke execute on function buildlog.declare_queues(text, int, text, text) from public;
