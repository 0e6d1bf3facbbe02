-- parse_message: what the drain makes of a delivery body.  The fast scanner
-- reads the common shape; jansson (alone with reference => true) decides
-- the rest.  Both must agree on every body: pm() shows the drain's verdict
-- (ok, job_id, number, final, content, reason, replaced) and says DISAGREE,
-- with both verdicts, if jansson alone differs.
create function pmx(body bytea) returns text
language sql as $$
  select case when f is not distinct from r then f else 'DISAGREE: fast ' || f || ' reference ' || r end
    from (select buildlog.parse_message(body)::text as f,
                 buildlog.parse_message(body, true)::text as r) s $$;
create function pm(body text) returns text
language sql as $$ select pmx(convert_to(body, 'UTF8')) $$;

-- the usual shapes
select pm('{"id":1,"number":0,"log":"hello\r\n","final":false,"uuid":"u","meta":{"queued_at":"2026-11-23T00:00:00Z"}}');
select pm('{"id":2,"number":"last","final":true}');
select pm(' { "number" : 3 , "id" : 2 , "log" : null , "final" : null , "encoding" : null } ');
select pm('{"id":2,"number":4,"log":"aGVsbG8gd29ybGQ=","encoding":"base64"}');
-- escapes: \" \\ \/ \b \f \n \r \t, BMP, a surrogate pair, ANSI ESC, NUL (cleaned to U+FFFD)
select pm('{"id":5,"number":1,"log":"q\"b\\s\/b\bf\fn\nr\rt\t \u00e9 \u4e2d \ud83d\ude00 \u001b[31mred\u001b[0m nul:\u0000."}');
-- raw UTF-8 (valid) in the log, a key and an ignored field
select pm('{"id":5,"number":2,"log":"é中😀\r\n","é":"ü","meta":{"ключ":"😀"}}');
-- unknown fields of every type are ignored
select pm('{"x":[1,-2.5,true,false,null,{"a":[[]]},"s\u0041"],"id":7,"y":{},"number":8,"z":0.125}');

-- rejections (jansson's text and position, or the shared checks' reasons)
select pm('{"id":0,"number":1}');
select pm('{"id":1,"number":2147483648}');
select pm('{"id":1,"number":-1}');
select pm('{"id":1,"number":"first"}');
select pm('{"id":1.5,"number":1}');
select pm('{"id":"1","number":1}');
select pm('{"number":1}');
select pm('{"id":1}');
select pm('{}');
select pm('[]');
select pm('{"id":1,"number":1,"final":"yes"}');
select pm('{"id":1,"number":1,"log":7}');
select pm('{"id":1,"number":1,"log":"x","encoding":"gzip"}');
select pm('{"id":1,"number":1,"log":"!!!","encoding":"base64"}');
select pm('{"id":1,"number":1,"log":"\x"}');
select pm('{"id":1,"number":1,"log":"a' || chr(10) || 'b"}');
select pm('{"id":1,"number":1} trailing');
select pm('{"id":1,"number":1,}');
select pm('{"id":1,"number":01}');
select pm('{"id":99999999999999999999,"number":1}');
select pm('{"id":1,"number":1,"meta":1e999}');
-- duplicated keys: the last wins
select pm('{"id":1,"number":1,"number":2}');
select pm('{"id":1,"number":1,"l\u006fg":"escaped key"}');
-- a part above buildlog.max_part_bytes
set buildlog.max_part_bytes = 10;
select pm('{"id":1,"number":1,"log":"0123456789A"}');
select pm('{"id":1,"number":1,"log":"MDEyMzQ1Njc4OUE=","encoding":"base64"}');
reset buildlog.max_part_bytes;
-- raw invalid UTF-8 in a message: U+FFFD before jansson reads it, counted
select pmx('\x7b226964223a312c226e756d626572223a312c226c6f67223a2261ff62227d'::bytea);


