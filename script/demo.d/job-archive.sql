-- The row of job :job in buildlog.logs: its content (or when it was purged) and its archive
select format('logs.content of job %s: %s; its archive: %s bytes in S3, SHA-256 %s…, recorded at upload',
              job_id, case when content is null then 'NULL, purged at ' || to_char(purged_at, 'HH24:MI:SS.MS')
                           else octet_length(content) || ' bytes, not purged' end,
              coalesce(archive_size::text, 'no'), coalesce(left(archive_sha256, 16), '-'))
  from buildlog.logs where job_id = :job;
