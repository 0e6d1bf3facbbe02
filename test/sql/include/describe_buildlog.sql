-- \i test/sql/include/describe_buildlog.sql: creates
-- public.describe_buildlog(), everything that describes the installed
-- extension as rows of (object, facts): every member function (definition,
-- labels, settings, privileges, comment), table, view and sequence (columns
-- in order, types, defaults, storage, constraints, triggers, indexes,
-- comments, privileges), type, the dump configuration and pg_partman's
-- registration.  Two installs are the same when their rows are.  Drop it
-- with: drop function public.describe_buildlog();

create function public.describe_buildlog() returns table (object text, facts text)
language sql as $$
  with members as (
    select d.classid, d.objid
      from pg_catalog.pg_depend d
     where d.refclassid = 'pg_catalog.pg_extension'::regclass and d.deptype = 'e'
       and d.refobjid = (select oid from pg_catalog.pg_extension where extname = 'buildlog')
  )
  select pg_catalog.pg_describe_object(m.classid, m.objid, 0),
         case m.classid
           when 'pg_catalog.pg_proc'::regclass then
             (select pg_catalog.pg_get_functiondef(p.oid) || ' acl=' || coalesce(p.proacl::text, '-')
                     || ' comment=' || coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), '-')
                from pg_catalog.pg_proc p where p.oid = m.objid)
           when 'pg_catalog.pg_class'::regclass then
             (select c.relkind::text || ' acl=' || coalesce(c.relacl::text, '-')
                     || ' options=' || coalesce(c.reloptions::text, '-')
                     || ' comment=' || coalesce(pg_catalog.obj_description(c.oid, 'pg_class'), '-')
                     || ' view=' || coalesce(pg_catalog.pg_get_viewdef(c.oid), '-')
                     || ' columns=' || coalesce((
                          select pg_catalog.string_agg(a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
                                   || case when a.attnotnull then ' not null' else '' end
                                   || coalesce(' default ' || pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), '')
                                   || ' storage ' || a.attstorage::text
                                   || coalesce(' identity ' || nullif(a.attidentity::text, ''), '')
                                   || coalesce(' comment ' || pg_catalog.col_description(c.oid, a.attnum), ''),
                                   ', ' order by a.attnum)
                            from pg_catalog.pg_attribute a
                            left join pg_catalog.pg_attrdef ad on ad.adrelid = a.attrelid and ad.adnum = a.attnum
                           where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '-')
                     || ' constraints=' || coalesce((
                          select pg_catalog.string_agg(co.conname || ' ' || pg_catalog.pg_get_constraintdef(co.oid), ', '
                                                       order by co.conname)
                            from pg_catalog.pg_constraint co where co.conrelid = c.oid), '-')
                     || ' triggers=' || coalesce((
                          select pg_catalog.string_agg(pg_catalog.pg_get_triggerdef(t.oid), ', '
                                                       order by t.tgname)
                            from pg_catalog.pg_trigger t where t.tgrelid = c.oid and not t.tgisinternal), '-')
                     || ' indexes=' || coalesce((
                          select pg_catalog.string_agg(pg_catalog.pg_get_indexdef(i.indexrelid), ', '
                                                       order by i.indexrelid::regclass::text)
                            from pg_catalog.pg_index i where i.indrelid = c.oid), '-')
                     || ' sequence=' || coalesce((
                          select pg_catalog.row_to_json(s)::text
                            from (select seqtypid::regtype, seqstart, seqincrement, seqmax, seqmin, seqcache, seqcycle
                                    from pg_catalog.pg_sequence where seqrelid = c.oid) s), '-')
                from pg_catalog.pg_class c where c.oid = m.objid)
           when 'pg_catalog.pg_type'::regclass then
             (select t.typtype::text || ' comment=' || coalesce(pg_catalog.obj_description(t.oid, 'pg_type'), '-')
                from pg_catalog.pg_type t where t.oid = m.objid)
           else '-'
         end
    from members m
  union all
  select 'extension configuration',
         (select pg_catalog.array_agg(c::regclass::text order by c::regclass::text)::text
                 || ' conditions=' || coalesce(e.extcondition::text, '-')
            from pg_catalog.unnest(e.extconfig) c)
    from pg_catalog.pg_extension e where e.extname = 'buildlog'
  union all
  select 'pg_partman registration',
         (select pg_catalog.row_to_json(r)::text
            from (select parent_table, control, partition_type, partition_interval, premake,
                         retention, retention_keep_table, retention_keep_index,
                         infinite_time_partitions, automatic_maintenance
                    from partman.part_config where parent_table = 'buildlog.log_parts') r)
  union all
  select 'partitions that are extension members',
         (select pg_catalog.count(*)::text
            from pg_catalog.pg_inherits i
            join pg_catalog.pg_depend d on d.classid = 'pg_catalog.pg_class'::regclass
                                       and d.objid = i.inhrelid and d.deptype = 'e'
           where i.inhparent = 'buildlog.log_parts'::regclass)
$$;
