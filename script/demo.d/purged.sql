-- Of the jobs :first..:last: logs purged (content NULL, verified and purged), parts
-- pending, and the bytes of their objects
select count(*) filter (where content is null and purged_at is not null and verified_at is not null),
       (select count(*) from buildlog.log_parts where job_id between :first and :last),
       coalesce(sum(archive_size), 0)
  from buildlog.logs where job_id between :first and :last;
