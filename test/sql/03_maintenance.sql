-- Everything up to the COMMIT below runs in one transaction, so now() is one
-- instant: the partition boundaries computed from it (what retention drops,
-- what premake adds, the expired partition's name) cannot move under the
-- test, whatever the time of day (a run across midnight included).
begin;
-- run_maintenance right after install drops exactly the partitions whose end
-- is past the 3 day retention: none, unless midnight passed since 00_install
select coalesce(array_agg(p order by p), '{}') as expected_dropped
  from (select s.partition_schemaname || '.' || s.partition_tablename as p
          from partman.show_partitions('buildlog.log_parts') s,
               partman.show_partition_info(s.partition_schemaname || '.' || s.partition_tablename,
                                           p_parent_table := 'buildlog.log_parts') i
         where i.child_end_time < now() - interval '3 days') e \gset
select dropped = :'expected_dropped'::text[] as dropped_exactly_the_expired,
       kept, kept_parts, rejected_deleted, tries
  from buildlog.run_maintenance();
-- and leaves partitions for now() and the two days after it
select d as days_ahead, count(*) as partitions
  from generate_series(0, 2) d,
       partman.show_partitions('buildlog.log_parts') s,
       partman.show_partition_info(s.partition_schemaname || '.' || s.partition_tablename,
                                   p_parent_table := 'buildlog.log_parts') i
 where now() + d * interval '1 day' >= i.child_start_time
   and now() + d * interval '1 day' < i.child_end_time
 group by d order by d;
-- buildlog owns the maintenance of log_parts: pg_partman's own runs skip it
select automatic_maintenance from partman.part_config where parent_table = 'buildlog.log_parts';
-- an expired partition (older than the 3 day retention) holding a part that
-- was never aggregated is kept (with a warning); once aggregated, dropped
select partman.create_partition_time('buildlog.log_parts',
                                     array[date_trunc('day', now()) - interval '6 days']);
insert into buildlog.log_parts (job_id, number, content, created_at)
values (31, 0, 'expired', date_trunc('day', now()) - interval '6 days' + interval '1 hour');
select buildlog.write_parts('{31}', '{1}', '{"live"}', '{f}');
set client_min_messages = error;    -- the warning names today's partitions
select cardinality(created) as created, cardinality(dropped) as dropped,
       kept = array['buildlog.log_parts_p' || to_char(now() - interval '6 days', 'YYYY_MM_DD')] as kept_the_expired_one,
       kept_parts, tries
  from buildlog.run_maintenance();
reset client_min_messages;
select number, content from buildlog.log_parts where job_id = 31;
select expired_parts from buildlog.lifecycle;
select buildlog.aggregate(31);
select expired_parts from buildlog.lifecycle;
select cardinality(created) as created, cardinality(dropped) as dropped,
       dropped[1] = 'buildlog.log_parts_p' || to_char(now() - interval '6 days', 'YYYY_MM_DD') as expired_one,
       kept, kept_parts, tries
  from buildlog.run_maintenance();
select buildlog.log(31);
-- the retention of rejected deliveries (buildlog.rejected_retention)
insert into buildlog.rejected_parts (received_at, reason, body)
values (now() - interval '15 days', 'old', '\x00'), (now() - interval '13 days', 'recent', '\x01');
select rejected_deleted from buildlog.run_maintenance();
select reason from buildlog.rejected_parts where reason in ('old', 'recent');
set buildlog.rejected_retention = 0;
insert into buildlog.rejected_parts (received_at, reason, body)
values (now() - interval '400 days', 'ancient', '\x00');
select rejected_deleted from buildlog.run_maintenance();
reset buildlog.rejected_retention;
select rejected_deleted from buildlog.run_maintenance();
delete from buildlog.rejected_parts;
-- the caller's search_path survives run_maintenance (pg_partman resets it),
-- also inside a transaction (it pins its own for the transaction)
show search_path;
select expect_error($$select buildlog.run_maintenance(0)$$);

commit;

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
select expect_error($$select * from buildlog.write_parts('{32}', '{1}', '{"denied"}', '{f}')$$);
select expect_error('select buildlog.aggregate(32)');
reset role;
drop owned by buildlog_test_reader, buildlog_test_writer;
drop role buildlog_test_reader, buildlog_test_writer;

-- DROP EXTENSION removes everything; CREATE again works (stale partman config replaced)
drop extension buildlog;
select count(*) from pg_class where relname like 'log_parts%';
create extension buildlog;
select count(*) from partman.part_config where parent_table = 'buildlog.log_parts';
