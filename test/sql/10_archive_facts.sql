-- Archive facts: set_content() resets them (the new text is archived again);
-- fetch() of a purged log without S3 configured is 22023 with a hint.
select (buildlog.write_parts('{84}', '{0}', array[E'archived text\n'], '{t}')).parts;
select buildlog.aggregate(84);
update buildlog.logs set archived_at = now(), archive_size = 14, archive_sha256 = 'a', archive_etag = 'b',
       verified_at = now() where job_id = 84;
select buildlog.set_content(84, E'replaced\n');
select archived_at, archive_size, archive_sha256, archive_etag, verified_at, purged_at
  from buildlog.logs where job_id = 84;

update buildlog.logs set archived_at = now(), archive_size = 9, archive_sha256 = repeat('0', 64),
       archive_etag = 'x', verified_at = now(), purged_at = now(), content = null,
       part_numbers = '{}', part_starts = '{}' where job_id = 84;
set buildlog.s3_endpoint = '';
select expect_error('select buildlog.fetch(84)');
reset buildlog.s3_endpoint;
delete from buildlog.logs where job_id = 84;
