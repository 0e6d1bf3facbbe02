\set ECHO none
-- \i test/sql/include/token_key_reset.sql: buildlog.http_token_key_file
-- back to the server's configuration (unset), reloaded and waited for.
-- Prints token_key_unset.
alter system reset buildlog.http_token_key_file;
select pg_reload_conf() as reloaded \gset
\set wait_name buildlog.http_token_key_file
\set wait_value ''
\set wait_tries 500
\i test/sql/include/wait_for_setting.sql
\set ECHO all
select current_setting('buildlog.http_token_key_file') = '' as token_key_unset;
