-- Deploy buildlog:buildlog_0.3.2 to pg
-- requires: buildlog_0.3.1
-- Updates the extension in place: stream uploads keep their offsets in
-- buildlog.stream_offsets, the deployment's id for its archive objects is in
-- buildlog.installation, and declare_queues() gains queue_type (quorum by
-- default).  Logs are untouched.

BEGIN;

ALTER EXTENSION buildlog UPDATE TO '0.3.2';

COMMIT;
