-- Deploy buildlog:buildlog to pg
-- requires: partman
-- Creates schema buildlog and registers buildlog.log_parts with pg_partman.

BEGIN;

CREATE EXTENSION buildlog;

COMMIT;
