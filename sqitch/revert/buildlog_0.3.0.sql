-- Revert buildlog:buildlog_0.3.0 from pg
-- Back to 0.2.0 through buildlog--0.3.0--0.2.0.sql; data is kept.

BEGIN;

ALTER EXTENSION buildlog UPDATE TO '0.2.0';

COMMIT;