-- item 6: base64 strictly per RFC 4648, with the offset of what is wrong
select pm('{"id":1,"number":1,"log":"QQ==QUJD","encoding":"base64"}');
select pm('{"id":1,"number":1,"log":"QQ=a","encoding":"base64"}');
select pm('{"id":1,"number":1,"log":"Q===","encoding":"base64"}');
select pm('{"id":1,"number":1,"log":"QQ===","encoding":"base64"}');
select pm('{"id":1,"number":1,"log":"=","encoding":"base64"}');
select pm('{"id":1,"number":1,"log":"QUJ","encoding":"base64"}');
select pm('{"id":1,"number":1,"log":"QQ=","encoding":"base64"}');
select pm('{"id":1,"number":1,"log":"QUJD QUJD","encoding":"base64"}');
select pm('{"id":1,"number":1,"log":"QUJD\tQUJD","encoding":"base64"}');
select pm('{"id":1,"number":1,"log":"-_8=","encoding":"base64"}');
select pm('{"id":1,"number":1,"log":"\u00e9QUJ","encoding":"base64"}');
-- non-zero padding bits are rejected (RFC 4648 3.5: one encoding per byte string)
select pm('{"id":1,"number":1,"log":"QR==","encoding":"base64"}');
select pm('{"id":1,"number":1,"log":"QUJ=","encoding":"base64"}');
-- canonical padding, empty, and CR / LF line breaks (Ruby's Base64.encode64:
-- 60 characters a line, "\n" after each) are accepted
select pm('{"id":1,"number":1,"log":"QQ==","encoding":"base64"}');
select pm('{"id":1,"number":1,"log":"QUI=","encoding":"base64"}');
select pm('{"id":1,"number":1,"log":"","encoding":"base64"}');
select pm('{"id":1,"number":1,"log":"' ||
          replace(regexp_replace(replace(encode(convert_to('The quick brown fox jumps over the lazy dog, twice over.', 'UTF8'), 'base64'), E'\n', ''),
                                 '(.{60})', E'\\1\n', 'g') || E'\n', E'\n', '\n') ||
          '","encoding":"base64"}');
select pm('{"id":1,"number":1,"log":"QUJD\r\nREVG\r\nQQ==\r\n","encoding":"base64"}');
select pm('{"id":1,"number":1,"log":"QQ=\n=","encoding":"base64"}');
-- an escaped lone surrogate, in base64 text too: jansson refuses the body
select pm('{"id":1,"number":1,"log":"QUJD\udcff","encoding":"base64"}');

-- item 7: escaped lone surrogates: jansson refuses the body ("invalid Unicode")
select pm('{"id":1,"number":1,"log":"a\udcffb"}');
select pm('{"id":1,"number":1,"log":"\ud800"}');
select pm('{"id":1,"number":1,"log":"\udc00"}');
select pm('{"id":1,"number":1,"log":"\ud800x"}');
select pm('{"id":1,"number":1,"log":"\ud800\u0041"}');
select pm('{"id":1,"number":1,"log":"\ud800\ud800\udc00"}');
select pm('{"id":1,"number":1,"log":"\udc00\ud800"}');
select pm('{"id":1,"number":1,"log":"\udbff\udfff \uD834\uDD1E \ud83d\ude00"}');
select pm('{"id":1,"number":1,"log":"\ud800\u0000\udfff"}');
-- in ignored fields and keys too
select pm('{"id":1,"number":1,"uuid":"\ud800","meta":{"\udcff":"\udc00x"},"\ud800":1}');

