-- Revert buildlog:buildlog_0.2.0 from pg
-- Back to 0.1.0 through buildlog--0.2.0--0.1.0.sql; data is kept.

BEGIN;

ALTER EXTENSION buildlog UPDATE TO '0.1.0';

COMMIT;
