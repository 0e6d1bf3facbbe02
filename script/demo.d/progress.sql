-- One progress line of the jobs :first..:last: delivered and stored since the start
-- (:d0, :p0 = the drain_stats sums then), jobs seen, rejected messages (containing
-- :'mark'), distinct (job, number) pairs stored, then the columns of buildlog.lifecycle
-- for these jobs (streaming, due, aggregated, archived, purged) and the parts pending.
select coalesce(sum(deliveries), 0) - :d0, coalesce(sum(parts), 0) - :p0,
       (select count(*) from buildlog.logs where job_id between :first and :last),
       (select count(*) from buildlog.rejected_parts where position(:'mark'::bytea in body) > 0),
       (select count(*) from (select job_id, number from buildlog.log_parts where job_id between :first and :last
                              union select job_id, unnest(part_numbers) from buildlog.logs
                                     where job_id between :first and :last) d),
       -- buildlog.lifecycle, for the demo's jobs
       (select count(distinct p.job_id) from buildlog.log_parts p
         where p.job_id between :first and :last
           and not exists (select 1 from buildlog.logs l where l.job_id = p.job_id and l.aggregated_at is not null)),
       (select count(*) from buildlog.aggregatable(2147483647) where job_id between :first and :last),
       l.aggregated, l.archived, l.purged,
       (select count(*) from buildlog.log_parts where job_id between :first and :last)
  from buildlog.drain_stats,
       (select count(*) filter (where content is not null and archived_at is null) as aggregated,
               count(*) filter (where archived_at is not null and purged_at is null) as archived,
               count(*) filter (where purged_at is not null) as purged
          from buildlog.logs where job_id between :first and :last) l
 group by l.aggregated, l.archived, l.purged;