-- item 8: fields we ignore decide nothing, but their JSON must be jansson's:
-- numbers beyond a long long or a double, NUL in keys and nesting deeper
-- than 2048 refuse the body; duplicates and nesting up to 2048 do not
select pm('{"id":1,"number":1,"meta":1e400}');
select pm('{"id":1,"number":1,"meta":{"a":123456789012345678901234567890,"b":-1e-400,"c":[1E+999,-0.0e-0]}}');
select pm('{"id":1,"number":1,"x":' || repeat('1', 1000) || '}');
select pm('{"id":1,"number":1,"meta":{"k\u0000":1,"\u0000":2}}');
select pm('{"id":1,"number":1,"meta":{"a":1,"a":"two","a":[3]}}');
select pm('{"id":1,"number":1,"x":' || repeat('[', 2000) || repeat(']', 2000) || '}');
-- numbers the scanner leaves to jansson, which accepts them
select pm('{"id":1,"number":1,"meta":[9223372036854775807,-9223372036854775808,1e100,-1e-400,1.5e308,0.000001e-99]}');
select pm('{"id":1,"number":1,"x":' || repeat('[', 100000) || repeat(']', 100000) || '}');
select pm('{"id":1,"number":1,"x":' || repeat('{"a":', 100000) || 'null' || repeat('}', 100000) || '}');
select pm('{"id":1,"number":1,"x":' || repeat('[', 100000) || repeat(']', 99999) || '}');
-- a key is compared after unescaping; a NUL in a key refuses the body
select pm('{"\u0069d":3,"n\u0075mber":4,"l\u006Fg":"k"}');
select pm('{"id":1,"number":1,"id\u0000":-5,"\u0000id":-5,"number\u0000":"x"}');
select pm('{"id\u0000":1,"number":1}');
-- duplicate top-level keys: the last wins, whatever the earlier ones were
select pm('{"id":1,"number":1,"id":2}');
select pm('{"id":"x","number":[],"log":7,"id":3,"number":4,"log":"last wins"}');
select pm('{"id":3,"number":4,"id":"x"}');
-- integers: no fraction, no exponent; ids up to 2^63-1, numbers up to 2^31-1
select pm('{"id":9223372036854775807,"number":2147483647}');
select pm('{"id":9223372036854775808,"number":1}');
select pm('{"id":123456789012345678901234567890,"number":1}');
select pm('{"id":1e2,"number":1}');
select pm('{"id":1,"number":1.0}');
select pm('{"id":1,"number":1e2}');
select pm('{"id":1,"number":-0}');
select pm('{"id":-0,"number":1}');
select pm('{"id":1,"number":"l\u0061st"}');
select pm('{"id":1,"number":"last "}');
-- whitespace: space, tab, LF, CR only; a leading UTF-8 BOM is skipped
select pm(E' \t\r\n{ \t\r\n"id" \t\r\n: \t\r\n1 \t\r\n, "number":1} \t\r\n');
select pm(E'{"id":1,\f"number":1}');
select pm(U&'\FEFF{"id":1,"number":1}');
select pm(U&'{"id":1,\FEFF"number":1}');
-- raw NUL and invalid UTF-8 refuse the body wherever they are (jansson 2.14
-- would skip a raw NUL after a number or a literal: it is refused first)
select pmx('\x7b226964223a312c226e756d626572223a312c226c6f67223a2261006200ff227d'::bytea);
select pmx('\x7b226964223a312c226e756d626572223a312c226d657461223a2261ff00227d'::bytea);
select pmx('\x7b226964223a312c226e756d626572223a3100ff7d'::bytea);
select pmx(convert_to('{"id":1,"number":1,"x":true', 'UTF8') || '\x00'::bytea || convert_to(',"y":null}', 'UTF8'));

-- both parsers agree on 20,000 random mutations of five
-- well-formed messages (bytes replaced, inserted and deleted)
create temp table bodies (body bytea);
insert into bodies
select convert_to(b, 'UTF8') from (values
  ('{"id":1,"number":0,"log":"hello\r\n","final":false,"uuid":"u","meta":{"queued_at":"2026"}}'),
  ('{"id":2,"number":"last","final":true}'),
  ('{"id":5,"number":1,"log":"q\"b\\s\/b\bf\fn\nr\rt\t \u00e9 \ud83d\ude00 \u0000."}'),
  ('{"x":[1,-2.5,true,false,null,{"a":[[]]},"s\u0041"],"id":7,"y":{},"number":8,"z":0.125e1}'),
  ('{"id":2,"number":4,"log":"aGVsbG8gd29ybGQ=","encoding":"base64"}')) v(b);
select setseed(0.42);
insert into bodies
select case op
         when 0 then overlay(body placing c from pos for 1)
         when 1 then overlay(body placing c from pos for 0)
         else overlay(body placing '' from pos for 1)
       end
  from (select body, floor(random() * 3)::int as op,
               1 + floor(random() * length(body))::int as pos,
               (array['{', '}', '[', ']', '"', ':', ',', '\\', 'u', 'd', '8', '0', '-', '.',
                      'e', ' ', 't', 'n', '1', 'x', '\xc3', '\xa9', '\x0a', '\x00', '\xff'])
                 [1 + floor(random() * 25)::int]::bytea as c
          from bodies, generate_series(1, 4000)) m;
select count(*) as bodies,
       count(*) filter (where (buildlog.parse_message(body)).ok) as accepted,
       count(*) filter (where buildlog.parse_message(body)::text
                              is distinct from buildlog.parse_message(body, true)::text) as disagreements
  from bodies;
-- show any disagreement
select pmx(body), encode(body, 'escape') as body
  from bodies where pmx(body) like 'DISAGREE%' limit 5;

