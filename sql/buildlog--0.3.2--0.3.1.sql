-- buildlog 0.3.2 -> 0.3.1 (the sqitch revert of buildlog_0.3.2): the 0.3.1
-- declarations back.  Logs and parts are kept.  Stream offsets are dropped: a
-- runner resuming a stream is then told a range of offsets unless its log is
-- empty.  Registered secrets are dropped (logs stay as masked).  The
-- installation id is dropped: objects already tagged keep the tag.
\echo Use "ALTER EXTENSION buildlog UPDATE TO '0.3.1'" to load this file. \quit

alter extension buildlog drop function buildlog.add_secrets(bigint, text[]);
drop function buildlog.add_secrets(bigint, text[]);
alter extension buildlog drop table buildlog.job_secrets;
drop table buildlog.job_secrets;
alter extension buildlog drop table buildlog.stream_offsets;
drop table buildlog.stream_offsets;
alter extension buildlog drop table buildlog.installation;
drop table buildlog.installation;

drop function buildlog.declare_queues(text, int, text, text);
create function buildlog.declare_queues(queue text default 'reporting.jobs.logs', shards int default 0,
                                        exchange text default 'reporting.jobs.logs_sharded')
returns table (queue_name text)
language c volatile strict parallel unsafe
as 'MODULE_PATHNAME', 'buildlog_declare_queues';
comment on function buildlog.declare_queues(text, int, text) is
  'Declare the durable queue on buildlog.amqp_url, or with shards > 0 an x-consistent-hash exchange routing by job id to queues <queue>.1..N. Returns the queue names for buildlog.amqp_queues.';
revoke execute on function buildlog.declare_queues(text, int, text) from public;
