-- replay_rejected(): still invalid is 22P02 with the reason; a fixed body is
-- written through the ingest path, stamped replayed_at and kept as fixed_body
insert into buildlog.rejected_parts (reason, body)
values ('"id" is not a positive integer', convert_to('{"id":0,"number":1,"log":"x"}', 'UTF8'));
select regexp_replace(expect_error($$select buildlog.replay_rejected((select max(id) from buildlog.rejected_parts))$$),
                      'delivery \d+', 'delivery N') as error;
select replayed_at is null as not_replayed from buildlog.rejected_parts
 where id = (select max(id) from buildlog.rejected_parts);
select buildlog.replay_rejected((select max(id) from buildlog.rejected_parts),
                                convert_to('{"id":82,"number":1,"log":"fixed"}', 'UTF8'));
select replayed_at is not null as replayed, convert_from(fixed_body, 'UTF8') as fixed_body
  from buildlog.rejected_parts where id = (select max(id) from buildlog.rejected_parts);
select buildlog.log(82);
-- a body jansson refuses: the replay goes through the drain's path and
-- fails with jansson's text and position, whether stored or given as fixed
insert into buildlog.rejected_parts (reason, body)
values ('kept', convert_to('{"id":8111,"number":1,"log":"a\ud800b"}', 'UTF8'));
select regexp_replace(expect_error($$select buildlog.replay_rejected((select max(id) from buildlog.rejected_parts))$$),
                      'delivery \d+', 'delivery N') as error;
select regexp_replace(expect_error($$select buildlog.replay_rejected((select max(id) from buildlog.rejected_parts),
                                       convert_to('{"id":8111,"number":1,"log":"ab","x":1e400}', 'UTF8'))$$),
                      'delivery \d+', 'delivery N') as error;
-- fixed with a \u0000 escape instead: read, stored as U+FFFD
select buildlog.replay_rejected((select max(id) from buildlog.rejected_parts),
                                convert_to('{"id":8111,"number":1,"log":"a\u0000b"}', 'UTF8'));
select buildlog.log(8111);
select expect_error('select buildlog.replay_rejected(-1)');
delete from buildlog.rejected_parts;
