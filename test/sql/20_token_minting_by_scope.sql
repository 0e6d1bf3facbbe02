-- Minting by scope: issue_read_token() and issue_write_token() mint one scope
-- each, so a CI platform's role mints its runners' write tokens (and its
-- pages' read tokens) without issue_token(), which mints admin tokens.  The
-- grant recipe of the README (HTTP service > Who may mint and revoke
-- tokens), verbatim, then used by each role.  None is open to PUBLIC.
\i test/sql/include/token_key.sql

select buildlog.issue_write_token(9201) as w, buildlog.issue_read_token(9201, '5 minutes') as r \gset
select split_part(:'w', '.', 1) as form, split_part(:'w', '.', 3) as scope,
       split_part(:'w', '.', 5)::bigint - split_part(:'w', '.', 4)::bigint / 1000000 as ttl_seconds;
select split_part(:'r', '.', 3) as scope,
       split_part(:'r', '.', 5)::bigint - split_part(:'r', '.', 4)::bigint / 1000000 as ttl_seconds;
select expect_error($$select buildlog.issue_write_token(9201, '31 days')$$);
select expect_error($$select buildlog.issue_read_token(0)$$);
select buildlog.issue_write_token(null) is null as strict;

-- not open to PUBLIC
select p.oid::regprocedure as function, has_function_privilege('public', p.oid, 'execute') as public_may_call
  from pg_proc p
 where p.oid in ('buildlog.issue_token(bigint, text, interval)'::regprocedure,
                 'buildlog.issue_read_token(bigint, interval)'::regprocedure,
                 'buildlog.issue_write_token(bigint, interval)'::regprocedure,
                 'buildlog.revoke_tokens(bigint)'::regprocedure)
 order by p.oid::regprocedure::text;
create role mint_regress_nobody;
grant usage on schema buildlog to mint_regress_nobody;
set role mint_regress_nobody;
select expect_error('select buildlog.issue_write_token(9201)');
select expect_error('select buildlog.issue_read_token(9201)');
reset role;
-- a role granted issue_write_token() alone: write tokens, nothing else
grant execute on function buildlog.issue_write_token(bigint, interval) to mint_regress_nobody;
set role mint_regress_nobody;
select split_part(buildlog.issue_write_token(9201), '.', 3) as minted;
select expect_error($$select buildlog.issue_token(9201, 'admin')$$);
select expect_error('select buildlog.issue_read_token(9201)');
reset role;
drop owned by mint_regress_nobody;
drop role mint_regress_nobody;

-- the README's recipe
CREATE ROLE buildlog_operator NOLOGIN;    -- operators: any scope, admin included; revocation
GRANT USAGE ON SCHEMA buildlog TO buildlog_operator;
GRANT EXECUTE ON FUNCTION buildlog.issue_token(bigint, text, interval),
                          buildlog.revoke_tokens(bigint) TO buildlog_operator;
GRANT SELECT, INSERT, UPDATE, DELETE ON buildlog.token_revocations TO buildlog_operator;

CREATE ROLE ci_platform NOLOGIN;          -- starts jobs: write tokens for runners, read tokens for pages
GRANT USAGE ON SCHEMA buildlog TO ci_platform;
GRANT EXECUTE ON FUNCTION buildlog.issue_write_token(bigint, interval),
                          buildlog.issue_read_token(bigint, interval) TO ci_platform;

-- the CI platform mints write and read tokens, never admin ones
set role ci_platform;
select split_part(buildlog.issue_write_token(9202, '2 hours'), '.', 3) as minted;
select split_part(buildlog.issue_read_token(9202), '.', 3) as minted;
select expect_error($$select buildlog.issue_token(9202, 'admin')$$);
select expect_error($$select buildlog.issue_token(9202, 'write')$$);
select expect_error('select buildlog.revoke_tokens(9202)');
reset role;
-- the operator mints any scope and revokes
set role buildlog_operator;
select split_part(buildlog.issue_token(9202, 'admin'), '.', 3) as minted;
select buildlog.revoke_tokens(9202) is not null as revoked;
reset role;
select job_id from buildlog.token_revocations where job_id = 9202;

delete from buildlog.token_revocations;
drop owned by buildlog_operator, ci_platform;
drop role buildlog_operator, ci_platform;
\i test/sql/include/token_key_reset.sql
