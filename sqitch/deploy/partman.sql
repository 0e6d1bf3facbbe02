-- Deploy buildlog:partman to pg
-- pg_partman 4.x in schema partman, as CREATE EXTENSION buildlog requires.

BEGIN;

CREATE SCHEMA IF NOT EXISTS partman;
CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman;

COMMIT;
