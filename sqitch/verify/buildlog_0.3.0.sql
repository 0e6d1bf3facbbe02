-- Verify buildlog:buildlog_0.3.0 on pg

BEGIN;

DO $$
BEGIN
  -- 0.3.0 or a later version that keeps what 0.3.0 added
  IF (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'buildlog')
     IN ('0.1.0', '0.2.0') THEN
    RAISE EXCEPTION 'extension buildlog is at version %, not 0.3.0 or later',
      (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'buildlog');
  END IF;
  IF pg_catalog.to_regprocedure('buildlog.issue_token(bigint, text, interval)') IS NULL THEN
    RAISE EXCEPTION 'function buildlog.issue_token is missing';
  END IF;
  -- log() is the SQL alias of fetch() from 0.3.0 on
  IF (SELECT l.lanname FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_language l ON l.oid = p.prolang
       WHERE p.oid = 'buildlog.log(bigint)'::pg_catalog.regprocedure) IS DISTINCT FROM 'sql' THEN
    RAISE EXCEPTION 'buildlog.log is not the SQL alias of buildlog.fetch';
  END IF;
END
$$;

ROLLBACK;
