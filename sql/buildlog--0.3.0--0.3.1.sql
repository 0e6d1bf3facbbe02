-- buildlog 0.3.0 -> 0.3.1: job tokens can be revoked, and minted by scope.
-- Tokens carry their issue time ("bl2.<job>.<scope>.<issued>.<expiry>.<MAC>");
-- revoke_tokens(job) records in buildlog.token_revocations that the job's
-- tokens issued so far are refused (bl1 tokens of 0.3.0, which carry no issue
-- time, are refused for a job once it has a revocation); issue_read_token()
-- and issue_write_token() mint one scope only, for roles that must not mint
-- admin tokens.  parts()'s comment says what it returns for a log set whole.
\echo Use "ALTER EXTENSION buildlog UPDATE TO '0.3.1'" to load this file. \quit

-- ------------------------------------------------ tables

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

-- ------------------------------------------------ read

comment on function buildlog.parts(bigint, int) is
  'Parts of a job numbered above after, one per number, in order, pending or already aggregated, each with the time it arrived (kept through aggregation; the aggregation time for parts merged before 0.3.0): the live-polling read. Read from the start (after = -1), a log whose text was set whole (set_content) comes first as part -1, its head, with the time it was set, final when no numbered part follows it.';

-- ------------------------------------------------ HTTP service

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
set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'buildlog_revoke_tokens';
comment on function buildlog.revoke_tokens(bigint) is
  'Revoke the job''s tokens: from the commit on, the HTTP service refuses (401) every token of the job issued before the call, of any scope, and the job''s bl1 tokens. Waits for transactions issuing tokens of the job. Returns the revocation time, recorded in buildlog.token_revocations (revocations older than 30 days are deleted when the caller may).';

create function buildlog.token_revocations_changed() returns trigger
language c volatile parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_token_revocations_changed';
comment on function buildlog.token_revocations_changed() is
  'Trigger of buildlog.token_revocations: a transaction that changed it tells the HTTP worker at its commit to read the revocations again.';
create trigger token_revocations_changed
  after insert or update or delete or truncate on buildlog.token_revocations
  for each statement execute function buildlog.token_revocations_changed();

revoke execute on function buildlog.issue_read_token(bigint, interval) from public;
revoke execute on function buildlog.issue_write_token(bigint, interval) from public;
revoke execute on function buildlog.revoke_tokens(bigint) from public;
revoke execute on function buildlog.token_revocations_changed() from public;
