-- expect_error(sql): the error a statement raises, as
-- "SQLSTATE: message | detail | hint" (the test suite's own helper)
create function public.expect_error(sql text) returns text
language plpgsql as $$
declare
  st text; msg text; det text; hnt text;
begin
  execute sql;
  return 'no error';
exception when others then
  get stacked diagnostics st = returned_sqlstate, msg = message_text,
                          det = pg_exception_detail, hnt = pg_exception_hint;
  return st || ': ' || msg || coalesce(' | ' || nullif(det, ''), '') || coalesce(' | hint: ' || nullif(hnt, ''), '');
end
$$;

-- CREATE EXTENSION needs pg_partman in schema partman, with a clear error
select expect_error('create extension buildlog');
create schema partman;
create extension pg_partman schema partman;
create extension buildlog;

-- log_parts is registered with pg_partman as the design says
select parent_table, control, partition_type, partition_interval, premake,
       retention, retention_keep_table, infinite_time_partitions
  from partman.part_config where parent_table = 'buildlog.log_parts';
-- premade partitions: at least two days ahead
select count(*) >= 3 as has_future_partitions
  from partman.show_partitions('buildlog.log_parts') s,
       partman.show_partition_info(s.partition_schemaname || '.' || s.partition_tablename,
                                   p_parent_table := 'buildlog.log_parts') i
 where i.child_start_time >= date_trunc('day', now());
-- every function of the schema has a comment
select p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' as undocumented
  from pg_proc p
 where p.pronamespace = 'buildlog'::regnamespace
   and obj_description(p.oid, 'pg_proc') is null;
-- the settings and their defaults
select name, case when name = 'buildlog.amqp_url' then '(secret)' else boot_val end as default_value,
       unit, context
  from pg_settings where name like 'buildlog.%' order by name;
-- the AMQP URL is not in pg_settings (its reset_val and boot_val would be
-- raw); SHOW and current_setting() show it without its password
select count(*) as amqp_url_in_pg_settings
  from pg_settings where name = 'buildlog.amqp_url';
select current_setting('buildlog.amqp_url') ~ '^amqp://guest:\*\*\*@' as show_masks_it;
-- writing functions are not open to PUBLIC
select p.oid::regprocedure as not_public
  from pg_proc p
 where p.pronamespace = 'buildlog'::regnamespace
   and not has_function_privilege('public', p.oid, 'execute')
 order by p.oid::regprocedure::text;
