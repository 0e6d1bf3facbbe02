-- Verify buildlog:buildlog_0.3.1 on pg

BEGIN;

DO $$
BEGIN
  IF (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'buildlog')
     IN ('0.1.0', '0.2.0', '0.3.0') THEN
    RAISE EXCEPTION 'extension buildlog is at version %, not 0.3.1 or later',
      (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'buildlog');
  END IF;
  IF pg_catalog.to_regclass('buildlog.token_revocations') IS NULL THEN
    RAISE EXCEPTION 'table buildlog.token_revocations is missing';
  END IF;
  IF pg_catalog.to_regprocedure('buildlog.revoke_tokens(bigint)') IS NULL
     OR pg_catalog.to_regprocedure('buildlog.issue_read_token(bigint, interval)') IS NULL
     OR pg_catalog.to_regprocedure('buildlog.issue_write_token(bigint, interval)') IS NULL THEN
    RAISE EXCEPTION 'buildlog.revoke_tokens, issue_read_token or issue_write_token is missing';
  END IF;
  -- minting and revoking stay closed to PUBLIC
  IF pg_catalog.has_function_privilege('public', 'buildlog.revoke_tokens(bigint)', 'execute')
     OR pg_catalog.has_function_privilege('public', 'buildlog.issue_write_token(bigint, interval)', 'execute')
     OR pg_catalog.has_function_privilege('public', 'buildlog.issue_read_token(bigint, interval)', 'execute') THEN
    RAISE EXCEPTION 'token functions of buildlog are open to PUBLIC';
  END IF;
END
$$;

ROLLBACK;
