-- Deploy buildlog:buildlog to pg
-- requires: partman
-- Creates schema buildlog and registers buildlog.log_parts with pg_partman.

BEGIN;

-- Pinned to 0.1.0: the change buildlog_0.2.0 updates it.
CREATE EXTENSION buildlog VERSION '0.1.0';

COMMIT;
