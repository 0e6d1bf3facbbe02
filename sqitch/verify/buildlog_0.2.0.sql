-- Verify buildlog:buildlog_0.2.0 on pg

BEGIN;

DO $$
BEGIN
  -- 0.2.0 or a later version that keeps what 0.2.0 added
  IF (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'buildlog')
     IS NOT DISTINCT FROM '0.1.0' THEN
    RAISE EXCEPTION 'extension buildlog is at version 0.1.0, not 0.2.0 or later';
  END IF;
  IF pg_catalog.to_regprocedure('buildlog.redact(bigint, text, text, text)') IS NULL THEN
    RAISE EXCEPTION 'function buildlog.redact is missing';
  END IF;
END
$$;

ROLLBACK;
