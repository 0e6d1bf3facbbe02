-- a running log read while parts arrive out of order, with duplicates
select * from buildlog.write_parts('{21,21,21}', '{2,0,2}', array[E'two\n', E'zero\n', E'two\n'], '{f,f,f}');
select buildlog.log(21);
select number, content, final from buildlog.parts(21);
select * from buildlog.write_parts('{21,21}', '{1,3}', array[E'one\n', E'three\n'], '{f,f}');
select buildlog.log(21);
select number, content from buildlog.parts(21, 1);
select number, content from buildlog.parts(21, 3);
-- unknown jobs
select buildlog.log(999) is null as unknown_log, count(*) as unknown_parts from buildlog.parts(999);
select buildlog.aggregate(999) is null as unknown_aggregate;

-- the travis "last" part and an empty final part
select * from buildlog.write_parts('{21,21}', '{2147483647,4}', array['', E'four\n'], '{t,f}');
select number, content, final from buildlog.parts(21, 2);
select buildlog.aggregate(21);
select buildlog.log(21);
select content, part_numbers, part_starts, final_number, aggregated_at is not null as aggregated
  from buildlog.logs where job_id = 21;
select count(*) as pending from buildlog.log_parts where job_id = 21;
-- again: harmless
select buildlog.aggregate(21);
select buildlog.log(21);
-- parts() still serves the aggregated parts, sliced from the content
select number, content, final from buildlog.parts(21, 2);

-- late parts after aggregation land at their numbered place, once
select * from buildlog.write_parts('{22,22,22}', '{0,2,4}', array['a', 'c', 'e'], '{f,f,t}');
select buildlog.aggregate(22);
select * from buildlog.write_parts('{22,22,22,22}', '{3,1,2,5}', array['d', 'b', 'C?', 'f'], '{f,f,f,f}');
select number, late from buildlog.log_parts where job_id = 22 order by number;
select buildlog.log(22);
select buildlog.aggregate(22);
select buildlog.log(22), part_numbers, part_starts, final_number
  from buildlog.logs where job_id = 22;

-- a final part makes the job due after buildlog.aggregate_delay; late parts too
select * from buildlog.write_parts('{23,23,24}', '{0,1,0}', array['x', '', 'y'], '{f,t,f}');
select * from buildlog.aggregatable() where job_id in (23, 24) order by 1;
set buildlog.aggregate_delay = 0;
select job_id from buildlog.aggregatable() where job_id in (22, 23, 24) order by 1;
select buildlog.aggregate(23);
select * from buildlog.write_parts('{23}', '{2}', array['late'], '{f}');
select job_id from buildlog.aggregatable() where job_id in (22, 23, 24) order by 1;
-- a job whose newest part is older than aggregate_force_after is due too
update buildlog.log_parts set created_at = now() - interval '4 hours' where job_id = 24;
reset buildlog.aggregate_delay;
select job_id from buildlog.aggregatable() where job_id in (22, 23, 24) order by 1;
select job_id from buildlog.aggregatable(1);
reset buildlog.aggregate_delay;

-- set_content: travis restart/removal semantics
select * from buildlog.write_parts('{25,25}', '{0,1}', array['old0', 'old1'], '{f,f}');
select buildlog.aggregate(25);
select * from buildlog.write_parts('{25}', '{2}', array['old2'], '{f}');
select buildlog.set_content(25, E'restarted\n');
select buildlog.log(25), part_numbers, aggregated_at, removed_at, removed_by
  from buildlog.logs where job_id = 25;
-- a log set whole is read as parts from its head, part -1, final alone
select number, content, final from buildlog.parts(25);
select count(*) from buildlog.parts(25, -1) where number = -1;
select count(*) from buildlog.parts(25, 0);
-- parts written after set_content follow the new content in number order
select * from buildlog.write_parts('{25,25}', '{1,0}', array[E'new1\n', E'new0\n'], '{f,f}');
select buildlog.log(25);
select buildlog.aggregate(25);
select buildlog.log(25), part_numbers, part_starts from buildlog.logs where job_id = 25;
select number, content from buildlog.parts(25);
-- removal by a user: content cleared, stamped
select buildlog.set_content(25, null, 4242);
select buildlog.log(25) is null as cleared, removed_by, removed_at is not null as stamped
  from buildlog.logs where job_id = 25;
-- set_content on a job never seen creates it
select buildlog.set_content(26, 'hello');
select buildlog.log(26);
select expect_error($$select buildlog.set_content(0, 'x')$$);
