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
