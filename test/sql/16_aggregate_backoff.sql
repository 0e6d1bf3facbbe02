-- Per-job back-off: a failing job is retried later and later, healthy due
-- jobs come first and failing ones are skipped while they back off
set buildlog.aggregate_delay = 0;
select * from buildlog.write_parts('{68,69,70}', '{0,0,0}', '{a,b,c}', '{t,t,t}');
with r as (select buildlog.aggregate_failed(68, 'simulated') - now() as backoff)
select backoff between interval '0.9 s' and interval '1.1 s' as first_backoff_1s from r;
select job_id from buildlog.aggregatable(10) where job_id in (68, 69, 70) order by 1;
update buildlog.logs set aggregate_retry_at = now() - interval '1 s' where job_id = 68;
select job_id from buildlog.aggregatable(10) where job_id in (68, 69, 70);
with r as (select buildlog.aggregate_failed(68, 'again') - now() as backoff)
select backoff between interval '1.9 s' and interval '2.1 s' as second_backoff_2s from r;
update buildlog.logs set aggregate_failures = 40 where job_id = 68;
with r as (select buildlog.aggregate_failed(68, 'capped') - now() as backoff)
select backoff between interval '59 min' and interval '61 min' as capped_at_1h from r;
select aggregate_failures, aggregate_error from buildlog.logs where job_id = 68;
-- a successful aggregation (here a manual one) clears the back-off
select buildlog.aggregate(68);
select aggregate_failures, aggregate_error, aggregate_retry_at from buildlog.logs where job_id = 68;
reset buildlog.aggregate_delay;
