\set ECHO none
-- \i test/sql/include/token_key.sql: a token key for issue_token() and its
-- scope-fixed forms: 44 bytes in a file of the data directory (written by
-- the server), named in buildlog.http_token_key_file, reloaded and waited
-- for.  Prints token_key_set.  Undo with
-- \i test/sql/include/token_key_reset.sql.
select current_setting('data_directory') || '/buildlog_regress_token.key' as token_key_file \gset
do $$
begin
  execute pg_catalog.format('copy (select %L) to %L', 'regress-token-key-0123456789abcdef0123456789',
                            pg_catalog.current_setting('data_directory') || '/buildlog_regress_token.key');
end
$$;
alter system set buildlog.http_token_key_file = :'token_key_file';
select pg_reload_conf() as reloaded \gset
\set wait_name buildlog.http_token_key_file
\set wait_value :token_key_file
\set wait_tries 500
\i test/sql/include/wait_for_setting.sql
\set ECHO all
select current_setting('buildlog.http_token_key_file') = :'token_key_file' as token_key_set;
