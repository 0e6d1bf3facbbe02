#!/usr/bin/env bash
# HTTP ingest benchmark, run by `script/bench http`; see bench/README.md.
#
# Starts its own PostgreSQL (with the HTTP worker) + RabbitMQ stack in a
# temporary folder, then measures in one run, all with 200 B parts:
#   1. the AMQP drain: a pre-filled durable queue drained by the drain workers;
#   2. write_parts over libpq: pgbench, BENCH_CLIENTS connections, each
#      transaction one write_parts() call of BENCH_PARTS parts of one job;
#   3. batch POSTs: tools/bin/http_load, BENCH_CLIENTS runners, each POSTing
#      NDJSON batches of BENCH_PARTS parts to its job, one after the other;
#   4. streaming ingest: BENCH_STREAMS concurrent POST /jobs/{id}/stream, each
#      BENCH_STREAM_BYTES of log lines as fast as the server reads them.
# Every case stores the same number of parts (BENCH_TOTAL_PARTS); the rows are
# counted after each case.  Knobs: BENCH_CLIENTS (50), BENCH_PARTS (20),
# BENCH_TOTAL_PARTS (100000), BENCH_STREAMS (200), BENCH_STREAM_BYTES (524288),
# BENCH_WORKERS (2 drain workers), BENCH_OUT=FILE, BENCH_HTTP_PORT (8475); the
# stack's ports from STACK_* when set (else PostgreSQL 54355, RabbitMQ 56755).
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS=${BENCH_CLIENTS:-50}
PARTS=${BENCH_PARTS:-20}
TOTAL=${BENCH_TOTAL_PARTS:-100000}
STREAMS=${BENCH_STREAMS:-200}
STREAM_BYTES=${BENCH_STREAM_BYTES:-524288}
WORKERS=${BENCH_WORKERS:-2}
HTTP_PORT=${BENCH_HTTP_PORT:-8475}
REQUESTS=$((TOTAL / CLIENTS / PARTS))
TOTAL=$((REQUESTS * CLIENTS * PARTS))

say() { echo "bench: $*"; }
export STACK_DIR; STACK_DIR=$(mktemp -d /tmp/buildlog-bench.XXXXXX)
chmod 755 "$STACK_DIR"
# the caller's STACK_* ports when set (a shared machine), else these
export STACK_PG_PORT=${BENCH_PG_PORT:-${STACK_PG_PORT:-54355}} STACK_AMQP_PORT=${STACK_AMQP_PORT:-56755} \
       STACK_RABBITMQ_DIST_PORT=${STACK_RABBITMQ_DIST_PORT:-56756} STACK_RABBITMQ_MGMT_PORT=${STACK_RABBITMQ_MGMT_PORT:-15757} \
       STACK_EPMD_PORT=${STACK_EPMD_PORT:-56757} STACK_S3_PORT=${STACK_S3_PORT:-45757}
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$STACK_DIR/token.key"
chmod 644 "$STACK_DIR/token.key"
export STACK_PG_EXTRA_CONF="buildlog.aggregate_delay = '1d'
buildlog.aggregate_force_after = '1000d'
buildlog.maintenance_interval = 0
buildlog.archive_workers = 0
buildlog.drain_workers = $WORKERS
buildlog.amqp_queues = 'bench.idle'
buildlog.http_listen = '127.0.0.1:$HTTP_PORT'
buildlog.http_token_key_file = '$STACK_DIR/token.key'
buildlog.http_max_connections = $((STREAMS + CLIENTS + 50))
buildlog.http_max_connections_per_client = 0
buildlog.http_rate_limit = 0
shared_buffers = '512MB'
max_wal_size = '4GB'"
. bench/stack_up.sh
sql -c "select buildlog.declare_queues('bench.idle')" -c "select buildlog.declare_queues('bench.drain')" >/dev/null
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null && break; sleep 0.1; done
rows() { sql -c "select count(*) from buildlog.log_parts"; }
reset_tables() { sql -c 'truncate buildlog.log_parts, buildlog.logs' -c 'checkpoint'; }
metric() { curl -s "http://127.0.0.1:$HTTP_PORT/metrics" | awk -v m="buildlog_http_$1" '$1 == m {print $2}'; }

{
  echo "buildlog HTTP ingest benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load at start $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "settings: fsync on, synchronous_commit on, $WORKERS drain workers (batch $(sql -c 'show buildlog.batch_size')), http_flush_ms $(sql -c 'show buildlog.http_flush_ms')"
} >"$RESULTS"

# ------------------------------------------------------------------ 1. drain
say "drain: publishing $TOTAL parts of 200 B"
reset_tables
tools/bin/publish --url "$BUILDLOG_AMQP_URL" --queue bench.drain --jobs "$CLIENTS" --parts $((TOTAL / CLIENTS - 1)) --size 200 >/dev/null
drain_secs=$(drain_seconds "$TOTAL")
drain_rows=$(rows)
say "drain: $drain_rows rows in $drain_secs s"
sql -c "alter system set buildlog.amqp_queues = 'bench.idle'" -c 'select pg_reload_conf()' -c 'select buildlog.restart_workers()' >/dev/null

