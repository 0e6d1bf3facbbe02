-- drain workers, those connected to RabbitMQ, archive workers, scheduler workers
select count(*), count(*) filter (where connected),
       (select count(*) from buildlog.archive_stats), (select count(*) from buildlog.scheduler_stats)
  from buildlog.drain_stats;
