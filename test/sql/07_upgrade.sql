-- In-place upgrade: a database filled under 0.1.0 is updated with ALTER
-- EXTENSION buildlog UPDATE and keeps every log, part and rejected delivery.
drop extension buildlog;
create extension buildlog version '0.1.0';
select extversion from pg_extension where extname = 'buildlog';
-- (filled with what the new library can do on the old schema: ingestion
-- works during the upgrade window; aggregated and removed rows are written
-- as 0.1.0 wrote them)
select * from buildlog.write_parts('{72}', '{0}', array[E'pending\n'], '{f}');
insert into buildlog.logs (job_id, content, part_numbers, part_starts, final_number, aggregated_at)
values (71, E'one\ntwo\nthree\n', '{0,1,2}', '{0,4,8}', 2, now());
select * from buildlog.write_parts('{71}', '{3}', array[E'late\n'], '{f}');
insert into buildlog.logs (job_id, content, removed_at, removed_by) values (73, E'set by hand\n', now(), 5);
insert into buildlog.rejected_parts (reason, body) values ('kept across the upgrade', '\x7b');
create temp table before as
  select job_id, buildlog.log(job_id) as log, content, part_numbers, part_starts, removed_by
    from buildlog.logs;
create temp table parts_before as select * from buildlog.log_parts;

-- the new library with the old declarations: a clear error, never a crash
select expect_error('select count(*) from buildlog.drain_stats');
select count(*) >= 0 as scheduler_stats_works from buildlog.scheduler_stats;
alter extension buildlog update;
select count(*) >= 0 as drain_stats_works from buildlog.drain_stats;
select extversion from pg_extension where extname = 'buildlog';
-- nothing lost: every log reads the same, rows and pending parts unchanged
select b.job_id, buildlog.log(b.job_id) = b.log as same_log,
       l.content is not distinct from b.content as same_content,
       l.part_numbers = b.part_numbers and l.part_starts = b.part_starts as same_bookkeeping,
       l.removed_by is not distinct from b.removed_by as same_removal,
       l.aggregate_failures, l.aggregate_retry_at is null as not_backing_off
  from before b join buildlog.logs l using (job_id) order by 1;
select (select count(*) from parts_before) as parts_before,
       (select count(*) from buildlog.log_parts p join parts_before o
           on (o.job_id, o.number, o.content, o.final, o.late, o.created_at)
            = (p.job_id, p.number, p.content, p.final, p.late, p.created_at)) as parts_kept;
select reason from buildlog.rejected_parts;
-- the rejected_parts identity goes on counting after the old rows
insert into buildlog.rejected_parts (reason, body) values ('after the upgrade', '\x7d')
  returning id > (select min(id) from buildlog.rejected_parts) as numbered_after;
-- the new surface works on the old data
select buildlog.aggregate(71), buildlog.aggregate(72);
select buildlog.redact(71, 'two', '2');
select buildlog.log(71);
select dropped, kept, tries from buildlog.run_maintenance();
select automatic_maintenance from partman.part_config where parent_table = 'buildlog.log_parts';
select count(*) as pinned_functions from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname = 'buildlog' and 'search_path=pg_catalog, pg_temp' = any (p.proconfig);
-- every function of the upgraded extension has a comment
select count(*) filter (where d.description is null) as functions_without_comment
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
  left join pg_description d on d.objoid = p.oid and d.classoid = 'pg_proc'::regclass
 where n.nspname = 'buildlog';
delete from buildlog.rejected_parts;
