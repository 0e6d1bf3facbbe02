-- A fresh CREATE EXTENSION (the complete install script of the default
-- version) gives exactly the catalog that installing 0.1.0 and running every
-- update script gives: functions (definition, labels, settings, privileges,
-- comments), tables (columns in order, types, defaults, storage, constraints,
-- triggers, indexes, comments), views, types, sequences, the dump
-- configuration and pg_partman's registration.  Any difference is listed.

\set ECHO none
\i test/sql/include/describe_buildlog.sql
\set ECHO all

drop extension buildlog;
create extension buildlog;
select extversion from pg_extension where extname = 'buildlog';
create table public.fresh as select * from public.describe_buildlog();
select count(*) as objects_described from public.fresh;

drop extension buildlog;
create extension buildlog version '0.1.0';
alter extension buildlog update;
select extversion from pg_extension where extname = 'buildlog';
create table public.updated as select * from public.describe_buildlog();

-- no difference either way (a difference shows the object and its facts)
(select 'only in the fresh install' as side, * from public.fresh
 except select 'only in the fresh install', * from public.updated)
union all
(select 'only after the update', * from public.updated
 except select 'only after the update', * from public.fresh)
order by 2, 1;

drop table public.fresh, public.updated;
drop function public.describe_buildlog();
