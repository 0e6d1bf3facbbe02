-- Verify buildlog:buildlog_0.3.0 on pg

BEGIN;

DO $$
BEGIN
  IF (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'buildlog')
     IS DISTINCT FROM '0.3.0' THEN
    RAISE EXCEPTION 'extension buildlog is not at version 0.3.0';
  END IF;
  -- log() is the SQL alias of fetch() from 0.3.0 on
  IF (SELECT l.lanname FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_language l ON l.oid = p.prolang
       WHERE p.oid = 'buildlog.log(bigint)'::pg_catalog.regprocedure) IS DISTINCT FROM 'sql' THEN
    RAISE EXCEPTION 'buildlog.log is not the SQL alias of buildlog.fetch';
  END IF;
END
$$;

ROLLBACK;
