-- Secrets masked at the server: add_secrets() and "::add-mask::" register a
-- job's secrets (sealed, never readable back), and every occurrence, with its
-- base64 (three alignments) and URL encodings, is stored as *** by the ingest
-- path, set_content() and aggregation (a secret cut across two parts).
-- Secrets registered after their text was stored mask it at registration.

-- no key yet: registration refuses, nothing is stored
select expect_error($$select buildlog.add_secrets(2101, array['hunter2-s3cret'])$$);
\i test/sql/include/token_key.sql

-- registration: new values counted, duplicates not; the table holds no plain value
select buildlog.add_secrets(2101, array['hunter2-s3cret', 'tok_ABCDEFGH', 'hunter2-s3cret']);
select buildlog.add_secrets(2101, array['tok_ABCDEFGH']) as again;
select count(*) as rows,
       count(*) filter (where position(convert_to('hunter2-s3cret', 'UTF8') in sealed) > 0
                           or position(convert_to('tok_ABCDEFGH', 'UTF8') in sealed) > 0) as plain_values
  from buildlog.job_secrets where job_id = 2101;
-- bad input: a clear error that never shows the value
select expect_error($$select buildlog.add_secrets(2101, array['abc'])$$);
select expect_error($$select buildlog.add_secrets(2101, array['good-secret', null])$$);
select expect_error($$select buildlog.add_secrets(0, array['good-secret'])$$);
select expect_error($$select buildlog.add_secrets(null, array['good-secret'])$$);
select expect_error($$select buildlog.add_secrets(2101, array[repeat('x', 1025)])$$);
select expect_error($$select buildlog.add_secrets(2101, array[['good-secret1'], ['good-secret2']])$$);

-- mid-part, repeated, inside ANSI colour codes, at the part's edges
select * from buildlog.write_parts('{2101,2101,2101}', '{0,1,2}',
  array[E'$ echo hunter2-s3cret\nhunter2-s3cret hunter2-s3crethunter2-s3cret\n',
        E'\x1b[31;1mtoken=tok_ABCDEFGH\x1b[0m\n',
        'hunter2-s3cret'], '{f,f,f}');
select number, content from buildlog.parts(2101);

-- base64 at the three alignments (the secret after 0, 1 and 2 bytes), URL-encoded
select buildlog.add_secrets(2101, array['p@ss w/rd!']);
select * from buildlog.write_parts('{2101,2101,2101,2101}', '{3,4,5,6}',
  array[encode(convert_to('hunter2-s3cret', 'UTF8'), 'base64') || E'\n',
        encode(convert_to('a:hunter2-s3cret', 'UTF8'), 'base64') || E'\n',
        encode(convert_to('ab:hunter2-s3cret', 'UTF8'), 'base64') || E'\n',
        E'curl https://x/?pw=p%40ss%20w%2Frd%21 -u p@ss w/rd!\n'], '{f,f,f,f}');
select number, content from buildlog.parts(2101, 2);
-- no base64 form of the secret is left whole
select count(*) filter (where strpos(content, encode(convert_to('hunter2-s3cret', 'UTF8'), 'base64')) > 0) as whole_base64
  from buildlog.parts(2101, 2);
-- overlapping secrets: one span, one ***
select buildlog.add_secrets(2101, array['abcdef12', 'ef12ghij']);
select * from buildlog.write_parts('{2101}', '{7}', array[E'xxabcdef12ghijyy\n'], '{f}');
select content from buildlog.parts(2101, 6);

-- cut across two parts, sent in order (8, 9) and out of order (11 before 10):
-- each part alone shows a piece; the aggregated log shows ***
select * from buildlog.write_parts('{2101,2101}', '{8,9}',
  array['export PASS=hunter2-', E's3cret\n'], '{f,f}');
select * from buildlog.write_parts('{2101}', '{11}', array[E'H done\n'], '{t}');
select * from buildlog.write_parts('{2101}', '{10}', array['tok_ABCDEFGH tok_ABCDEFGH-no tok_ABCDEFG'], '{f}');
select number, content from buildlog.parts(2101, 7);
select buildlog.aggregate(2101);
select buildlog.log(2101);
-- the aggregated parts' offsets follow the masked text
select number, content from buildlog.parts(2101, 7);
select position('hunter2' in content) as hunter2, position('s3cret' in content) as s3cret
  from buildlog.logs where job_id = 2101;

