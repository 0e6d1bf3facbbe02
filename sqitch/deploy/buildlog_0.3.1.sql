-- Deploy buildlog:buildlog_0.3.1 to pg
-- requires: buildlog_0.3.0
-- Updates the extension in place: job tokens carry their issue time and can
-- be revoked (table buildlog.token_revocations, revoke_tokens()), and minted
-- by scope (issue_read_token(), issue_write_token()).  Logs are untouched.

BEGIN;

ALTER EXTENSION buildlog UPDATE TO '0.3.1';

COMMIT;
