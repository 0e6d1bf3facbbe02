#!/usr/bin/env bash
# Drain benchmark, run by `script/bench drain`; see bench/README.md.
#
# Starts its own PostgreSQL + RabbitMQ stack in a temporary folder on its own
# ports (never the development stack), then measures in one run:
#   1. sustained parts/s from queue to committed rows (BENCH_WORKERS drain workers) at 200 B
#      and 1,600 B parts, against bench/bin/consume_raw (ack only, same prefetch,
#      1 and 2 consumers) draining the same pre-filled queue;
#   2. publish-to-commit latency at a steady 5,000 parts/s (track_commit_timestamp);
#   3. drain worker memory before and after BENCH_RSS_MESSAGES (default 5 M) messages.
# Knobs: BENCH_DRAIN_PARTS_200 (default 300000), BENCH_DRAIN_PARTS_1600 (100000),
# BENCH_LATENCY_SECONDS (20), BENCH_RSS_MESSAGES (5000000, 0 skips), BENCH_WORKERS (2),
# BENCH_BATCH (500), BENCH_OUT=FILE.
set -euo pipefail
cd "$(dirname "$0")/.."

N200=${BENCH_DRAIN_PARTS_200:-300000}
N1600=${BENCH_DRAIN_PARTS_1600:-100000}
LAT_S=${BENCH_LATENCY_SECONDS:-20}
RSS_N=${BENCH_RSS_MESSAGES:-5000000}
PARTS_PER_JOB=500
WORKERS=${BENCH_WORKERS:-2}
BATCH=${BENCH_BATCH:-500}

say() { echo "bench: $*"; }
export STACK_DIR; STACK_DIR=$(mktemp -d /tmp/buildlog-bench.XXXXXX)
chmod 755 "$STACK_DIR"
# the caller's STACK_* ports when set (two checkouts side by side), else these
export STACK_PG_PORT=${STACK_PG_PORT:-54345} STACK_AMQP_PORT=${STACK_AMQP_PORT:-56745} \
       STACK_RABBITMQ_DIST_PORT=${STACK_RABBITMQ_DIST_PORT:-56746} \
       STACK_RABBITMQ_MGMT_PORT=${STACK_RABBITMQ_MGMT_PORT:-15697} \
       STACK_EPMD_PORT=${STACK_EPMD_PORT:-56747} STACK_S3_PORT=${STACK_S3_PORT:-45692}
# the scheduler and archive workers stay out of the way: rows are counted in log_parts
export STACK_PG_EXTRA_CONF="track_commit_timestamp = on
buildlog.aggregate_delay = '1d'
buildlog.aggregate_force_after = '1000d'
buildlog.maintenance_interval = 0
buildlog.archive_workers = 0
buildlog.drain_workers = $WORKERS
buildlog.batch_size = $BATCH
buildlog.amqp_queues = 'bench.idle'
shared_buffers = '512MB'
max_wal_size = '4GB'"
. bench/stack_up.sh
sql -c "select buildlog.declare_queues('bench.idle')" -c "select buildlog.declare_queues('bench.drain')" >/dev/null

# point the drain workers at QUEUE and wait until both consume it
consume() {
  sql -c "alter system set buildlog.amqp_queues = '$1'" -c 'select pg_reload_conf()' >/dev/null
  sql -c 'select buildlog.restart_workers()' >/dev/null
  sql <<EOF
do \$\$ begin
  for i in 1..500 loop
    exit when (select count(*) from buildlog.drain_stats where connected and queues = '$1') = $WORKERS;
    perform pg_sleep(0.02);
  end loop;
end \$\$;
EOF
}
# publish ARGS...: publish to bench.drain (persistent), quietly
publish() { tools/bin/publish --url "$BUILDLOG_AMQP_URL" --queue bench.drain "$@" >/dev/null; }
queue_len() { script/stack rabbitmqctl list_queues -q name messages | awk '$1 == "bench.drain" {print $2}'; }

{
  echo "buildlog drain benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load at start $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "settings: $WORKERS drain worker(s), batch_size $(sql -c 'show buildlog.batch_size'), flush_ms $(sql -c 'show buildlog.flush_ms'), prefetch 2 x batch, persistent messages, fsync on, synchronous_commit on"
} >"$RESULTS"

