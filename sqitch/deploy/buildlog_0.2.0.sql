-- Deploy buildlog:buildlog_0.2.0 to pg
-- requires: buildlog
-- Updates the extension in place: logs, parts and rejected deliveries are kept.

BEGIN;

ALTER EXTENSION buildlog UPDATE TO '0.2.0';

COMMIT;
