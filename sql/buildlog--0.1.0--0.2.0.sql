-- buildlog 0.1.0 -> 0.2.0: hardening against hostile input and operator
-- mistakes (issue 8).  CREATE EXTENSION buildlog installs 0.1.0 and applies
-- this script, so every install runs the upgrade path.
\echo Use "ALTER EXTENSION buildlog UPDATE TO '0.2.0'" to load this file. \quit

-- ------------------------------------------------ stored data and redaction

-- ------------------------------------------------ aggregation and maintenance

-- ------------------------------------------------ ingest

-- ------------------------------------------------ drain

-- drain_stats gains split_retries (failed pieces retried in halves) and
-- error_rejected (single deliveries kept aside because writing them raised
-- an ERROR); a function's OUT columns cannot be changed in place.
drop view buildlog.drain_stats;
drop function buildlog.drain_worker_stats();
create function buildlog.drain_worker_stats(
  out worker int, out pid int, out queues text, out connected boolean,
  out connected_since timestamptz, out deliveries bigint, out parts bigint,
  out rejected bigint, out replaced bigint, out batches bigint, out mean_batch float8,
  out max_batch bigint, out last_commit timestamptz, out reconnects bigint,
  out failed_batches bigint, out split_retries bigint, out error_rejected bigint,
  out last_error text, out last_error_at timestamptz)
returns setof record
language c volatile parallel restricted
as 'MODULE_PATHNAME', 'buildlog_drain_stats';
comment on function buildlog.drain_worker_stats() is
  'Counters of the running drain workers, from shared memory (see the view buildlog.drain_stats).';

create view buildlog.drain_stats as select * from buildlog.drain_worker_stats();
comment on view buildlog.drain_stats is
  'One row per running drain worker: queues, connection, deliveries, parts written, rejected (error_rejected: because writing them raised an ERROR), batches, failed write transactions, split retries, last commit, reconnects, last error.';

-- ------------------------------------------------ archive and S3

-- ------------------------------------------------ monitoring

-- ------------------------------------------------ privileges and search_path
