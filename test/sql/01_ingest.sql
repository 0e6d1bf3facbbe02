-- write_parts: the batch ingest path
select * from buildlog.write_parts('{11,11,12}', '{0,1,0}', '{"a","b","c"}', '{f,f,f}');
select job_id, number, content, final, late from buildlog.log_parts order by job_id, number;
select job_id, content, aggregated_at is null as not_aggregated from buildlog.logs order by job_id;
-- an empty batch writes nothing
select * from buildlog.write_parts('{}', '{}', '{}', '{}');

-- bad input: every case names the offending element
select expect_error($$select buildlog.write_parts('{11,11}', '{2}', '{"x","y"}', '{f,f}')$$);
select expect_error($$select buildlog.write_parts('{11,null}', '{2,3}', '{"x","y"}', '{f,f}')$$);
select expect_error($$select buildlog.write_parts('{11,11}', '{2,null}', '{"x","y"}', '{f,f}')$$);
select expect_error($$select buildlog.write_parts('{11,11}', '{2,3}', array['x', null], '{f,f}')$$);
select expect_error($$select buildlog.write_parts('{11,11}', '{2,3}', '{"x","y"}', '{f,null}')$$);
select expect_error($$select buildlog.write_parts(null, '{2,3}', '{"x","y"}', '{f,f}')$$);
select expect_error($$select buildlog.write_parts('{11,0}', '{2,3}', '{"x","y"}', '{f,f}')$$);
select expect_error($$select buildlog.write_parts('{11,-7}', '{2,3}', '{"x","y"}', '{f,f}')$$);
select expect_error($$select buildlog.write_parts('{11,11}', '{2,-1}', '{"x","y"}', '{f,f}')$$);
select expect_error($$select buildlog.write_parts('{{11},{11}}', '{{2},{3}}', '{{"x"},{"y"}}', '{{f},{f}}')$$);
-- nothing of a rejected batch was written
select count(*) from buildlog.log_parts where job_id = 11 and number > 1;

-- a 10 MB part: over buildlog.max_part_bytes (1MB) by default ...
select expect_error($$select buildlog.write_parts('{13}', '{0}', array[repeat('x', 10 * 1024 * 1024)], '{f}')$$);
-- ... accepted byte for byte once the limit is raised
set buildlog.max_part_bytes = '16MB';
select * from buildlog.write_parts('{13}', '{0}', array[repeat('0123456789', 1024 * 1024)], '{f}');
reset buildlog.max_part_bytes;
select length(buildlog.log(13)), md5(buildlog.log(13)) = md5(repeat('0123456789', 1024 * 1024)) as same;

-- the UTF-8 cleaning: valid text passes byte for byte ...
select replaced, convert_to(content, 'UTF8') = raw as unchanged
  from (values (convert_to(E'$ make\r\n\x1b[32mOK\x1b[0m 100%\r 50%\r\n', 'UTF8')),
               (convert_to(E'\u00e9\u4e2d\u6587 \U0001F600 \u0627\u0644 \u2028', 'UTF8')),
               ('\x'::bytea)) v(raw),
       buildlog.clean_utf8(raw);
-- ... and each invalid class becomes U+FFFD, counted (maximal subparts)
select label, encode(raw, 'hex') as raw, replaced,
       encode(convert_to(content, 'UTF8'), 'hex') as cleaned
  from (values
    ('truncated 2-byte at end',   '\x41c3'::bytea),
    ('truncated 3-byte then A',   '\xe28241'),
    ('truncated 4-byte then A',   '\xf09f9841'),
    ('overlong 2-byte /',         '\xc0af'),
    ('overlong 3-byte /',         '\xe080af'),
    ('overlong 4-byte',           '\xf08282ac'),
    ('surrogate U+D800',          '\xeda080'),
    ('surrogate pair',            '\xeda0bdedb880'),
    ('above U+10FFFF',            '\xf4908080'),
    ('lone continuation',         '\x80'),
    ('two continuations',         '\x41bfbf42'),
    ('0xFE',                      '\xfe'),
    ('0xFF',                      '\xff'),
    ('NUL',                       '\x610062'),
    ('C1 lead',                   '\xc1bf'),
    ('F5 lead',                   '\xf5808080'),
    ('valid between invalid',     '\xffe282acff')
  ) v(label, raw), buildlog.clean_utf8(raw);

-- write_raw_parts cleans raw bytes through the same routine and counts
select * from buildlog.write_raw_parts('{14,14}', '{0,1}',
  array['\x68656c6c6f00'::bytea, '\xe282ff0a'::bytea], '{f,f}');
select encode(convert_to(buildlog.log(14), 'UTF8'), 'hex');
select expect_error($$select * from buildlog.write_raw_parts('{14}', '{2}', array[null::bytea], '{f}')$$);
