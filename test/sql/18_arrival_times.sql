-- Arrival times survive aggregation: parts() reports when each part arrived,
-- before and after aggregate() (pending parts, merged parts, a late part),
-- and a row whose part_arrivals does not fit falls back to aggregated_at.
select buildlog.write_parts('{8101}', '{0}', array[E'one\n'], '{f}');
select pg_sleep(0.02);
select buildlog.write_parts('{8101}', '{2}', array[E'three\n'], '{f}');
select pg_sleep(0.02);
select buildlog.write_parts('{8101}', '{1}', array[E'two\n'], '{t}');
create temp table arrived as select number, created_at from buildlog.parts(8101);
select count(distinct created_at) as distinct_arrivals from arrived;
select buildlog.aggregate(8101);
-- after the merge: the same times, not the aggregation's
select p.number, p.created_at = a.created_at as arrival_kept
  from buildlog.parts(8101) p join arrived a using (number) order by 1;
select cardinality(part_arrivals) from buildlog.logs where job_id = 8101;
-- a late part, merged in place: the others keep theirs, it gets its own
select pg_sleep(0.02);
select buildlog.write_parts('{8101}', '{3}', array[E'four\n'], '{f}');
insert into arrived select number, created_at from buildlog.parts(8101) where number = 3;
select buildlog.aggregate(8101);
select p.number, p.created_at = a.created_at as arrival_kept
  from buildlog.parts(8101) p join arrived a using (number) order by 1;
-- a part_arrivals that does not fit (hand-edited): aggregated_at stands in, no error
update buildlog.logs set part_arrivals = '{2020-01-01}' where job_id = 8101;
select bool_and(p.created_at = l.aggregated_at) as aggregated_at_stands_in
  from buildlog.parts(8101) p, buildlog.logs l where l.job_id = 8101;
select buildlog.log(8101) = E'one\ntwo\nthree\nfour\n' as log_unchanged;
-- set_content clears them with the part numbers
select buildlog.set_content(8101, E'replaced\n');
select part_numbers, part_arrivals from buildlog.logs where job_id = 8101;