-- "::add-mask::VALUE" in the log: the command line is shown masked, the value
-- is remembered (sealed) for the job's later parts and its aggregation
select * from buildlog.write_parts('{2102,2102}', '{0,1}',
  array[E'::add-mask::run-Value-42\n  ::add-mask::ab\nrun-Value-42 in the same batch\n',
        E'not a command: x::add-mask::zzzzzz\n'], '{f,f}');
select * from buildlog.write_parts('{2102}', '{2}', array[E'later: run-Value-42\n'], '{t}');
select number, content from buildlog.parts(2102);
select count(*) as remembered from buildlog.job_secrets where job_id = 2102;

-- registered after the text was stored: pending parts and the aggregated log
-- (with its part offsets) are masked at registration, the archive reset
select * from buildlog.write_parts('{2103,2103}', '{0,1}',
  array[E'head AKIAOLDSECRET1\n', E'part1 AKIAOLDSECRET1 end\n'], '{f,f}');
select buildlog.aggregate(2103);
select * from buildlog.write_parts('{2103}', '{2}', array[E'pending AKIAOLDSECRET1\n'], '{t}');
update buildlog.logs set archived_at = now(), archive_size = 1, archive_sha256 = 'x', archive_etag = 'y'
 where job_id = 2103;
select buildlog.add_secrets(2103, array['AKIAOLDSECRET1']);
select number, content from buildlog.parts(2103);
select content, part_starts, archived_at is null as archive_reset from buildlog.logs where job_id = 2103;
select content from buildlog.log_parts where job_id = 2103;

-- set_content() masks the text it stores; a removal drops the job's secrets
select buildlog.set_content(2103, E'restarted AKIAOLDSECRET1\n', null);
select content from buildlog.logs where job_id = 2103;
select count(*) as kept_on_restart from buildlog.job_secrets where job_id = 2103;
select buildlog.set_content(2103, null, 1);
select count(*) as dropped_on_removal from buildlog.job_secrets where job_id = 2103;

-- privileges: not for PUBLIC; a writer masks through secrets it cannot read
create role buildlog_secrets_writer;
grant usage on schema buildlog to buildlog_secrets_writer;
grant select, insert on buildlog.logs, buildlog.log_parts to buildlog_secrets_writer;
grant execute on function buildlog.write_parts(bigint[], int[], text[], bool[]) to buildlog_secrets_writer;
set role buildlog_secrets_writer;
select expect_error($$select buildlog.add_secrets(2101, array['good-secret'])$$);
select expect_error($$select count(*) from buildlog.job_secrets$$);
select parts from buildlog.write_parts('{2104,2101}', '{0,12}',
  array[E'::add-mask::writer-added-1\nwriter-added-1\n', E'late hunter2-s3cret\n'], '{f,f}');
reset role;
select job_id, number, content from buildlog.log_parts where job_id in (2101, 2104) order by 1, 2;
drop owned by buildlog_secrets_writer;
drop role buildlog_secrets_writer;

-- a key that changed: the job's secrets no longer open, its parts are refused
-- (never stored unmasked), other jobs are not affected
do $$
begin
  execute pg_catalog.format('copy (select %L) to %L', 'another-key-0123456789abcdef0123456789abcd',
                            pg_catalog.current_setting('data_directory') || '/buildlog_regress_secrets.key');
end
$$;
select current_setting('data_directory') || '/buildlog_regress_secrets.key' as secrets_key_file \gset
alter system set buildlog.secrets_key_file = :'secrets_key_file';
select pg_reload_conf() as reloaded \gset
\set wait_name buildlog.secrets_key_file
\set wait_value :secrets_key_file
\set wait_tries 500
\set ECHO none
\i test/sql/include/wait_for_setting.sql
\set ECHO all
select expect_error($$select * from buildlog.write_parts('{2101}', '{13}', array['x'], '{f}')$$);
select parts from buildlog.write_parts('{2105}', '{0}', array['no secrets here'], '{f}');
alter system reset buildlog.secrets_key_file;
select pg_reload_conf() as reloaded \gset
\set wait_value ''
\set wait_tries 500
\set ECHO none
\i test/sql/include/wait_for_setting.sql
\set ECHO all
\i test/sql/include/token_key_reset.sql
