-- Revert buildlog:buildlog from pg

BEGIN;

-- Drops every buildlog table, partition and function, and pg_partman's
-- template table, which was created inside CREATE EXTENSION.
DROP EXTENSION IF EXISTS buildlog;

-- pg_partman keeps its configuration row for the dropped parent table.
DELETE FROM partman.part_config WHERE parent_table = 'buildlog.log_parts';

-- Normally dropped with the extension (it is created inside CREATE EXTENSION);
-- covers a template left behind otherwise. No "does not exist" notice.
SET LOCAL client_min_messages = warning;
DROP TABLE IF EXISTS partman.template_buildlog_log_parts;

-- CREATE EXTENSION created schema buildlog, but the schema is not a member of
-- the extension: drop it unless something else still lives in it.
DO $$
BEGIN
  DROP SCHEMA IF EXISTS buildlog;
EXCEPTION WHEN dependent_objects_still_exist THEN
  RAISE WARNING 'schema buildlog is not empty; kept';
END
$$;

COMMIT;
