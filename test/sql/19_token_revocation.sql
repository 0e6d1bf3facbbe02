-- Token revocation: tokens carry their issue time (bl2), revoke_tokens(job)
-- records the time up to which the job's tokens are refused, later calls move
-- it forward, revocations older than 30 days are deleted by the next call
-- when the caller may delete them, and every change of the table is counted
-- at its commit for the HTTP worker (its trigger, also for a DBA's own
-- DELETE).  Not open to PUBLIC.  (The HTTP worker's refusals: TAP 064.)
\i test/sql/include/token_key.sql

-- the token's fields: bl2.<job>.<scope>.<issued, Unix us>.<expiry, Unix s>.<MAC>
select buildlog.issue_token(9101, 'write') as t \gset
select :'t' ~ '^bl2\.9101\.write\.[0-9]{16}\.[0-9]{10}\.[A-Za-z0-9_-]{43}$' as bl2_form;
select abs(split_part(:'t', '.', 4)::numeric / 1e6 - extract(epoch from clock_timestamp())) < 60 as issued_now,
       split_part(:'t', '.', 5)::bigint - split_part(:'t', '.', 4)::bigint / 1000000 as ttl_seconds;

-- revoke: the time returned is recorded, after the token's issue time
select buildlog.revoke_tokens(9101) as revoked_at \gset
select abs(extract(epoch from :'revoked_at'::timestamptz - clock_timestamp())) < 60 as revoked_now,
       (select revoked_at from buildlog.token_revocations where job_id = 9101) = :'revoked_at'::timestamptz as recorded,
       split_part(:'t', '.', 4)::numeric <= extract(epoch from :'revoked_at'::timestamptz) * 1e6 as token_issued_before;
-- a token issued afterwards carries a later issue time: it is not refused
select buildlog.issue_token(9101, 'write') as t2 \gset
select split_part(:'t2', '.', 4)::numeric > extract(epoch from :'revoked_at'::timestamptz) * 1e6 as new_token_issued_after;
-- revoking again moves the time forward, one row per job
select buildlog.revoke_tokens(9101) > :'revoked_at'::timestamptz as moved_forward;
select count(*) as rows_of_the_job from buildlog.token_revocations where job_id = 9101;
-- a later time already recorded is kept (a call returns its own)
update buildlog.token_revocations set revoked_at = '2100-01-01' where job_id = 9101;
select buildlog.revoke_tokens(9101) < '2100-01-01' as returns_its_own_time,
       (select revoked_at from buildlog.token_revocations where job_id = 9101) = '2100-01-01' as later_time_kept;
select expect_error('select buildlog.revoke_tokens(0)');
select buildlog.revoke_tokens(null) is null as strict;

-- revocations older than the longest token lifetime (30 days) refuse nothing
-- alive: the next call deletes them
insert into buildlog.token_revocations values (9102, now() - interval '31 days'),
                                               (9103, now() - interval '29 days');
select buildlog.revoke_tokens(9104) is not null as revoked;
select job_id from buildlog.token_revocations where job_id in (9102, 9103, 9104) order by 1;

-- the trigger counts every change for the HTTP worker; it runs as a trigger only
select tgname, tgtype from pg_trigger where tgrelid = 'buildlog.token_revocations'::regclass;
select expect_error('select buildlog.token_revocations_changed()');
delete from buildlog.token_revocations where job_id = 9104;

-- the revocations are dumped with the data (pg_dump / pg_restore keep them)
select 'buildlog.token_revocations'::regclass = any (extconfig) as dumped
  from pg_extension where extname = 'buildlog';

-- privileges: not open to PUBLIC; a role granted revoke_tokens() and the
-- table's SELECT, INSERT, UPDATE revokes, and without DELETE leaves old rows
select has_function_privilege('public', 'buildlog.revoke_tokens(bigint)', 'execute') as public_may_revoke;
create role revoke_regress_user;
grant usage on schema buildlog to revoke_regress_user;
set role revoke_regress_user;
select expect_error('select buildlog.revoke_tokens(9105)');
reset role;
grant execute on function buildlog.revoke_tokens(bigint) to revoke_regress_user;
grant select, insert, update on buildlog.token_revocations to revoke_regress_user;
insert into buildlog.token_revocations values (9106, now() - interval '31 days');
set role revoke_regress_user;
select buildlog.revoke_tokens(9105) is not null as revoked_by_the_role;
select expect_error('delete from buildlog.token_revocations');
reset role;
select job_id from buildlog.token_revocations where job_id in (9105, 9106) order by 1;
drop owned by revoke_regress_user;
drop role revoke_regress_user;

delete from buildlog.token_revocations;
\i test/sql/include/token_key_reset.sql
