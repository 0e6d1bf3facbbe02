-- The parts of job :job so far: how many, the highest number, final?, the numbers
-- missing below the highest, and where the next poll starts: after the highest
-- number with none missing before it.
with p as (select number, final from buildlog.parts(:job))
select count(*), coalesce(max(number), -1), coalesce(bool_or(final), false),
       coalesce((select string_agg(g::text, ',') from generate_series(0, (select max(number) from p)) g
                  where g not in (select number from p)), '-'),
       (select min(g) - 1 from generate_series(0, (select coalesce(max(number), -1) + 1 from p)) g
         where g not in (select number from p))
  from p;
