#!/usr/bin/env bash
# travis-worker's HTTP sink benchmark, run by `script/bench travis`; see bench/README.md.
#
# Starts its own PostgreSQL (with the HTTP worker) in a temporary folder, then
# sends the same parts two ways with bench/travis_sink.pl, BENCH_CLIENTS
# processes one request after the other each: (1) as travis-worker's sink, one
# POST /log-parts/multi per batch mixing BENCH_JOBS jobs x BENCH_PARTS parts,
# each part carrying its job's token; (2) as buildlog's own batch route, one
# POST /jobs/{id}/parts per job of the batch (the reference).  Rows are counted
# after each case; the figure is the ratio of the two rates in the same run.
# Knobs: BENCH_CLIENTS (8), BENCH_BATCHES (50), BENCH_JOBS (10), BENCH_PARTS
# (10), BENCH_SIZE (200 B), BENCH_RUNS (2: the best of each), BENCH_OUT=FILE,
# BENCH_HTTP_PORT (8476); the stack's ports from STACK_* when set.
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS=${BENCH_CLIENTS:-8}
BATCHES=${BENCH_BATCHES:-50}
JOBS=${BENCH_JOBS:-10}
PARTS=${BENCH_PARTS:-10}
SIZE=${BENCH_SIZE:-200}
RUNS=${BENCH_RUNS:-2}
HTTP_PORT=${BENCH_HTTP_PORT:-8476}
TOTAL=$((CLIENTS * BATCHES * JOBS * PARTS))

say() { echo "bench: $*"; }
export STACK_DIR; STACK_DIR=$(mktemp -d /tmp/buildlog-bench.XXXXXX)
chmod 755 "$STACK_DIR"
export STACK_PG_PORT=${BENCH_PG_PORT:-${STACK_PG_PORT:-54356}} STACK_AMQP_PORT=${STACK_AMQP_PORT:-56758} \
       STACK_RABBITMQ_DIST_PORT=${STACK_RABBITMQ_DIST_PORT:-56759} STACK_RABBITMQ_MGMT_PORT=${STACK_RABBITMQ_MGMT_PORT:-15758} \
       STACK_EPMD_PORT=${STACK_EPMD_PORT:-56760} STACK_S3_PORT=${STACK_S3_PORT:-45758}
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$STACK_DIR/token.key"
chmod 644 "$STACK_DIR/token.key"
export STACK_PG_EXTRA_CONF="buildlog.aggregate_delay = '1d'
buildlog.aggregate_force_after = '1000d'
buildlog.maintenance_interval = 0
buildlog.archive_workers = 0
buildlog.drain_workers = 0
buildlog.http_listen = '127.0.0.1:$HTTP_PORT'
buildlog.http_token_key_file = '$STACK_DIR/token.key'
buildlog.http_max_connections_per_client = 0
buildlog.http_rate_limit = 0
shared_buffers = '512MB'
max_wal_size = '4GB'"
. bench/stack_up.sh
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null && break; sleep 0.1; done
rows() { sql -c "select count(*) from buildlog.log_parts"; }
reset_tables() { sql -c 'truncate buildlog.log_parts, buildlog.logs, buildlog.rejected_parts' -c 'checkpoint'; }

# best MODE: the best rate (parts/s) of RUNS runs, each on fresh jobs and
# tables; checks every part is stored
best() {
  local mode=$1 r out rate best=0 first
  for r in $(seq "$RUNS"); do
    reset_tables
    first=$((r * 100000))
    sql -F ' ' -c "select j, buildlog.issue_token(j, 'write', '2 hours') from generate_series($first, $first + $CLIENTS * $JOBS - 1) j" >"$STACK_DIR/tokens"
    out=$(perl bench/travis_sink.pl --port "$HTTP_PORT" --tokens "$STACK_DIR/tokens" --mode "$mode" --clients "$CLIENTS" \
          --batches "$BATCHES" --jobs "$JOBS" --parts "$PARTS" --size "$SIZE")
    [ "$(rows)" -eq "$TOTAL" ] || say "WARNING: $mode run $r stored $(rows) rows, not $TOTAL" >&2
    rate=$(awk '{printf "%.0f", $2 / $4}' <<<"$out")
    say "$mode run $r: $out ($rate parts/s), $(rows) rows" >&2
    [ "$rate" -gt "$best" ] && best=$rate
  done
  echo "$best"
}

{
  echo "buildlog travis sink benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load at start $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "settings: fsync on, synchronous_commit on, http_flush_ms $(sql -c 'show buildlog.http_flush_ms'), http_readers $(sql -c 'show buildlog.http_readers')"
} >"$RESULTS"
parts_rate=$(best parts | tail -1)
sink_rate=$(best sink | tail -1)
{
  echo
  printf "%-62s %10s %8s\n" "$SIZE B parts, $CLIENTS clients, batches of $JOBS jobs x $PARTS parts" "parts/s" "/ ref"
  printf "%-62s %10s %8.2f\n" "POST /jobs/{id}/parts, one request per job (reference)" "$parts_rate" 1
  printf "%-62s %10s %8.2f\n" "POST /log-parts/multi, one request per batch (travis sink)" "$sink_rate" "$(awk -v a="$sink_rate" -v b="$parts_rate" 'BEGIN {print a / b}')"
  echo "load at end $(cut -d' ' -f1-3 /proc/loadavg)"
} >>"$RESULTS"
cat "$RESULTS"
[ -z "${BENCH_OUT:-}" ] || cp "$RESULTS" "$BENCH_OUT"