# ------------------------------------------------------------------ throughput
# drain_case SIZE PARTS: raw drain (1 and 2 consumers) vs buildlog drain of the same queue
drain_case() {
  local size=$1 parts=$2 jobs msgs raw1 raw2 r secs rows
  jobs=$((parts / PARTS_PER_JOB)); msgs=$((jobs * (PARTS_PER_JOB + 1)))  # + final part per job
  consume bench.idle
  say "$size B: publishing $msgs messages, raw drain with 1 consumer"
  publish --jobs "$jobs" --parts "$PARTS_PER_JOB" --size "$size" --shuffle --seed 1
  raw1=$(bench/bin/consume_raw --url "$BUILDLOG_AMQP_URL" --queue bench.drain --prefetch $((2 * BATCH)) --batch $BATCH --idle-ms 1000 2>/dev/null | awk '{print $(NF-1)}')
  say "$size B: raw 1 consumer: $raw1 msg/s; publishing again, raw drain with 2 consumers"
  publish --jobs "$jobs" --parts "$PARTS_PER_JOB" --size "$size" --shuffle --seed 1
  r=$( (bench/bin/consume_raw --url "$BUILDLOG_AMQP_URL" --queue bench.drain --prefetch $((2 * BATCH)) --batch $BATCH --idle-ms 1000 2>/dev/null &
        bench/bin/consume_raw --url "$BUILDLOG_AMQP_URL" --queue bench.drain --prefetch $((2 * BATCH)) --batch $BATCH --idle-ms 1000 2>/dev/null; wait) |
       awk '{n += $2; if ($5 > s) s = $5} END {printf "%.0f", n / s}')
  raw2=$r
  say "$size B: raw 2 consumers: $raw2 msg/s; publishing again, buildlog drain ($WORKERS workers)"
  publish --jobs "$jobs" --parts "$PARTS_PER_JOB" --size "$size" --shuffle --seed 1
  sql -c 'truncate buildlog.log_parts, buildlog.logs' -c 'checkpoint'
  secs=$(drain_seconds "$msgs")
  rows=$(sql -c 'select count(*) from buildlog.log_parts')
  [ "$rows" -eq "$msgs" ] || { say "expected $msgs rows, found $rows"; exit 1; }
  say "$size B: buildlog drain: $msgs parts in $secs s"
  awk -v size="$size" -v n="$msgs" -v s="$secs" -v r1="$raw1" -v r2="$raw2" 'BEGIN {
    d = n / s; printf "%-6s %9d %10.0f %8.1f %12.0f %12.0f %9.2f %9.2f\n", size " B", n, d, d * size / 1e6, r1, r2, d / r1, d / r2 }' >>"$STACK_DIR/throughput"
}

# ------------------------------------------------------------------ latency
latency_case() {
  local jobs=$((LAT_S * 5000 / PARTS_PER_JOB))
  consume bench.drain
  sql -c 'truncate buildlog.log_parts, buildlog.logs'
  say "latency: publishing $((jobs * PARTS_PER_JOB)) timestamped parts at 5000/s while draining"
  publish --jobs "$jobs" --parts "$PARTS_PER_JOB" --size 200 --timestamp --rate 5000 --no-final
  sql <<EOF
do \$\$ begin
  for i in 1..1000 loop
    exit when (select count(*) from buildlog.log_parts) >= $((jobs * PARTS_PER_JOB));
    perform pg_sleep(0.01);
  end loop;
end \$\$;
EOF
  sql -F ' ' -c "select count(*), round(percentile_cont(0.5) within group (order by ms)::numeric, 1),
                        round(percentile_cont(0.99) within group (order by ms)::numeric, 1),
                        round(max(ms)::numeric, 1)
                   from (select extract(epoch from pg_xact_commit_timestamp(xmin)) * 1000
                                - substr(content, 2, 16)::bigint / 1000.0 as ms
                           from buildlog.log_parts) s" >"$STACK_DIR/latency"
  say "latency: parts p50 p99 max (ms): $(cat "$STACK_DIR/latency")"
}

# ------------------------------------------------------------------ memory
worker_mem() { # "pid:RssAnon kB:VmRSS kB" of every drain worker
  local pid
  for pid in $(sql -c 'select pid from buildlog.drain_stats order by worker'); do
    echo "$pid:$(awk '/^RssAnon/ {a = $2} /^VmRSS/ {r = $2} END {print a ":" r}' "/proc/$pid/status")"
  done
}
rss_case() {
  [ "$RSS_N" -gt 0 ] || return 0
  consume bench.drain
  sql -c 'truncate buildlog.log_parts, buildlog.logs'
  say "memory: warming up with 100000 messages"
  publish --jobs 200 --parts 499 --size 100 --transient
  until [ "$(queue_len)" = 0 ]; do sleep 1; done
  local before after jobs=$((RSS_N / PARTS_PER_JOB)) start
  before=$(worker_mem)
  say "memory: before: $before (pid:RssAnon kB:VmRSS kB); publishing $RSS_N messages while draining"
  start=$(date +%s)
  publish --jobs "$jobs" --first-job 1000000 --parts $((PARTS_PER_JOB - 1)) --size 100 --transient
  until [ "$(queue_len)" = 0 ]; do sleep 1; done
  after=$(worker_mem)
  say "memory: after $(( $(date +%s) - start )) s: $after"
  paste -d' ' <(echo "$before" | tr ' ' '\n') <(echo "$after" | tr ' ' '\n') |
    awk -F'[ :]' '{printf "worker pid %s: RssAnon %d -> %d kB (%+d), VmRSS %d -> %d kB\n", $1, $2, $5, $5 - $2, $3, $6}' >"$STACK_DIR/memory"
}

drain_case 200 "$N200"
drain_case 1600 "$N1600"
latency_case
rss_case

{
  echo
  echo "throughput: pre-filled durable queue, shuffled parts of ${PARTS_PER_JOB}-part jobs (+1 final), queue -> committed rows"
  printf '%-6s %9s %10s %8s %12s %12s %9s %9s\n' part messages "parts/s" "MB/s" "raw 1 c/s" "raw 2 c/s" "vs raw1" "vs raw2"
  cat "$STACK_DIR/throughput"
  echo
  echo "latency at 5000 parts/s for ${LAT_S} s (publish call -> commit timestamp), 200 B parts"
  echo "parts p50_ms p99_ms max_ms"
  cat "$STACK_DIR/latency"
  if [ -s "$STACK_DIR/memory" ]; then
    echo
    echo "drain worker memory across $RSS_N messages (after a 100000-message warm-up)"
    cat "$STACK_DIR/memory"
  fi
} >>"$RESULTS"
echo
cat "$RESULTS"
if [ -n "${BENCH_OUT:-}" ]; then cp "$RESULTS" "$BENCH_OUT"; say "results written to $BENCH_OUT"; fi
