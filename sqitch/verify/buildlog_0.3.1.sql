-- Verify buildlog:buildlog_0.3.1 on pg

BEGIN;

DO $$
BEGIN
  IF (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'buildlog')
     IS DISTINCT FROM '0.3.1' THEN
    RAISE EXCEPTION 'extension buildlog is not at version 0.3.1';
  END IF;
  IF pg_catalog.to_regclass('buildlog.token_revocations') IS NULL THEN
    RAISE EXCEPTION 'table buildlog.token_revocations is missing';
  END IF;
  IF (SELECT count(*) FROM buildlog.installation) <> 1 THEN
    RAISE EXCEPTION 'table buildlog.installation does not hold one row';
  END IF;
  IF pg_catalog.to_regclass('buildlog.stream_offsets') IS NULL THEN
    RAISE EXCEPTION 'table buildlog.stream_offsets is missing';
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
