-- The privilege recipe of the README (Operations > Privileges), verbatim, then used.
CREATE ROLE buildlog_reader NOLOGIN;      -- services that show logs
GRANT USAGE ON SCHEMA buildlog TO buildlog_reader;
GRANT SELECT ON buildlog.logs, buildlog.log_parts TO buildlog_reader;

CREATE ROLE buildlog_writer NOLOGIN;      -- ingest services (write_parts)
GRANT USAGE ON SCHEMA buildlog TO buildlog_writer;
GRANT SELECT, INSERT ON buildlog.logs, buildlog.log_parts TO buildlog_writer;
GRANT EXECUTE ON FUNCTION buildlog.write_parts(bigint[], int[], text[], bool[]),
                          buildlog.write_raw_parts(bigint[], int[], bytea[], bool[])
   TO buildlog_writer;

CREATE ROLE buildlog_admin NOLOGIN;       -- aggregation, restarts/removals
GRANT buildlog_reader TO buildlog_admin;
GRANT UPDATE, DELETE ON buildlog.logs, buildlog.log_parts TO buildlog_admin;
GRANT INSERT ON buildlog.logs TO buildlog_admin;
GRANT EXECUTE ON FUNCTION buildlog.aggregate(bigint),
                          buildlog.set_content(bigint, text, bigint),
                          buildlog.redact(bigint, text, text, text) TO buildlog_admin;
set role buildlog_writer;
select * from buildlog.write_parts('{83}', '{0}', array[E'secret=1\n'], '{t}');
select * from buildlog.write_raw_parts('{83}', '{1}', array['\x6f6b0a'::bytea], '{f}');
select expect_error('select buildlog.aggregate(83)');
reset role;
set role buildlog_reader;
select buildlog.log(83), (select count(*) from buildlog.parts(83)) as parts;
select expect_error($$select * from buildlog.write_parts('{83}', '{2}', '{x}', '{f}')$$);
select expect_error($$select buildlog.redact(83, 'secret', 'x')$$);
reset role;
set role buildlog_admin;
select buildlog.aggregate(83);
select buildlog.redact(83, 'secret=1', 'secret=***');
select buildlog.log(83);
select buildlog.set_content(83, null, 1);
reset role;
drop owned by buildlog_reader, buildlog_writer, buildlog_admin;
drop role buildlog_admin, buildlog_writer, buildlog_reader;
