-- A hand-edited row: every reader and aggregate() raise XX001 naming
-- the job, with a repair hint; nothing reads out of bounds (this crashed before).
select * from buildlog.write_parts('{61,61,61}', '{0,1,2}', array[E'one\n', E'two\n', E'three\n'], '{f,f,t}');
select buildlog.aggregate(61);
update buildlog.logs set content = replace(content, 'three', '3') where job_id = 61;
update buildlog.logs set content = 'x' where job_id = 61;
select expect_error('select buildlog.log(61)');
select expect_error('select buildlog.fetch(61)');
select expect_error('select count(*) from buildlog.parts(61)');
select expect_error('select count(*) from buildlog.parts(61, 1)');
select * from buildlog.write_parts('{61}', '{3}', '{"late"}', '{f}');
select expect_error('select buildlog.aggregate(61)');
select expect_error($$select buildlog.redact(61, 'x', 'y')$$);
-- every other kind of inconsistent bookkeeping
update buildlog.logs set content = E'one\ntwo\nthree\n', part_starts = '{0,8,4}' where job_id = 61;
select expect_error('select buildlog.log(61)');
update buildlog.logs set part_starts = '{0,4,8}', part_numbers = '{0,2,1}' where job_id = 61;
select expect_error('select buildlog.log(61)');
update buildlog.logs set part_numbers = '{0,0,1}' where job_id = 61;
select expect_error('select buildlog.log(61)');
update buildlog.logs set part_numbers = '{-3,1,2}' where job_id = 61;
select expect_error('select buildlog.log(61)');
update buildlog.logs set part_numbers = '{0,1}' where job_id = 61;
select expect_error('select buildlog.log(61)');
update buildlog.logs set part_numbers = '{0,1,2}', part_starts = '{-1,4,8}' where job_id = 61;
select expect_error('select buildlog.log(61)');
update buildlog.logs set part_starts = '{0,4,2000000000}' where job_id = 61;
select expect_error('select buildlog.log(61)');
update buildlog.logs set part_starts = '{{0,4},{8,9}}' where job_id = 61;
select expect_error('select buildlog.log(61)');
update buildlog.logs set part_starts = '{0,null,8}' where job_id = 61;
select expect_error('select buildlog.log(61)');
update buildlog.logs set part_starts = '{0,4,8}', content = null where job_id = 61;
select expect_error('select buildlog.log(61)');
-- the hint's repair: the text is kept as the head, later parts follow it
update buildlog.logs set content = E'one\ntwo\n3\n' where job_id = 61;
select buildlog.set_content(61, content) from buildlog.logs where job_id = 61;
select * from buildlog.write_parts('{61}', '{7}', array[E'seven\n'], '{f}');
select buildlog.log(61);
select buildlog.aggregate(61);
select content, part_numbers, part_starts from buildlog.logs where job_id = 61;
