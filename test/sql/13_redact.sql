-- buildlog.redact(): the supported edit; offsets follow the new lengths
select * from buildlog.write_parts('{62,62,62,62}', '{0,1,2,3}',
  array[E'$ export TOKEN=s3cr3t\n', E'ok\n', E'curl -H "Authorization: s3cr3t" x\n', E'done\n'], '{f,f,f,t}');
select buildlog.aggregate(62);
-- a pending part (not aggregated yet) is redacted too
select * from buildlog.write_parts('{62}', '{4}', array[E'late s3cr3t\n'], '{f}');
update buildlog.logs set archived_at = now(), archive_size = 1, archive_sha256 = 'x', archive_etag = 'y'
 where job_id = 62;
select buildlog.redact(62, 's3cr3t', '[REDACTED]');
select buildlog.log(62);
select number, content from buildlog.parts(62);
select part_numbers, part_starts, archived_at is null as archive_reset, archive_sha256 is null as facts_reset
  from buildlog.logs where job_id = 62;
select count(*) as pending from buildlog.log_parts where job_id = 62;
-- nothing left to redact: 0, nothing changes
select buildlog.redact(62, 's3cr3t');
-- case-insensitive flags, default replacement
select buildlog.redact(62, 'CURL', '[REDACTED]', 'gi');
select number, content from buildlog.parts(62, 1);
-- a match across two parts is refused, nothing changes
select expect_error($$select buildlog.redact(62, E'ok\n\\[RED', 'x')$$);
select expect_error($$select buildlog.redact(62, 'done', 'done')$$);
select expect_error($$select buildlog.redact(62, '', 'x')$$);
select expect_error($$select buildlog.redact(62, null, 'x')$$);
select expect_error($$select buildlog.redact(62, '(', 'x')$$);
select buildlog.redact(999062, 'x') is null as unknown_job;
select buildlog.log(62);
-- the head set by set_content is redacted too
select buildlog.set_content(63, E'head s3cr3t\n');
select * from buildlog.write_parts('{63}', '{0}', array[E'part s3cr3t\n'], '{f}');
select buildlog.redact(63, 's3cr3t', '***');
select content, part_numbers, part_starts from buildlog.logs where job_id = 63;
