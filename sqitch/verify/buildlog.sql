-- Verify buildlog:buildlog on pg

BEGIN;

DO $$
DECLARE
  fn text;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e
                   JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
                  WHERE e.extname = 'buildlog' AND n.nspname = 'buildlog') THEN
    RAISE EXCEPTION 'extension buildlog is not installed in schema buildlog';
  END IF;

  IF pg_catalog.to_regclass('buildlog.logs') IS NULL
     OR pg_catalog.to_regclass('buildlog.log_parts') IS NULL THEN
    RAISE EXCEPTION 'buildlog.logs or buildlog.log_parts is missing';
  END IF;

  IF NOT EXISTS (SELECT 1 FROM partman.part_config
                  WHERE parent_table = 'buildlog.log_parts') THEN
    RAISE EXCEPTION 'buildlog.log_parts is not registered in partman.part_config';
  END IF;

  FOREACH fn IN ARRAY ARRAY[
    'buildlog.write_parts(bigint[], integer[], text[], boolean[])',
    'buildlog.log(bigint)',
    'buildlog.aggregate(bigint)',
    'buildlog.run_maintenance(integer)'
  ] LOOP
    IF pg_catalog.to_regprocedure(fn) IS NULL THEN
      RAISE EXCEPTION 'function % is missing', fn;
    END IF;
  END LOOP;
END
$$;

ROLLBACK;
