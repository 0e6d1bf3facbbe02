-- Verify buildlog:buildlog_0.3.2 on pg

BEGIN;

DO $$
BEGIN
  IF (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'buildlog')
     IS DISTINCT FROM '0.3.2' THEN
    RAISE EXCEPTION 'extension buildlog is not at version 0.3.2';
  END IF;
  IF pg_catalog.to_regclass('buildlog.stream_offsets') IS NULL THEN
    RAISE EXCEPTION 'table buildlog.stream_offsets is missing';
  END IF;
  IF pg_catalog.to_regclass('buildlog.job_secrets') IS NULL THEN
    RAISE EXCEPTION 'table buildlog.job_secrets is missing';
  END IF;
  IF pg_catalog.to_regprocedure('buildlog.add_secrets(bigint, text[])') IS NULL THEN
    RAISE EXCEPTION 'buildlog.add_secrets(bigint, text[]) is missing';
  END IF;
  IF (SELECT count(*) FROM buildlog.installation) <> 1 THEN
    RAISE EXCEPTION 'table buildlog.installation does not hold one row';
  END IF;
  IF pg_catalog.to_regprocedure('buildlog.declare_queues(text, integer, text, text)') IS NULL THEN
    RAISE EXCEPTION 'buildlog.declare_queues(text, int, text, text) is missing';
  END IF;
END
$$;

ROLLBACK;
