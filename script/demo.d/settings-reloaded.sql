-- t once this session sees the demo's delays (:'agg', :'purge'): the reload is done.
select current_setting('buildlog.aggregate_delay')::interval = :'agg'::interval
   and current_setting('buildlog.purge_delay')::interval = :'purge'::interval;
