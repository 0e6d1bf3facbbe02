-- Hardening (issue 8): hand-edited rows, redaction, removed logs, hostile
-- search_path, per-job back-off of failing aggregations.

-- 1. A hand-edited row: every reader and aggregate() raise XX001 naming the
-- job, with a repair hint; nothing reads out of bounds (this crashed before).
select * from buildlog.write_parts('{61,61,61}', '{0,1,2}', array[E'one\n', E'two\n', E'three\n'], '{f,f,t}');
select buildlog.aggregate(61);
update buildlog.logs set content = replace(content, 'three', '3') where job_id = 61;
update buildlog.logs set content = 'x' where job_id = 61;
select expect_error('select buildlog.log(61)');
select expect_error('select buildlog.fetch(61)');
select expect_error('select count(*) from buildlog.parts(61)');
select expect_error('select count(*) from buildlog.parts(61, 1)');
select * from buildlog.write_parts('{61}', '{3}', '{"late"}', '{f}');
select expect_error('select buildlog.aggregate(61)');
select expect_error($$select buildlog.redact(61, 'x', 'y')$$);
-- every other kind of inconsistent bookkeeping
update buildlog.logs set content = E'one\ntwo\nthree\n', part_starts = '{0,8,4}' where job_id = 61;
select expect_error('select buildlog.log(61)');
update buildlog.logs set part_starts = '{0,4,8}', part_numbers = '{0,2,1}' where job_id = 61;
select expect_error('select buildlog.log(61)');
update buildlog.logs set part_numbers = '{0,0,1}' where job_id = 61;
select expect_error('select buildlog.log(61)');
update buildlog.logs set part_numbers = '{-3,1,2}' where job_id = 61;
select expect_error('select buildlog.log(61)');
update buildlog.logs set part_numbers = '{0,1}' where job_id = 61;
select expect_error('select buildlog.log(61)');
update buildlog.logs set part_numbers = '{0,1,2}', part_starts = '{-1,4,8}' where job_id = 61;
select expect_error('select buildlog.log(61)');
update buildlog.logs set part_starts = '{0,4,2000000000}' where job_id = 61;
select expect_error('select buildlog.log(61)');
update buildlog.logs set part_starts = '{{0,4},{8,9}}' where job_id = 61;
select expect_error('select buildlog.log(61)');
update buildlog.logs set part_starts = '{0,null,8}' where job_id = 61;
select expect_error('select buildlog.log(61)');
update buildlog.logs set part_starts = '{0,4,8}', content = null where job_id = 61;
select expect_error('select buildlog.log(61)');
-- the hint's repair: the text is kept as the head, later parts follow it
update buildlog.logs set content = E'one\ntwo\n3\n' where job_id = 61;
select buildlog.set_content(61, content) from buildlog.logs where job_id = 61;
select * from buildlog.write_parts('{61}', '{7}', array[E'seven\n'], '{f}');
select buildlog.log(61);
select buildlog.aggregate(61);
select content, part_numbers, part_starts from buildlog.logs where job_id = 61;

-- buildlog.redact(): the supported edit; offsets follow the new lengths
select * from buildlog.write_parts('{62,62,62,62}', '{0,1,2,3}',
  array[E'$ export TOKEN=s3cr3t\n', E'ok\n', E'curl -H "Authorization: s3cr3t" x\n', E'done\n'], '{f,f,f,t}');
select buildlog.aggregate(62);
-- a pending part (not aggregated yet) is redacted too
select * from buildlog.write_parts('{62}', '{4}', array[E'late s3cr3t\n'], '{f}');
update buildlog.logs set archived_at = now(), archive_size = 1, archive_sha256 = 'x', archive_etag = 'y'
 where job_id = 62;
select buildlog.redact(62, 's3cr3t', '[REDACTED]');
select buildlog.log(62);
select number, content from buildlog.parts(62);
select part_numbers, part_starts, archived_at is null as archive_reset, archive_sha256 is null as facts_reset
  from buildlog.logs where job_id = 62;
