-- Verify buildlog:buildlog_0.2.0 on pg

BEGIN;

DO $$
BEGIN
  IF (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'buildlog')
     IS DISTINCT FROM '0.2.0' THEN
    RAISE EXCEPTION 'extension buildlog is not at version 0.2.0';
  END IF;
  IF pg_catalog.to_regprocedure('buildlog.redact(bigint, text, text, text)') IS NULL THEN
    RAISE EXCEPTION 'function buildlog.redact is missing';
  END IF;
END
$$;

ROLLBACK;
