-- A hostile search_path: nothing planted in an earlier schema runs inside
-- buildlog's functions (they pin search_path = pg_catalog, pg_temp)
create schema evil;
create table evil.calls (what text);
create function evil.now() returns timestamptz language sql volatile
  as $$ insert into evil.calls values ('now') returning pg_catalog.now() $$;
create function evil.int8eq(bigint, bigint) returns boolean language plpgsql volatile
  as $$ begin insert into evil.calls values ('='); return $1 operator(pg_catalog.=) $2; end $$;
create operator evil.= (leftarg = bigint, rightarg = bigint, function = evil.int8eq);
create function evil.unnest(anyarray) returns setof anyelement language plpgsql volatile
  as $$ begin insert into evil.calls values ('unnest'); return query select pg_catalog.unnest($1); end $$;
set search_path = evil, pg_catalog, public;
select 1::bigint = 1::bigint as planted_operator_works, now() is not null as planted_now_works;
select what as planted_objects_are_reachable, count(*) from evil.calls group by what order by what;
delete from evil.calls;
select (buildlog.write_parts('{66,66}', '{0,1}', '{a,b}', '{f,t}')).parts;
select (buildlog.write_raw_parts('{66}', '{2}', array['\x63'::bytea], '{f}')).parts;
select buildlog.log(66), buildlog.fetch(66);
select count(*) from buildlog.parts(66);
select count(*) from buildlog.aggregatable(10);
select buildlog.aggregate(66);
select buildlog.redact(66, 'a', 'A');
select buildlog.set_content(67, 'x');
select tries from buildlog.run_maintenance();
select pg_catalog.count(*) as planted_calls from evil.calls;
reset search_path;
drop schema evil cascade;