select count(*) as pending from buildlog.log_parts where job_id = 62;
-- nothing left to redact: 0, nothing changes
select buildlog.redact(62, 's3cr3t');
-- case-insensitive flags, default replacement
select buildlog.redact(62, 'CURL', '[REDACTED]', 'gi');
select number, content from buildlog.parts(62, 1);
-- a match across two parts is refused, nothing changes
select expect_error($$select buildlog.redact(62, E'ok\n\\[RED', 'x')$$);
select expect_error($$select buildlog.redact(62, 'done', 'done')$$);
select expect_error($$select buildlog.redact(62, '', 'x')$$);
select expect_error($$select buildlog.redact(62, null, 'x')$$);
select expect_error($$select buildlog.redact(62, '(', 'x')$$);
select buildlog.redact(999062, 'x') is null as unknown_job;
select buildlog.log(62);
-- the head set by set_content is redacted too
select buildlog.set_content(63, E'head s3cr3t\n');
select * from buildlog.write_parts('{63}', '{0}', array[E'part s3cr3t\n'], '{f}');
select buildlog.redact(63, 's3cr3t', '***');
select content, part_numbers, part_starts from buildlog.logs where job_id = 63;

-- 12 (ingest side). A removed log stays removed: parts arriving after the
-- removal (redeliveries, a late runner) are not stored and never bring text back
select * from buildlog.write_parts('{64,64}', '{0,1}', array[E'leaked\n', E'more\n'], '{f,t}');
select buildlog.aggregate(64);
select buildlog.set_content(64, null, 4242);
select * from buildlog.write_parts('{64,64,65}', '{0,2,0}', array[E'leaked\n', E'late\n', E'other job\n'], '{f,f,f}');
select count(*) as stored_for_removed from buildlog.log_parts where job_id = 64;
select buildlog.log(64) is null as still_removed, buildlog.log(65);
select buildlog.aggregate(64);
select content is null as content_null, removed_by from buildlog.logs where job_id = 64;
-- a restart (set_content without removed_by) lets parts flow again
select buildlog.set_content(64, null);
select * from buildlog.write_parts('{64}', '{0}', array[E'rerun\n'], '{f}');
select buildlog.log(64);

-- 11. A hostile search_path: nothing planted in an earlier schema runs
-- inside buildlog's functions (they pin search_path = pg_catalog, pg_temp)
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

-- 5. Per-job back-off: a failing job is retried later and later, healthy
-- due jobs come first and failing ones are skipped while they back off
set buildlog.aggregate_delay = 0;
select * from buildlog.write_parts('{68,69,70}', '{0,0,0}', '{a,b,c}', '{t,t,t}');
with r as (select buildlog.aggregate_failed(68, 'simulated') - now() as backoff)
select backoff between interval '0.9 s' and interval '1.1 s' as first_backoff_1s from r;
select job_id from buildlog.aggregatable(10) where job_id in (68, 69, 70) order by 1;
update buildlog.logs set aggregate_retry_at = now() - interval '1 s' where job_id = 68;
select job_id from buildlog.aggregatable(10) where job_id in (68, 69, 70);
with r as (select buildlog.aggregate_failed(68, 'again') - now() as backoff)
select backoff between interval '1.9 s' and interval '2.1 s' as second_backoff_2s from r;
update buildlog.logs set aggregate_failures = 40 where job_id = 68;
with r as (select buildlog.aggregate_failed(68, 'capped') - now() as backoff)
select backoff between interval '59 min' and interval '61 min' as capped_at_1h from r;
select aggregate_failures, aggregate_error from buildlog.logs where job_id = 68;
-- a successful aggregation (here a manual one) clears the back-off
select buildlog.aggregate(68);
select aggregate_failures, aggregate_error, aggregate_retry_at from buildlog.logs where job_id = 68;
reset buildlog.aggregate_delay;
