-- Revert buildlog:partman from pg
-- No CASCADE: fails rather than drop anything else that lives in schema partman.

BEGIN;

DROP EXTENSION IF EXISTS pg_partman;
DROP SCHEMA IF EXISTS partman;

COMMIT;
