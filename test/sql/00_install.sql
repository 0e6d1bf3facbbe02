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
-- (one transaction: the partitions created and the count below see one now())
begin;
create extension buildlog;

-- log_parts is registered with pg_partman as the design says
select parent_table, control, partition_type, partition_interval, premake,
       retention, retention_keep_table, infinite_time_partitions
  from partman.part_config where parent_table = 'buildlog.log_parts';
-- premade partitions: today and two days ahead
select count(*) as partitions_from_today
  from partman.show_partitions('buildlog.log_parts') s,
       partman.show_partition_info(s.partition_schemaname || '.' || s.partition_tablename,
                                   p_parent_table := 'buildlog.log_parts') i
 where i.child_start_time >= date_trunc('day', now());
commit;
-- every function of the schema has a comment
select p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' as undocumented
  from pg_proc p
 where p.pronamespace = 'buildlog'::regnamespace
   and obj_description(p.oid, 'pg_proc') is null;
-- the settings and their defaults (buildlog.amqp_url is not among them)
select name, boot_val as default_value, unit, context
  from pg_settings where name like 'buildlog.%' order by name;
-- The AMQP URL's password ("guest" in its built-in default and in the test
-- stack's URL) is on no path: not in pg_settings (any column of any row: the
-- URL's reset_val and boot_val would be raw), masked by SHOW and
-- current_setting(), for a superuser, for a member of pg_read_all_settings
-- and pg_monitor, and refused to any other role.
select count(*) as amqp_url_in_pg_settings
  from pg_settings where name = 'buildlog.amqp_url';
select pg_settings_get_flags('buildlog.amqp_url') as amqp_url_flags;
select count(*) as settings_rows_with_the_password
  from pg_settings s where s::text like '%:guest@%';
select current_setting('buildlog.amqp_url') ~ '^amqp://guest:\*\*\*@' as show_masks_it;
create role amqp_regress_monitor;
grant pg_read_all_settings, pg_monitor to amqp_regress_monitor;
create role amqp_regress_user;
set role amqp_regress_monitor;
select count(*) as settings_rows_with_the_password
  from pg_settings s where s::text like '%:guest@%';
select count(*) as amqp_url_in_pg_settings
  from pg_settings where name = 'buildlog.amqp_url';
select current_setting('buildlog.amqp_url') ~ '^amqp://guest:\*\*\*@' as show_masks_it;
select expect_error('select count(*) from pg_file_settings');    -- the raw configuration lines
reset role;
set role amqp_regress_user;
select expect_error('show buildlog.amqp_url');
select expect_error($$select current_setting('buildlog.amqp_url')$$);
reset role;
drop role amqp_regress_monitor, amqp_regress_user;
-- writing functions are not open to PUBLIC
select p.oid::regprocedure as not_public
  from pg_proc p
 where p.pronamespace = 'buildlog'::regnamespace
   and not has_function_privilege('public', p.oid, 'execute')
 order by p.oid::regprocedure::text;
