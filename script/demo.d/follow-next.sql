-- The reader's next poll of job :job: the parts after :after, as "N FIRST..LAST (B bytes)"
select count(*), coalesce(min(number) || '..' || max(number), '-') || ' (' || coalesce(sum(octet_length(content)), 0) || ' bytes)'
  from buildlog.parts(:job, :after);
