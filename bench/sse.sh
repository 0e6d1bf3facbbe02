#!/usr/bin/env bash
# Live-log benchmarks of the HTTP service, run by `script/bench sse`;
# see bench/README.md.
#
# Starts its own PostgreSQL + RabbitMQ stack in a temporary folder (ports from the
# STACK_* variables when set, else its own defaults), then measures:
#   1. live latency: BENCH_SSE_WATCHERS (1000) SSE watchers (tools/bin/sse_watch) over
#      BENCH_SSE_JOBS (100) jobs while tools/bin/publish sends timestamped parts at
#      BENCH_SSE_RATE (5000) parts/s for BENCH_SSE_SECONDS (20) s through RabbitMQ and
#      the drain: p50/p99/max from the publish call to the event's receipt, and that
#      every watcher got every part once;
#   2. fan-out: BENCH_SSE_IDLE (10000) idle SSE connections: the HTTP worker's memory
#      (VmRSS, RssAnon from /proc/PID/status) before and with them, and its CPU over
#      BENCH_SSE_IDLE_SECONDS (30) s of holding them (heartbeats included);
#      its open-file limit from /proc/PID/limits.
# Knobs above (BENCH_SSE_SECONDS=0 or BENCH_SSE_IDLE=0 skips a case), and BENCH_HTTP_PORT (18470), BENCH_OUT=FILE.
set -euo pipefail
cd "$(dirname "$0")/.."

WATCHERS=${BENCH_SSE_WATCHERS:-1000}
JOBS=${BENCH_SSE_JOBS:-100}
RATE=${BENCH_SSE_RATE:-5000}
SECONDS_LIVE=${BENCH_SSE_SECONDS:-20}
IDLE=${BENCH_SSE_IDLE:-10000}
IDLE_S=${BENCH_SSE_IDLE_SECONDS:-30}
HTTP_PORT=${BENCH_HTTP_PORT:-18470}
PARTS=$((RATE * SECONDS_LIVE / JOBS))

say() { echo "bench: $*"; }
export STACK_DIR; STACK_DIR=$(mktemp -d /tmp/buildlog-bench-sse.XXXXXX)
chmod 755 "$STACK_DIR"
export STACK_PG_PORT=${STACK_PG_PORT:-54365} STACK_AMQP_PORT=${STACK_AMQP_PORT:-56765} \
       STACK_RABBITMQ_DIST_PORT=${STACK_RABBITMQ_DIST_PORT:-56766} STACK_RABBITMQ_MGMT_PORT=${STACK_RABBITMQ_MGMT_PORT:-15699} \
       STACK_EPMD_PORT=${STACK_EPMD_PORT:-56767} STACK_S3_PORT=${STACK_S3_PORT:-45694}
export STACK_PG_EXTRA_CONF="track_commit_timestamp = on
buildlog.aggregate_delay = '1d'
buildlog.aggregate_force_after = '1000d'
buildlog.maintenance_interval = 0
buildlog.archive_workers = 0
buildlog.drain_workers = 2
buildlog.amqp_queues = 'bench.sse'
buildlog.http_listen = '127.0.0.1:$HTTP_PORT'
buildlog.http_max_connections = $((IDLE + WATCHERS + 100))
buildlog.http_max_connections_per_client = 0
buildlog.http_rate_limit = 0
shared_buffers = '256MB'
max_wal_size = '4GB'"
. bench/stack_up.sh
sql -c "select buildlog.declare_queues('bench.sse')" >/dev/null
sql -c 'select buildlog.restart_workers()' >/dev/null
until curl -sf "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null; do sleep 0.2; done
HTTP_PID=$(sql -c 'select pid from buildlog.http_stats')
# sse_watch needs one descriptor per connection
need=$((IDLE + 100))
if [ "$(ulimit -n)" -lt "$need" ]; then ulimit -n "$need" 2>/dev/null || say "ulimit -n $need refused (hard limit $(ulimit -Hn)): sse_watch will say so"; fi

# mem: "VmRSS kB RssAnon kB" of the HTTP worker
mem() { awk '/^VmRSS/ {r = $2} /^RssAnon/ {a = $2} END {print r, a}' "/proc/$HTTP_PID/status"; }
# sched: "ns on a CPU, ns runnable but waiting for one" of the HTTP worker (/proc/PID/schedstat)
sched() { awk '{print $1, $2}' "/proc/$HTTP_PID/schedstat"; }
# cpu_ticks: utime + stime of the HTTP worker, in clock ticks
cpu_ticks() { awk '{print $14 + $15}' "/proc/$HTTP_PID/stat"; }

{
  echo "buildlog live-log (SSE) benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load at start $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "HTTP worker pid $HTTP_PID, $(grep 'Max open files' "/proc/$HTTP_PID/limits" | tr -s ' ')"
} >"$RESULTS"

