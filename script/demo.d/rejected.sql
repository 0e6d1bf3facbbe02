-- The demo's rejected messages (containing :'mark'): reason, then the body (long ones cut)
select format(E'  %s\n      %s', reason,
              case when octet_length(body) <= 100 then (buildlog.clean_utf8(body)).content
                   else left((buildlog.clean_utf8(body)).content, 72) || '... (' || octet_length(body) || ' bytes)' end)
  from buildlog.rejected_parts
 where position(:'mark'::bytea in body) > 0
 order by id;
