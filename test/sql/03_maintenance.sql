-- run_maintenance: nothing to do right after install, nothing dropped
select created, dropped, tries from buildlog.run_maintenance();
-- an expired partition (older than the 3 day retention) is dropped
select partman.create_partition_time('buildlog.log_parts',
                                     array[date_trunc('day', now()) - interval '6 days']);
insert into buildlog.log_parts (job_id, number, content, created_at)
values (31, 0, 'expired', date_trunc('day', now()) - interval '6 days' + interval '1 hour');
select buildlog.write_parts('{31}', '{1}', '{"live"}', '{f}');
select cardinality(created) as created, cardinality(dropped) as dropped,
       dropped[1] = 'buildlog.log_parts_p' || to_char(now() - interval '6 days', 'YYYY_MM_DD') as expired_one,
       tries
  from buildlog.run_maintenance();
select number, content from buildlog.log_parts where job_id = 31;
select expect_error($$select buildlog.run_maintenance(0)$$);

-- privileges: a reading service and a writing service
create role buildlog_test_reader;
create role buildlog_test_writer;
grant usage on schema buildlog to buildlog_test_reader, buildlog_test_writer;
grant select on buildlog.logs, buildlog.log_parts to buildlog_test_reader;
grant select, insert on buildlog.logs, buildlog.log_parts to buildlog_test_writer;
grant execute on function buildlog.write_parts(bigint[], int[], text[], bool[]) to buildlog_test_writer;
set role buildlog_test_writer;
select * from buildlog.write_parts('{32}', '{0}', '{"from the writer"}', '{f}');
reset role;
set role buildlog_test_reader;
select buildlog.log(32);
select number, content from buildlog.parts(32);
select * from buildlog.write_parts('{32}', '{1}', '{"denied"}', '{f}');
select buildlog.aggregate(32);
reset role;
drop owned by buildlog_test_reader, buildlog_test_writer;
drop role buildlog_test_reader, buildlog_test_writer;

-- DROP EXTENSION removes everything; CREATE again works (stale partman config replaced)
drop extension buildlog;
select count(*) from pg_class where relname like 'log_parts%';
create extension buildlog;
select count(*) from partman.part_config where parent_table = 'buildlog.log_parts';
