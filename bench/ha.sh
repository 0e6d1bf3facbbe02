#!/usr/bin/env bash
# High-availability ingest benchmark, run by `script/bench ha`; see bench/README.md.
#
# In one run, on one machine: the drain's sustained parts/s (200 B parts, from
# a pre-filled queue to committed rows) on a single node (its own stack) and
# on the primary of a pg_auto_failover pair with synchronous replication
# (script/cluster db, draining the same broker), and their ratio.
# Knobs: BENCH_HA_PARTS (default 100000), BENCH_WORKERS (2), BENCH_OUT=FILE.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${BENCH_HA_PARTS:-100000}
WORKERS=${BENCH_WORKERS:-2}
PARTS_PER_JOB=500

say() { echo "bench: $*"; }
export STACK_DIR; STACK_DIR=$(mktemp -d /tmp/buildlog-bench.XXXXXX)
chmod 755 "$STACK_DIR"
export STACK_PG_PORT=54346 STACK_AMQP_PORT=56755 STACK_RABBITMQ_DIST_PORT=56756 \
       STACK_RABBITMQ_MGMT_PORT=15698 STACK_EPMD_PORT=56757 STACK_S3_PORT=45693
export STACK_PG_EXTRA_CONF="buildlog.aggregate_delay = '1d'
buildlog.archive_workers = 0
buildlog.drain_workers = $WORKERS
buildlog.amqp_queues = 'bench.idle'"
. bench/stack_up.sh
export CLUSTER_DIR="$STACK_DIR/cluster" CLUSTER_PORT_BASE=57700 CLUSTER_AMQP_URL="$BUILDLOG_AMQP_URL"
export CLUSTER_PG_CONF="buildlog.drain_workers = $WORKERS
buildlog.amqp_queues = 'bench.idle'
buildlog.aggregate_delay = '1d'"
mkdir -p "$CLUSTER_DIR"; chown postgres "$CLUSTER_DIR" 2>/dev/null || true
trap 'script/cluster stop >/dev/null 2>&1 || true; cleanup' EXIT
script/cluster start db
HA_URL=$(script/cluster pg-url)

# fill QUEUE with N parts of 200 B (persistent, confirmed)
fill() {
  sql -c "select buildlog.declare_queues('$1', queue_type => 'classic')" >/dev/null
  tools/bin/publish --url "$BUILDLOG_AMQP_URL" --queue "$1" --jobs $((N / PARTS_PER_JOB)) \
    --parts "$PARTS_PER_JOB" --size 200 --no-final --confirm >/dev/null
}
# rate CONNINFO QUEUE: point that node's drain at the filled QUEUE; parts/s to the last commit
rate() {
  psql -X -q -At -v ON_ERROR_STOP=1 "$1" <<EOF
\\o /dev/null
create temp table t0 as select clock_timestamp() as t, coalesce((select sum(deliveries) from buildlog.drain_stats), 0) as d;
alter system set buildlog.amqp_queues = '$2';
select pg_reload_conf();
select buildlog.restart_workers();
do \$\$ begin
  loop
    exit when (select sum(deliveries) from buildlog.drain_stats) - (select d from t0) >= $N;
    perform pg_sleep(0.01);
  end loop;
end \$\$;
\\o
select round($N / extract(epoch from (select max(last_commit) from buildlog.drain_stats) - t)) from t0;
EOF
}

say "filling two queues with $N parts each"
fill bench.single
fill bench.ha
say "single node: draining"
single=$(rate "" bench.single)
say "primary with a synchronous standby: draining"
ha=$(PGUSER=postgres rate "$HA_URL" bench.ha)
ratio=$(awk -v a="$ha" -v b="$single" 'BEGIN { printf "%.2f", a / b }')
load=$(cut -d' ' -f1-3 /proc/loadavg)
result="$(date -u +%F) load $load: $N parts of 200 B, $WORKERS drain workers: single node $single parts/s, synchronous standby $ha parts/s, ratio $ratio"
say "$result"
[ -z "${BENCH_OUT:-}" ] || echo "$result" >>"$BENCH_OUT"
