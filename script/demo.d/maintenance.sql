-- One call of buildlog.run_maintenance(), as one line
select 'partitions created: ' || cardinality(created) || ', dropped: ' || cardinality(dropped) || ', attempts: ' || tries
       || '; daily partitions of log_parts: ' || (select count(*) from partman.show_partitions('buildlog.log_parts'))
  from buildlog.run_maintenance();
