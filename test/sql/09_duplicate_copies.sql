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
delete from buildlog.logs where job_id = 81;
