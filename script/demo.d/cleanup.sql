-- What an earlier run left: the rows of the demo's job ids :first..:owned and its
-- rejected messages (those containing :'mark'). The rows first (an upload in flight
-- holds its row: the delete waits for it). One line "removed PARTS LOGS REJECTED",
-- then "key S3KEY" for the objects to delete: of the removed logs and of this run's jobs.
with p as (delete from buildlog.log_parts where job_id between :first and :owned returning 1),
     l as (delete from buildlog.logs where job_id between :first and :owned returning job_id),
     r as (delete from buildlog.rejected_parts where position(:'mark'::bytea in body) > 0 returning 1)
select 'removed', (select count(*) from p)::text, (select count(*) from l)::text, (select count(*) from r)::text
union all
select 'key', buildlog.s3_key(job_id), null, null
  from (select job_id from l union select generate_series(:first::bigint, :last)) k;
