-- A removed log stays removed: parts arriving after the removal
-- (redeliveries, a late runner) are not stored and never bring text back
select * from buildlog.write_parts('{64,64}', '{0,1}', array[E'leaked\n', E'more\n'], '{f,t}');
select buildlog.aggregate(64);
select buildlog.set_content(64, null, 4242);
select * from buildlog.write_parts('{64,64,65}', '{0,2,0}', array[E'leaked\n', E'late\n', E'other job\n'], '{f,f,f}');
select count(*) as stored_for_removed from buildlog.log_parts where job_id = 64;
select buildlog.log(64) is null as still_removed, buildlog.log(65);
select buildlog.aggregate(64);
select content is null as content_null, removed_by from buildlog.logs where job_id = 64;
-- a restart (set_content without removed_by) lets parts flow again
select buildlog.set_content(64, null);
select * from buildlog.write_parts('{64}', '{0}', array[E'rerun\n'], '{f}');
select buildlog.log(64);