# ------------------------------------------------------------------ live latency
live_case() {
say "latency: $WATCHERS watchers over $JOBS jobs, then $((PARTS * JOBS)) timestamped parts at $RATE/s"
rm -f "$STACK_DIR/ready"
tools/bin/sse_watch --port "$HTTP_PORT" --clients "$WATCHERS" --jobs "$JOBS" --first-job 1 \
  --expect $((PARTS + 1)) --timeout $((SECONDS_LIVE * 4 + 60)) --ready-file "$STACK_DIR/ready" \
  >"$STACK_DIR/watch.out" 2>"$STACK_DIR/watch.err" &
watch_pid=$!
until [ -e "$STACK_DIR/ready" ]; do kill -0 $watch_pid 2>/dev/null || { cat "$STACK_DIR/watch.err"; exit 1; }; sleep 0.1; done
t0=$(cpu_ticks); s0=$(date +%s.%N); q0=$(sched)
tools/bin/publish --url "$BUILDLOG_AMQP_URL" --queue bench.sse --jobs "$JOBS" --parts "$PARTS" --size 200 \
  --timestamp --rate "$RATE" --transient >/dev/null
wait $watch_pid || say "sse_watch reported a broken promise (see below)"
t1=$(cpu_ticks); s1=$(date +%s.%N); q1=$(sched)
live_wait=$(echo "$q0 $q1" | awk -v s="$s0" -v e="$s1" '{printf "%.0f", ($4 - $2) / 1e9 / (e - s) * 100}')
live_cpu=$(awk -v a="$t0" -v b="$t1" -v s="$s0" -v e="$s1" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.0f", (b - a) / hz / (e - s) * 100}')
say "latency: $(cat "$STACK_DIR/watch.out" | tr '\n' ' ')"
# the drain's share: publish call -> commit (track_commit_timestamp)
commit_lat=$(sql -F ' ' -c "select 'p50', round(percentile_cont(0.5) within group (order by ms)::numeric, 1),
                        'p99', round(percentile_cont(0.99) within group (order by ms)::numeric, 1),
                        'max', round(max(ms)::numeric, 1)
                   from (select extract(epoch from pg_xact_commit_timestamp(xmin)) * 1000
                                - substr(content, 2, 16)::bigint / 1000.0 as ms
                           from buildlog.log_parts where not final) s")
{
  echo
  echo "live latency: $WATCHERS watchers over $JOBS jobs, $((PARTS * JOBS)) parts of 200 B published at $RATE/s"
  echo "(publish call -> event received by the watcher; through RabbitMQ, 2 drain workers, the HTTP worker)"
  cat "$STACK_DIR/watch.out"
  echo "of which publish call -> commit of the part (ms): $commit_lat"
  echo "HTTP worker CPU while live: ${live_cpu}% of one core; runnable but waiting for a CPU: ${live_wait}% of the time"
  echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} >>"$RESULTS"
}

# ------------------------------------------------------------------ fan-out
fanout_case() {
say "fan-out: $IDLE idle SSE connections for ${IDLE_S} s"
mem_before=$(mem)
rm -f "$STACK_DIR/ready"
tools/bin/sse_watch --port "$HTTP_PORT" --clients "$IDLE" --jobs "$IDLE" --first-job 1000001 \
  --hold "$IDLE_S" --timeout $((IDLE_S + 120)) --connect-rate 2000 --ready-file "$STACK_DIR/ready" \
  >"$STACK_DIR/idle.out" 2>"$STACK_DIR/idle.err" &
idle_pid=$!
until [ -e "$STACK_DIR/ready" ]; do kill -0 $idle_pid 2>/dev/null || { cat "$STACK_DIR/idle.err"; exit 1; }; sleep 0.2; done
sleep 2 # let the last requests settle before sampling
streams=$(sql -c 'select streams from buildlog.http_stats')
mem_with=$(mem)
t0=$(cpu_ticks); s0=$(date +%s.%N)
sleep $((IDLE_S - 4))
t1=$(cpu_ticks); s1=$(date +%s.%N)
mem_after=$(mem)
wait $idle_pid || say "sse_watch (idle) reported a problem: $(cat "$STACK_DIR/idle.err")"
idle_cpu=$(awk -v a="$t0" -v b="$t1" -v s="$s0" -v e="$s1" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", (b - a) / hz / (e - s) * 100}')

{
  echo
  echo "fan-out: $streams idle event streams held for ${IDLE_S} s"
  echo "HTTP worker VmRSS/RssAnon kB: before $mem_before, with the streams $mem_with, at the end $mem_after"
  echo "HTTP worker CPU while idle (heartbeats every 15 s): ${idle_cpu}% of one core"
  cat "$STACK_DIR/idle.out"
} >>"$RESULTS"
}

[ "$SECONDS_LIVE" -gt 0 ] && live_case
[ "$IDLE" -gt 0 ] && fanout_case
echo
cat "$RESULTS"
if [ -n "${BENCH_OUT:-}" ]; then cp "$RESULTS" "$BENCH_OUT"; say "results written to $BENCH_OUT"; fi
