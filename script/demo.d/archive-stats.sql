-- buildlog.archive_stats summed over the archive workers
select coalesce(sum(archived), 0), coalesce(sum(bytes), 0), coalesce(sum(verified), 0),
       coalesce(sum(purged), 0), coalesce(sum(reuploads), 0), coalesce(sum(retries), 0),
       coalesce(sum(failures), 0)
  from buildlog.archive_stats;
