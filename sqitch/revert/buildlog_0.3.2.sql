-- Revert buildlog:buildlog_0.3.2 from pg
-- Back to 0.3.1 through buildlog--0.3.2--0.3.1.sql: logs are kept, stream
-- offsets and the installation id are dropped.

BEGIN;

ALTER EXTENSION buildlog UPDATE TO '0.3.1';

COMMIT;
