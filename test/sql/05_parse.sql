-- parse_message: what the drain makes of a delivery body.  The fast scanner
-- reads well-formed messages; jansson (reference => true) decides the rest.
-- Both must agree on every body.
create function pm(body text, reference boolean default false) returns text
language sql as $$ select buildlog.parse_message(convert_to(body, 'UTF8'), reference)::text $$;

-- the usual shapes
select pm('{"id":1,"number":0,"log":"hello\r\n","final":false,"uuid":"u","meta":{"queued_at":"2026-11-23T00:00:00Z"}}');
select pm('{"id":2,"number":"last","final":true}');
select pm(' { "number" : 3 , "id" : 2 , "log" : null , "final" : null , "encoding" : null } ');
select pm('{"id":2,"number":4,"log":"aGVsbG8gd29ybGQ=","encoding":"base64"}');
-- escapes: \" \\ \/ \b \f \n \r \t, BMP, a surrogate pair, ANSI ESC, NUL (cleaned to U+FFFD)
select pm('{"id":5,"number":1,"log":"q\"b\\s\/b\bf\fn\nr\rt\t \u00e9 \u4e2d \ud83d\ude00 \u001b[31mred\u001b[0m nul:\u0000."}');
-- unknown fields of every type are ignored
select pm('{"x":[1,-2.5,true,false,null,{"a":[[]]},"s\u0041"],"id":7,"y":{},"number":8,"z":0.125}');

-- rejections (worded by jansson or by the shared checks)
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
select pm('{"id":1,"number":1,"log":"\ud800"}');
select pm('{"id":1,"number":1,"log":"\udc00"}');
select pm('{"id":1,"number":1,"log":"\x"}');
select pm('{"id":1,"number":1,"log":"a' || chr(10) || 'b"}');
select pm('{"id":1,"number":1} trailing');
select pm('{"id":1,"number":1,}');
select pm('{"id":1,"number":01}');
select pm('{"id":99999999999999999999,"number":1}');
select pm('{"id":1,"number":1,"meta":1e999}');
-- duplicated keys: the last wins, as in jansson
select pm('{"id":1,"number":1,"number":2}');
select pm('{"id":1,"number":1,"l\u006fg":"escaped key"}');
-- a part above buildlog.max_part_bytes
set buildlog.max_part_bytes = 10;
select pm('{"id":1,"number":1,"log":"0123456789A"}');
select pm('{"id":1,"number":1,"log":"MDEyMzQ1Njc4OUE=","encoding":"base64"}');
reset buildlog.max_part_bytes;
-- invalid UTF-8 in the body is cleaned before parsing
select buildlog.parse_message('\x7b226964223a312c226e756d626572223a312c226c6f67223a2261ff62227d'::bytea);

-- both parsers agree on the cases above and on 20,000 random mutations of
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
select body, buildlog.parse_message(body), buildlog.parse_message(body, true)
  from bodies
 where buildlog.parse_message(body)::text is distinct from buildlog.parse_message(body, true)::text
 limit 5;
