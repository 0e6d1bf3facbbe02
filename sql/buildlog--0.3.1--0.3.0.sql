-- buildlog 0.3.1 -> 0.3.0 (the sqitch revert of buildlog_0.3.1): the 0.3.0
-- declarations back.  Revocations are lost: tokens they refused are valid
-- again until they expire (a WARNING says so when there are any).  Logs and
-- parts are kept.  Tokens issued since 0.3.1 (bl2) keep working: the library
-- checks both forms.
\echo Use "ALTER EXTENSION buildlog UPDATE TO '0.3.0'" to load this file. \quit

do $$
declare
  n bigint;
begin
  select count(*) into n from buildlog.token_revocations
   where revoked_at > pg_catalog.now() - interval '30 days';
  if n > 0 then
    raise warning 'the revocations of % job(s) are dropped: their revoked tokens are valid again until they expire', n
      using hint = 'To refuse them, change the key in buildlog.http_token_key_file (every token is then refused).';
  end if;
end
$$;
-- (a change the HTTP worker is told of at the commit: it forgets them)
delete from buildlog.token_revocations;
alter extension buildlog drop table buildlog.token_revocations;
drop table buildlog.token_revocations;
drop function buildlog.token_revocations_changed();
drop function buildlog.revoke_tokens(bigint);
drop function buildlog.issue_write_token(bigint, interval);
drop function buildlog.issue_read_token(bigint, interval);

comment on function buildlog.issue_token(bigint, text, interval) is
  'A token for the HTTP service: HMAC-SHA256 over the job id, the scope (read, write or admin) and the expiry (now + ttl, at most 30 days), keyed by the file named in buildlog.http_token_key_file. A write token uploads the job''s parts until its final part is stored.';
comment on function buildlog.parts(bigint, int) is
  'Parts of a job numbered above after, one per number, in order, pending or already aggregated, each with the time it arrived (kept through aggregation; the aggregation time for parts merged before 0.3.0): the live-polling read.';
