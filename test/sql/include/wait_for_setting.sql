-- \i test/sql/include/wait_for_setting.sql: polls until
-- current_setting(:'wait_name') is :'wait_value', at most :wait_tries times,
-- 20 ms apart.  Set the three variables first, and ECHO none around the call
-- (how often it polls varies).  pg_regress runs from the checkout's top
-- directory and feeds a test on stdin, hence the path from there.
-- A backend applies pg_reload_conf() only between statements, so the poll is
-- a chain of statements (this file includes itself), not a function's loop.
-- It only waits; the caller then checks the value and shows the result.
select current_setting(:'wait_name', true) is distinct from :'wait_value'
       and :wait_tries > 0 as wait_again,
       :wait_tries - 1 as wait_tries \gset
\if :wait_again
select pg_sleep(0.02) as wait_slept \gset
\ir wait_for_setting.sql
\endif
