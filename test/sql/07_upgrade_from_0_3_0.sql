-- 0.3.0 -> 0.3.1 and back: a database filled under 0.3.0 (aggregated,
-- pending and late parts, a log set whole, a rejected delivery) is updated
-- with ALTER EXTENSION buildlog UPDATE TO '0.3.1', keeps every log and part,
-- gains token revocation and minting by scope, and goes back to 0.3.0
-- (the sqitch revert) with its data, a WARNING for the revocations it drops,
-- and exactly the catalog of a fresh 0.3.0 install.
\set ECHO none
\i test/sql/include/describe_buildlog.sql
\set ECHO all
drop extension buildlog;
create extension buildlog version '0.3.0';
create table public.fresh_0_3_0 as select * from public.describe_buildlog();

-- filled under 0.3.0
select * from buildlog.write_parts('{7301,7301,7302}', '{0,1,0}',
                                   array[E'one\n', E'two\n', E'pending\n'], '{f,t,f}');
select buildlog.aggregate(7301);
select * from buildlog.write_parts('{7301}', '{2}', array[E'late\n'], '{f}');
select buildlog.set_content(7303, E'set whole\n');
insert into buildlog.rejected_parts (reason, body) values ('kept across 0.3.1', '\x7b');
create temp table before as
  select l.job_id, buildlog.log(l.job_id) as log,
         (select array_agg(row(p.number, p.content, p.final, p.created_at)::text order by p.number)
            from buildlog.parts(l.job_id) p) as parts
    from buildlog.logs l;
create temp table parts_before as select * from buildlog.log_parts;
-- (what parts() reads: the log set whole as its head, part -1, final alone)
select l.job_id, array_agg(p.number || case when p.final then ' final' else '' end order by p.number) as parts
  from buildlog.logs l, buildlog.parts(l.job_id) p group by 1 order by 1;

-- up: nothing lost
alter extension buildlog update to '0.3.1';
select extversion from pg_extension where extname = 'buildlog';
select b.job_id, buildlog.log(b.job_id) = b.log as same_log,
       (select array_agg(row(p.number, p.content, p.final, p.created_at)::text order by p.number)
          from buildlog.parts(b.job_id) p) = b.parts as same_parts
  from before b order by 1;
select (select count(*) from parts_before) as parts_before,
       (select count(*) from buildlog.log_parts p join parts_before o
           on (o.job_id, o.number, o.content, o.final, o.late, o.created_at)
            = (p.job_id, p.number, p.content, p.final, p.late, p.created_at)) as parts_kept;
select reason from buildlog.rejected_parts;
-- the new surface: revocations (empty, dumped), the functions, closed to PUBLIC
select count(*) as revocations from buildlog.token_revocations;
select 'buildlog.token_revocations'::regclass = any (extconfig) as dumped
  from pg_extension where extname = 'buildlog';
select p.oid::regprocedure as new_function, has_function_privilege('public', p.oid, 'execute') as public_may_call
  from pg_proc p
 where p.pronamespace = 'buildlog'::regnamespace
   and p.proname in ('issue_read_token', 'issue_write_token', 'revoke_tokens', 'token_revocations_changed')
 order by p.oid::regprocedure::text;
select obj_description('buildlog.parts(bigint, int)'::regprocedure, 'pg_proc') like '%part -1, its head%' as parts_comment_tells_the_head;
select buildlog.revoke_tokens(7301) is not null as revoked;
-- the new surface works on the old data
select buildlog.aggregate(7301), buildlog.log(7301);

-- back to 0.3.0: the revocation dropped with a WARNING, nothing else lost
alter extension buildlog update to '0.3.0';
select extversion from pg_extension where extname = 'buildlog';
select to_regclass('buildlog.token_revocations') as revocations_table,
       to_regprocedure('buildlog.revoke_tokens(bigint)') as revoke_tokens,
       to_regprocedure('buildlog.issue_write_token(bigint, interval)') as issue_write_token;
select b.job_id, buildlog.log(b.job_id) = b.log as same_log
  from before b order by 1;
select reason from buildlog.rejected_parts;
-- exactly what a fresh 0.3.0 install has
(select 'only in the fresh 0.3.0' as side, * from public.fresh_0_3_0
 except select 'only in the fresh 0.3.0', * from public.describe_buildlog())
union all
(select 'only after the round trip', * from public.describe_buildlog()
 except select 'only after the round trip', * from public.fresh_0_3_0)
order by 2, 1;

-- and up again: the revocations table starts empty
alter extension buildlog update;
select extversion from pg_extension where extname = 'buildlog';
select count(*) as revocations from buildlog.token_revocations;

delete from buildlog.log_parts where job_id between 7301 and 7303;
delete from buildlog.logs where job_id between 7301 and 7303;
delete from buildlog.rejected_parts;
drop table public.fresh_0_3_0;
drop function public.describe_buildlog();
