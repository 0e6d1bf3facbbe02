-- README promises: a non-UTF-8 database is refused with 0A000.
\set regression_db :DBNAME
create database buildlog_latin1 encoding 'LATIN1' lc_collate 'C' lc_ctype 'C' template template0;
\c buildlog_latin1
create schema partman;
create extension pg_partman schema partman;
do $$
begin
  create extension buildlog;
  raise notice 'no error';
exception when others then
  raise notice '%: %', sqlstate, sqlerrm;
end
$$;
\c :regression_db
drop database buildlog_latin1;
