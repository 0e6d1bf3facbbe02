-- Revert buildlog:buildlog_0.3.1 from pg
-- Back to 0.3.0 through buildlog--0.3.1--0.3.0.sql: logs are kept, token
-- revocations are dropped (a WARNING says how many; the tokens they refused
-- are valid again until they expire).

BEGIN;

ALTER EXTENSION buildlog UPDATE TO '0.3.0';

COMMIT;
