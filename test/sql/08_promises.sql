-- README promises that had no test of their own (issue 9).

-- A non-UTF-8 database is refused with 0A000.
\set regression_db :DBNAME
create database buildlog_latin1 encoding 'LATIN1' lc_collate 'C' lc_ctype 'C' template template0;
\c buildlog_latin1
create schema partman;
create extension pg_partman schema partman;
do $$
begin
  create extension buildlog;
  raise notice 'no error';
exception when others then
  raise notice '%: %', sqlstate, sqlerrm;
end
$$;
\c :regression_db
drop database buildlog_latin1;

-- Among different pending copies of one part number, the oldest wins, in
-- every reader and in the aggregation.
insert into buildlog.log_parts (job_id, number, content, created_at) values
  (81, 0, E'newer copy\n', now() - interval '1 minute'),
  (81, 0, E'oldest copy\n', now() - interval '2 minutes'),
  (81, 0, E'newest copy\n', now());
insert into buildlog.logs (job_id) values (81);
select buildlog.log(81);
select number, content from buildlog.parts(81);
select buildlog.aggregate(81);
select content from buildlog.logs where job_id = 81;
-- a later copy of a merged part is dropped
select * from buildlog.write_parts('{81}', '{0}', array[E'redelivered, different\n'], '{f}');
select buildlog.aggregate(81), buildlog.log(81);

-- set_content() resets the archive facts (the new text is archived again)
update buildlog.logs set archived_at = now(), archive_size = 12, archive_sha256 = 'a', archive_etag = 'b',
       verified_at = now() where job_id = 81;
select buildlog.set_content(81, E'replaced\n');
select archived_at, archive_size, archive_sha256, archive_etag, verified_at, purged_at
  from buildlog.logs where job_id = 81;

-- fetch() of a purged log without S3 configured: 22023 with a hint
update buildlog.logs set archived_at = now(), archive_size = 9, archive_sha256 = repeat('0', 64),
       archive_etag = 'x', verified_at = now(), purged_at = now(), content = null,
       part_numbers = '{}', part_starts = '{}' where job_id = 81;
set buildlog.s3_endpoint = '';
select expect_error('select buildlog.fetch(81)');
reset buildlog.s3_endpoint;
delete from buildlog.logs where job_id = 81;

-- replay_rejected(): still invalid is 22P02 with the reason; a fixed body is
-- written through the ingest path, stamped replayed_at and kept as fixed_body
insert into buildlog.rejected_parts (reason, body)
values ('"id" is not a positive integer', convert_to('{"id":0,"number":1,"log":"x"}', 'UTF8'));
select regexp_replace(expect_error($$select buildlog.replay_rejected((select max(id) from buildlog.rejected_parts))$$),
                      'delivery \d+', 'delivery N') as error;
select replayed_at is null as not_replayed from buildlog.rejected_parts
 where id = (select max(id) from buildlog.rejected_parts);
select buildlog.replay_rejected((select max(id) from buildlog.rejected_parts),
                                convert_to('{"id":82,"number":1,"log":"fixed"}', 'UTF8'));
select replayed_at is not null as replayed, convert_from(fixed_body, 'UTF8') as fixed_body
  from buildlog.rejected_parts where id = (select max(id) from buildlog.rejected_parts);
select buildlog.log(82);
select expect_error('select buildlog.replay_rejected(-1)');
delete from buildlog.rejected_parts;

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