-- the structure-aware generator (script/bench parse runs 1,000,000 of its
-- bodies): 20,000 bodies here, every verdict compared, any disagreement shown
-- BEGIN generator (script/bench parse extracts this block)
-- A structure-aware generator of message bodies: valid messages of every
-- shape, ignored fields with nesting, escapes, surrogates (paired and lone),
-- numbers of every size, keys escaped / with NUL / duplicated, base64 good
-- and bad, odd whitespace and a BOM, then truncations and byte mutations.
-- Deterministic after setseed().
create function gen_pick(variadic choices text[]) returns text
language sql as $$ select choices[1 + floor(random() * array_length(choices, 1))::int] $$;

create function gen_ws() returns text
language sql as $$
  select case when random() < 0.8 then '' else gen_pick(' ', E'\n', E'\t', E'\r\n', '  ', E' \n\t ') end $$;

create function gen_number() returns text
language sql as $$
  select gen_pick('0', '-0', '1', '7', '42', '2147483647', '2147483648', '-1', '1.0', '1e2', '1E+2',
                  '-2.5e-10', '0.125', '1e400', '-1e-400', '123456789012345678901234567890',
                  '9223372036854775807', '9223372036854775808', '-9223372036854775808',
                  '1' || repeat('0', 400), '0.' || repeat('9', 350) || 'e-99999',
                  floor(random() * 1e6)::text,
                  case when random() < 0.2 then gen_pick('01', '1.', '.5', '+1', '1e', '--1', '0x10', '1e+')
                       else '3' end)
$$;

create function gen_string_body() returns text
language plpgsql as $$
declare
  s text := '';
begin
  for i in 1 .. floor(random() * 6)::int loop
    s := s || gen_pick('plain text ', '$ make', 'é中', '😀', E'\\"', E'\\\\', E'\\/', E'\\b',
                       E'\\f', E'\\n', E'\\r', E'\\t', E'\\u00e9', E'\\u4e2d', E'\\ud83d\\ude00',
                       E'\\ud800', E'\\udcff', E'\\ud800\\u0041', E'\\udbff\\udbff\\udfff',
                       E'\\u0000', E'\\u001b[31m', E'\\u0041', E'\\uD834\\uDD1E', E'\\uDFFF\\uD800',
                       case when random() < 0.1 then gen_pick(E'\\x', E'\\u12', E'\t') else 'ab' end);
  end loop;
  return s;
end $$;

create function gen_key() returns text
language sql as $$
  select '"' || gen_pick('id', 'number', 'log', 'final', 'encoding', 'meta', 'uuid', 'x',
                         E'\\u0069d', E'i\\u0064', E'id\\u0000', E'\\u0000id', E'n\\u0075mber',
                         E'l\\u006fg', E'\\ud800', E'k\\udcffk', '', 'ID', 'id ', gen_string_body())
         || '"' $$;

create function gen_value(depth int) returns text
language plpgsql as $$
declare
  r float8 := random();
  n int;
  s text;
begin
  if depth > 4 or r < 0.3 then
    return gen_pick('true', 'false', 'null', gen_number(), '"' || gen_string_body() || '"',
                    case when random() < 0.1 then gen_pick('nul', 'tru', 'True') else '{}' end);
  elsif r < 0.4 then
    n := 1 + floor(random() * 3000)::int;        -- deep nesting
    return case when random() < 0.5 then repeat('[', n) || repeat(']', n)
                else repeat('{"a":', n) || '1' || repeat('}', n) end;
  elsif r < 0.7 then
    s := '[';
    for i in 1 .. floor(random() * 4)::int loop
      s := s || case when i > 1 then ',' else '' end || gen_ws() || gen_value(depth + 1);
    end loop;
    return s || gen_ws() || ']';
  else
    s := '{';
    for i in 1 .. floor(random() * 4)::int loop
      s := s || case when i > 1 then ',' else '' end || gen_ws() || gen_key() || gen_ws() || ':'
             || gen_ws() || gen_value(depth + 1);
    end loop;
    return s || gen_ws() || '}';
  end if;
end $$;

-- base64 of random bytes: canonical, line-wrapped (PostgreSQL wraps at 76),
-- or broken in one of the ways RFC 4648 forbids
create function gen_base64() returns text
language plpgsql as $$
declare
  raw bytea := decode(substr(md5(random()::text) || md5(random()::text), 1,
                             2 * floor(random() * 32)::int), 'hex');
  b text := encode(raw || case when random() < 0.3 then repeat('x', floor(random() * 100)::int)::bytea
                                else ''::bytea end, 'base64');
  pos int;
