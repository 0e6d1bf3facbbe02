-- Job :job after its part came again: the log read back has md5 :'md5', purged_at is
-- still :purged_before (epoch), content is NULL; and parts merged by the scheduler so far
select md5(buildlog.fetch(:job)) = :'md5', extract(epoch from purged_at) = :purged_before, content is null,
       (select coalesce(sum(parts_merged), 0) from buildlog.scheduler_stats)
  from buildlog.logs where job_id = :job;