# ------------------------------------------------------------------ 2. write_parts
say "write_parts: pgbench, $CLIENTS clients x $REQUESTS transactions x $PARTS parts"
reset_tables
cat >"$STACK_DIR/write.sql" <<EOF
\\set job random(1, $CLIENTS)
\\set base random(0, 100000000)
select buildlog.write_parts(array_fill(:job::bigint, array[$PARTS]),
  (select array_agg(n) from generate_series(:base, :base + $((PARTS - 1))) n),
  array_fill(repeat('abcdefghij', 20), array[$PARTS]), array_fill(false, array[$PARTS]));
EOF
wp_tps=$(pgbench -n -c "$CLIENTS" -j 2 -t "$REQUESTS" -f "$STACK_DIR/write.sql" 2>&1 |
         awk '/^tps = .*without initial connection time/ {print $3}')
wp_rows=$(rows)
say "write_parts: $wp_tps transactions/s, $wp_rows rows"

# load FIRST_JOB CLIENTS ARGS...: tokens for the jobs, then http_load; sets
# load_out (its line) and load_commits / load_writes (the group commits' deltas)
load() {
  local first=$1 n=$2 c0 w0; shift 2
  sql -F ' ' -c "select j, buildlog.issue_token(j, 'write', '2 hours') from generate_series($first, $first + $n - 1) j" >"$STACK_DIR/tokens"
  c0=$(metric ingest_commits_total); w0=$(metric ingest_writes_total)
  load_out=$(tools/bin/http_load --port "$HTTP_PORT" --tokens "$STACK_DIR/tokens" --clients "$n" "$@")
  load_commits=$(( $(metric ingest_commits_total) - c0 )); load_writes=$(( $(metric ingest_writes_total) - w0 ))
}

# ------------------------------------------------------------------ 3. batch POSTs
say "batch POSTs: $CLIENTS runners x $REQUESTS requests x $PARTS parts"
reset_tables
load 1 "$CLIENTS" --mode batch --requests "$REQUESTS" --parts "$PARTS" --size 200
batch_out=$load_out c1=$load_commits w1=$load_writes c0=0 w0=0
batch_rows=$(rows)
say "batch POSTs: $batch_out; $batch_rows rows; $c1 commits for $w1 requests"

# ------------------------------------------------------------------ 4. streams
say "streams: $STREAMS concurrent streams x $STREAM_BYTES bytes"
reset_tables
load 10001 "$STREAMS" --mode stream --bytes "$STREAM_BYTES" --chunk 4096
stream_out=$load_out s1=$load_commits sw1=$load_writes s0=0 sw0=0
stream_check=$(sql -F ' ' -c "select count(*), sum(octet_length(content)), count(*) filter (where final), count(distinct job_id) from buildlog.log_parts")
say "streams: $stream_out; rows bytes finals jobs: $stream_check; $((s1 - s0)) commits for $((sw1 - sw0)) flushes"

# ------------------------------------------------------------------ report
{
  echo
  awk -v dn="$drain_rows" -v ds="$drain_secs" -v wt="$wp_tps" -v p="$PARTS" -v bo="$batch_out" -v br="$batch_rows" \
      -v c="$((c1 - c0))" -v w="$((w1 - w0))" -v cl="$CLIENTS" 'BEGIN {
    split(bo, b, " "); bs = b[9]; d = dn / ds; wp = wt * p; h = br / bs;
    printf "%-44s %12s %8s\n", "200 B parts, " cl " concurrent clients", "parts/s", "/ drain";
    printf "%-44s %12.0f %8.2f\n", "AMQP drain (pre-filled queue)", d, 1;
    printf "%-44s %12.0f %8.2f\n", "write_parts over libpq (" p " parts a call)", wp, wp / d;
    printf "%-44s %12.0f %8.2f\n", "batch POSTs (" p " parts each)", h, h / d;
    printf "group commit: %d transactions for %d requests (%.1f requests each)\n", c, w, w / (c ? c : 1) }'
  awk -v so="$stream_out" -v chk="$stream_check" -v c="$((s1 - s0))" -v w="$((sw1 - sw0))" 'BEGIN {
    split(so, s, " "); split(chk, k, " "); secs = s[9];
    printf "streams: %d concurrent, %.0f MB sent in %.2f s: %.1f MB/s, %.0f parts/s (%d parts, %d bytes stored, %d final, %d jobs); %d transactions for %d flushes\n",
      s[1], s[7] / 1e6, secs, s[7] / 1e6 / secs, k[1] / secs, k[1], k[2], k[3], k[4], c, w }'
} >>"$RESULTS"
[ "$drain_rows" -eq "$TOTAL" ] && [ "$wp_rows" -eq "$TOTAL" ] && [ "$batch_rows" -eq "$TOTAL" ] || say "WARNING: row counts differ from $TOTAL"
[ "$(echo "$stream_check" | cut -d' ' -f2)" -eq $((STREAMS * STREAM_BYTES)) ] || say "WARNING: stored stream bytes differ from the $((STREAMS * STREAM_BYTES)) sent"
cat "$RESULTS"
[ -z "${BENCH_OUT:-}" ] || cp "$RESULTS" "$BENCH_OUT"