begin
  if random() < 0.5 then
    b := replace(b, E'\n', '');
  end if;
  pos := 1 + floor(random() * greatest(length(b), 1))::int;
  b := case floor(random() * 10)::int
         when 0 then overlay(b placing '=' from pos for 0)
         when 1 then overlay(b placing gen_pick(' ', '-', '_', '!', '.', E'\t') from pos for 1)
         when 2 then left(b, pos)
         when 3 then b || gen_pick('=', '==', 'QQ', 'QQ==', 'QR==', 'QUI=', 'QUJ=', E'\r\n', E'\n')
         when 4 then regexp_replace(b, '(.)(=+)$', 'B\2')   -- non-zero padding bits
         else b
       end;
  return replace(replace(b, E'\n', E'\\n'), E'\r', E'\\r');
end $$;

create function gen_message() returns text
language plpgsql as $$
declare
  members text[] := '{}';
  b64 boolean := random() < 0.3;
  s text;
begin
  if random() < 0.97 then
    members := members || ('"id"' || gen_ws() || ':' || gen_ws()
               || case when random() < 0.85 then (1 + floor(random() * 1e9))::text else gen_value(0) end);
  end if;
  if random() < 0.97 then
    members := members || ('"number"' || gen_ws() || ':' || gen_ws()
               || case when random() < 0.8 then floor(random() * 5000)::text
                       when random() < 0.5 then '"last"' else gen_value(0) end);
  end if;
  if random() < 0.9 then
    members := members || ('"log":' || gen_ws()
               || case when random() < 0.85 then '"' || case when b64 then gen_base64() else gen_string_body() end || '"'
                       else gen_value(0) end);
  end if;
  if b64 then
    members := members || ('"encoding":' || gen_pick('"base64"', '"base64"', '"base64"', E'"base\\u0036\\u0034"',
                                                     '"gzip"', 'null', '64', '"base64 "'));
  end if;
  if random() < 0.5 then
    members := members || ('"final":' || gen_pick('true', 'false', 'null', 'true',
                                                  case when random() < 0.3 then gen_pick('"yes"', '0') else 'false' end));
  end if;
  if random() < 0.5 then
    members := members || ('"meta":' || gen_value(0));
  end if;
  if random() < 0.3 then
    members := members || ('"uuid":"' || gen_string_body() || '"');
  end if;
  for i in 1 .. floor(random() * 3)::int loop
    members := members || (case when random() < 0.3 then gen_key()    -- escaped or duplicate keys
                                else gen_pick('"x"', '"meta"', '"uuid"', E'"k\\u0000"', E'"\\ud800"', '"é"')
                           end || ':' || gen_value(0));
  end loop;
  select string_agg(m, ',' || gen_ws() order by random()) into s from unnest(members) m;
  return case when random() < 0.03 then U&'\FEFF' else '' end || gen_ws() || '{' || gen_ws()
         || coalesce(s, '') || gen_ws() || '}' || gen_ws()
         || case when random() < 0.02 then gen_pick('x', ',', '{}', '}') else '' end;
end $$;

-- a message, or (one time in three) a truncated or byte-mutated one
create function gen_body() returns bytea
language plpgsql as $$
declare
  b bytea := convert_to(gen_message(), 'UTF8');
  pos int;
  c bytea;
begin
  if random() < 0.67 then
    return b;
  end if;
  for i in 1 .. 1 + floor(random() * 3)::int loop
    pos := 1 + floor(random() * length(b))::int;
    c := (array['{', '}', '[', ']', '"', ':', ',', '\\', 'u', 'd', '8', '0', '-', '.', 'e', ' ', '=',
                't', 'n', '1', 'x', '\xc3', '\xa9', '\x0a', '\x00', '\xff', '\xeda080'])
           [1 + floor(random() * 27)::int]::bytea;
    b := case floor(random() * 4)::int
           when 0 then overlay(b placing c from pos for 1)
           when 1 then overlay(b placing c from pos for 0)
           when 2 then overlay(b placing '' from pos for 1)
           else substr(b, 1, pos)
         end;
  end loop;
  return b;
end $$;
-- END generator

select setseed(0.5);
create temp table generated as select gen_body() as body from generate_series(1, 20000);
select count(*) as bodies,
       count(*) filter (where (buildlog.parse_message(body)).ok) as accepted,
       count(*) filter (where (buildlog.parse_message(body)).replaced > 0) as with_replacements,
       count(*) filter (where pmx(body) like 'DISAGREE%') as disagreements
  from generated;
select pmx(body), encode(body, 'escape') as body
  from generated where pmx(body) like 'DISAGREE%' limit 5;
