-- Verify buildlog:partman on pg

BEGIN;

DO $$
DECLARE
  ext_schema name;
  ext_version text;
BEGIN
  SELECT n.nspname, e.extversion INTO ext_schema, ext_version
    FROM pg_catalog.pg_extension e
    JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
   WHERE e.extname = 'pg_partman';
  IF ext_schema IS NULL THEN
    RAISE EXCEPTION 'pg_partman is not installed';
  END IF;
  IF ext_schema <> 'partman' THEN
    RAISE EXCEPTION 'pg_partman is installed in schema %, not partman', ext_schema;
  END IF;
  IF ext_version NOT LIKE '4.%' THEN
    RAISE EXCEPTION 'pg_partman % is installed; buildlog needs 4.x', ext_version;
  END IF;
  IF pg_catalog.to_regclass('partman.part_config') IS NULL THEN
    RAISE EXCEPTION 'partman.part_config is missing';
  END IF;
END
$$;

ROLLBACK;
