-- The S3 client (extension/s3client.c) against the stack's s3rver.  Needs
-- BUILDLOG_S3_ENDPOINT, _BUCKET and _ACCESS_KEY from `script/stack env`.
-- s3rver checks no signatures: signing is proven by the known-answer test.
\getenv s3_endpoint BUILDLOG_S3_ENDPOINT
\getenv s3_bucket BUILDLOG_S3_BUCKET
\getenv s3_access_key BUILDLOG_S3_ACCESS_KEY
\set s3_secret 'regress-S3-secret-7f3a'

-- signing: AWS's published Signature V4 examples, sent through the request
-- path to a listener on 127.0.0.1 (GET Object with Range, PUT Object)
select example, signature,
       signature = case example
         when 'GET Object' then 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41'
         when 'PUT Object' then '98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd'
       end as matches_aws,
       authorization_header
  from buildlog.s3_signature_selftest();

-- settings: checked when set
select expect_error($$set buildlog.s3_endpoint = 'ftp://127.0.0.1:1'$$);
select expect_error($$set buildlog.s3_endpoint = 'http://user:pw@127.0.0.1:1'$$);
select expect_error($$set buildlog.s3_prefix = '/absolute/'$$);
select expect_error($$set buildlog.s3_region = 'us:east'$$);
-- the keys are set in postgresql.conf only, never displayed, not in pg_settings
select expect_error($$set buildlog.s3_secret_key = 'x'$$);
-- (ALTER SYSTEM cannot run inside a function, so not through expect_error:
-- psql's LAST_ERROR_SQLSTATE shows its SQLSTATE)
alter system set buildlog.archive_compression = 'zstd';
\echo :LAST_ERROR_SQLSTATE
alter system set buildlog.s3_endpoint = :'s3_endpoint';
alter system set buildlog.s3_bucket = :'s3_bucket';
alter system set buildlog.s3_access_key = :'s3_access_key';
alter system set buildlog.s3_secret_key = :'s3_secret';
select pg_reload_conf();
\set wait_name buildlog.s3_endpoint
\set wait_value :s3_endpoint
\set wait_tries 500
\set ECHO none
\i test/sql/include/wait_for_setting.sql
\set ECHO all
select current_setting('buildlog.s3_endpoint') = :'s3_endpoint' as configured;
select current_setting('buildlog.s3_secret_key') as secret_shown,
       current_setting('buildlog.s3_access_key') = left(:'s3_access_key', 4) || '****' as access_key_masked;
select count(*) as keys_in_pg_settings
  from pg_settings where name in ('buildlog.s3_access_key', 'buildlog.s3_secret_key');
-- a role with usage on the schema: refused by the function's own privilege
create role s3_regress_user;
grant usage on schema buildlog to s3_regress_user;
set role s3_regress_user;
select expect_error($$show buildlog.s3_secret_key$$);
select expect_error($$select buildlog.s3_head('x')$$);
reset role;
revoke usage on schema buildlog from s3_regress_user;
drop role s3_regress_user;

-- object keys
select buildlog.s3_key(42);
set buildlog.s3_prefix = 'buildlog/';
select buildlog.s3_key(42);
reset buildlog.s3_prefix;

-- round trip of text: UTF-8, CRLF, tabs, control characters (no NUL)
create temp table s3_body (body text, bytes bytea);
insert into s3_body (body)
values (E'h\u00e9llo w\u00f6rld \u2713 \U0001F600\r\nline two\tcolumn\r\n\u0001\u001b[31mred\u001b[0m\r\n');
update s3_body set bytes = convert_to(body, 'UTF8');
select p.status, p.size = length(b.bytes) as size_ok,
       p.sha256 = encode(sha256(b.bytes), 'hex') as sha256_ok,
       p.md5 = encode(decode(md5(b.bytes), 'hex'), 'base64') as md5_ok,
       p.etag = md5(b.bytes) as etag_is_md5
  from s3_body b, buildlog.s3_put_text('regress/jobs/1/log.txt', b.body) p;
select h.status, h.outcome, h.size = length(b.bytes) as size_ok, h.content_type,
       h.content_encoding, h.sha256 = encode(sha256(b.bytes), 'hex') as recorded_sha256_ok,
       h.etag = md5(b.bytes) as etag_ok, h.error
  from s3_body b, buildlog.s3_head('regress/jobs/1/log.txt') h;
select buildlog.s3_get('regress/jobs/1/log.txt') = bytes as bytes_equal,
       convert_from(buildlog.s3_get('regress/jobs/1/log.txt'), 'UTF8') = body as text_equal
  from s3_body;
select v.outcome, v.size = length(b.bytes) as size_ok, v.sha256 = v.recorded_sha256 as verified,
       v.md5 = encode(decode(md5(b.bytes), 'hex'), 'base64') as md5_ok,
       v.content_size = v.size as not_compressed
  from s3_body b, buildlog.s3_verify('regress/jobs/1/log.txt') v;
-- an empty log
select status, size, sha256 from buildlog.s3_put_text('regress/empty.txt', '');
select status, outcome, size from buildlog.s3_head('regress/empty.txt');
select length(buildlog.s3_get('regress/empty.txt')) as empty;

-- gzip: the stored bytes are gzip, their SHA-256 is the one recorded, and
-- they decompress to the original
select status, size as gz_size, sha256 as gz_sha256, size < 2000 as compressed
  from buildlog.s3_put_text('regress/gz.txt', repeat(E'gzip me \u2713\r\n', 1000), true) \gset
select :status as status, :'compressed'::boolean as compressed;
select outcome, content_type, content_encoding, size = :gz_size as size_ok,
       sha256 = :'gz_sha256' as recorded_sha256_ok
  from buildlog.s3_head('regress/gz.txt');
select substr(stored, 1, 3) = '\x1f8b08'::bytea as gzip_magic,
       length(stored) = :gz_size as size_ok,
       encode(sha256(stored), 'hex') = :'gz_sha256' as sha256_is_of_stored_bytes
  from (select buildlog.s3_get('regress/gz.txt', false) as stored) s;
select convert_from(buildlog.s3_get('regress/gz.txt'), 'UTF8') = repeat(E'gzip me \u2713\r\n', 1000)
       as decompresses_to_original;
select outcome, size = :gz_size as size_ok, sha256 = recorded_sha256 as verified,
       content_size = octet_length(repeat(E'gzip me \u2713\r\n', 1000)) as content_size_ok
  from buildlog.s3_verify('regress/gz.txt');
-- deterministic: the same log compresses to the same object
select sha256 = :'gz_sha256' as same_bytes
  from buildlog.s3_put_text('regress/gz2.txt', repeat(E'gzip me \u2713\r\n', 1000), true);

-- 20 MB in 64 kB slices: the backend's peak memory grows by far less
\c
select substring(pg_read_file('/proc/self/status') from 'VmHWM:\s*(\d+) kB')::int as hwm_before \gset
select status, size, sha256 as big_sha256
  from buildlog.s3_put_text('regress/big.txt', repeat('0123456789abcdef0123456789abcde' || E'\n', 2048),
                            false, 320) \gset
select :status as status, :size as size;
select outcome, size, sha256 = :'big_sha256' as sha256_ok, sha256 = recorded_sha256 as verified
  from buildlog.s3_verify('regress/big.txt');
select substring(pg_read_file('/proc/self/status') from 'VmHWM:\s*(\d+) kB')::int - :hwm_before < 8 * 1024
       as peak_grew_less_than_8mb;

-- a missing object: not_found, from HEAD, GET and verify
select status, outcome, error from buildlog.s3_head('regress/missing.txt');
select status, outcome, error from buildlog.s3_verify('regress/missing.txt');
select expect_error($$select buildlog.s3_get('regress/missing.txt')$$);
-- a missing bucket: permanent (retrying will not help)
set buildlog.s3_bucket = 'no-such-bucket';
select status, outcome, error from buildlog.s3_verify('regress/jobs/1/log.txt');
select expect_error($$select buildlog.s3_put_text('regress/x.txt', 'x')$$);
reset buildlog.s3_bucket;
-- virtual-host addressing needs a host name, not 127.0.0.1
set buildlog.s3_endpoint = 'http://127.0.0.1:1';
set buildlog.s3_path_style = off;
select expect_error($$select buildlog.s3_head('regress/jobs/1/log.txt')$$);
reset buildlog.s3_path_style;
reset buildlog.s3_endpoint;
-- nothing listens on 127.0.0.1:1: retryable, with a clear error
set buildlog.s3_endpoint = 'http://127.0.0.1:1';
select status, outcome, regexp_replace(error, 'after \d+ ms', 'after N ms') as error
  from buildlog.s3_head('regress/jobs/1/log.txt');
select regexp_replace(expect_error($$select buildlog.s3_put_text('regress/x.txt', 'x')$$),
                      'after \d+ ms', 'after N ms');
reset buildlog.s3_endpoint;
-- no endpoint at all
set buildlog.s3_endpoint = '';
select expect_error($$select buildlog.s3_head('regress/jobs/1/log.txt')$$);
reset buildlog.s3_endpoint;

-- the secret appears in no error text, result or displayed setting
create temp table s3_texts (t text);
set buildlog.s3_endpoint = 'http://127.0.0.1:1';
insert into s3_texts select expect_error($$select buildlog.s3_get('regress/jobs/1/log.txt')$$);
insert into s3_texts select error from buildlog.s3_head('regress/jobs/1/log.txt');
reset buildlog.s3_endpoint;
set buildlog.s3_bucket = 'no-such-bucket';
insert into s3_texts select expect_error($$select buildlog.s3_get('regress/jobs/1/log.txt')$$);
insert into s3_texts select error from buildlog.s3_verify('regress/jobs/1/log.txt');
reset buildlog.s3_bucket;
insert into s3_texts select expect_error($$select buildlog.s3_get('regress/missing.txt')$$);
insert into s3_texts select current_setting('buildlog.s3_secret_key');
insert into s3_texts select setting || coalesce(reset_val, '') from pg_settings where name like 'buildlog.%';
insert into s3_texts select row(h.*)::text from buildlog.s3_head('regress/jobs/1/log.txt') h;
select count(*) - (select count(*) from pg_settings where name like 'buildlog.%') as texts_beside_settings,
       count(*) filter (where t like '%' || :'s3_secret' || '%') as with_secret
  from s3_texts;

-- key files and the request timeout: superuser-only settings; an unreadable
-- key file is named in the error (with the setting), its content never
select name, context, setting, unit from pg_settings
 where name in ('buildlog.s3_access_key_file', 'buildlog.s3_secret_key_file',
                'buildlog.s3_request_timeout')
 order by name;
alter system set buildlog.s3_secret_key_file = '/nonexistent/buildlog-regress-key';
select pg_reload_conf();
\set wait_name buildlog.s3_secret_key_file
\set wait_value /nonexistent/buildlog-regress-key
\set wait_tries 500
\set ECHO none
\i test/sql/include/wait_for_setting.sql
\set ECHO all
select current_setting('buildlog.s3_secret_key_file') as key_file;
select expect_error($$select buildlog.s3_head('regress/jobs/1/log.txt')$$);
alter system reset buildlog.s3_secret_key_file;
select pg_reload_conf();
\set wait_value ''
\set wait_tries 500
\set ECHO none
\i test/sql/include/wait_for_setting.sql
\set ECHO all
select current_setting('buildlog.s3_secret_key_file') as key_file;
create role s3_regress_user;
set role s3_regress_user;
select expect_error($$show buildlog.s3_secret_key_file$$);
select expect_error($$select * from buildlog.s3_client_stats()$$);
reset role;
drop role s3_regress_user;
-- every request this session sent since its reconnection (\c above) counted
select requests from buildlog.s3_client_stats();

-- back to the stack's configuration
alter system reset buildlog.s3_endpoint;
alter system reset buildlog.s3_bucket;
alter system reset buildlog.s3_access_key;
alter system reset buildlog.s3_secret_key;
select pg_reload_conf();
