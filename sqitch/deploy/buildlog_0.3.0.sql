-- Deploy buildlog:buildlog_0.3.0 to pg
-- requires: buildlog_0.2.0
-- Updates the extension in place (the SQL surface named by concern); no table changes.

BEGIN;

ALTER EXTENSION buildlog UPDATE TO '0.3.0';

COMMIT;
