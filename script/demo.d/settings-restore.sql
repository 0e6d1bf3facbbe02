-- The statements that put buildlog.aggregate_delay and buildlog.purge_delay back as
-- they are now, each after a comment line "-- name = value (how)" (script/demo keeps
-- them in $STACK_DIR/demo-restore.sql until it has restored them).
select case when sourcefile like '%/postgresql.auto.conf'
            then format(E'-- %s = %s (ALTER SYSTEM)\nalter system set %s = %L;', name, current_setting(name), name, current_setting(name))
            else format(E'-- %s = %s (ALTER SYSTEM RESET)\nalter system reset %s;', name, current_setting(name), name) end
  from pg_settings where name in ('buildlog.aggregate_delay', 'buildlog.purge_delay')
 order by name;
