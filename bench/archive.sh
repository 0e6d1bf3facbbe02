#!/usr/bin/env bash
# Archive and scheduler benchmark, run by `script/bench archive`; see bench/README.md.
#
# Starts its own PostgreSQL + s3rver stack in a temporary folder on its own ports
# (never the development stack; no drain workers, one archive worker), then measures
# in one run, each case BENCH_RUNS times (default 2; best run and every run shown):
#   1. archive throughput (MB/s) of large aggregated logs, against curl's own PUT of
#      the same bytes to the same s3rver (in between); once with archive_compression gzip;
#   2. logs/s of small logs through upload, then through verify + purge, against one
#      curl process doing the same PUTs and HEADs;
#   3. the archive worker's memory (RssAnon, RssShmem sampled; VmHWM) during case 1;
#   4. the scheduler's aggregation rate for jobs made due all at once.
# Knobs: BENCH_ARCHIVE_LOGS (default 20) x BENCH_ARCHIVE_MB (10) large logs,
# BENCH_ARCHIVE_SMALL (2000) 10 KB logs, BENCH_AGGREGATE_JOBS (1000) x 1,000 parts
# of 200 B, BENCH_RUNS (2), BENCH_OUT=FILE.
set -euo pipefail
cd "$(dirname "$0")/.."

BIG_N=${BENCH_ARCHIVE_LOGS:-20}
BIG_MB=${BENCH_ARCHIVE_MB:-10}
SMALL_N=${BENCH_ARCHIVE_SMALL:-2000}
RUNS=${BENCH_RUNS:-2}
AGG_JOBS=${BENCH_AGGREGATE_JOBS:-1000}
AGG_PARTS=1000 AGG_SIZE=200 SMALL_SIZE=10000 TIMEOUT_S=300

say() { echo "bench: $*"; }
export STACK_DIR; STACK_DIR=$(mktemp -d /tmp/buildlog-bench.XXXXXX)
chmod 755 "$STACK_DIR"
export STACK_PG_PORT=54375 STACK_S3_PORT=45695 STACK_AMQP_PORT=56775 STACK_RABBITMQ_DIST_PORT=56776 \
       STACK_RABBITMQ_MGMT_PORT=15699 STACK_EPMD_PORT=56777
S3=http://127.0.0.1:$STACK_S3_PORT
# archiving starts off (empty endpoint) and nothing is due until the bench says so
export STACK_PG_EXTRA_CONF="buildlog.drain_workers = 0
buildlog.archive_workers = 1
buildlog.s3_endpoint = ''
buildlog.purge_delay = '1h'
buildlog.aggregate_delay = '1h'
buildlog.maintenance_interval = 0
shared_buffers = '512MB'
max_wal_size = '4GB'"
RESULTS=$STACK_DIR/results
cleanup() { script/stack stop pg s3 || true; rm -rf "$STACK_DIR"; }
trap cleanup EXIT

say "building bench/write_bench, installing the extension"
cc -O2 -Wall -I"$(pg_config --includedir)" -o "$STACK_DIR/write_bench" bench/write_bench.c \
  -L"$(pg_config --libdir)" -lpq
make -s -j2 >/dev/null
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO make -s install >/dev/null
script/stack start pg s3
eval "$(script/stack env)"
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
sql -c 'create schema partman' -c 'create extension pg_partman schema partman' -c 'create extension buildlog'
say "waiting for the archive worker and the scheduler (restarted 10 s after a start without database buildlog)"
sql >/dev/null <<'EOF'
do $$ begin
  for i in 1..3000 loop
    exit when exists (select from buildlog.archive_worker_stats()) and exists (select from buildlog.scheduler_worker_stats());
    perform pg_sleep(0.01);
  end loop;
end $$;
select 1 / count(*)::int from buildlog.archive_worker_stats();  -- division by zero: no worker
EOF

# settle: vacuum and checkpoint, so the timed part writes no backlog of dirty buffers
settle() { sql -c 'vacuum analyze buildlog.logs' -c checkpoint; }
# timed SETTINGS COUNTER N [END]: ALTER SYSTEM SETTINGS, reload (the clock starts), wait
# until the counter expression rose by N; prints "seconds|bytes": seconds end at END
# (default: when the poll saw it), bytes is the rise of the archive worker's stored bytes
timed() {
  local end=${4:-clock_timestamp()}
  sql <<EOF
\\o /dev/null
create temp table t0 as select clock_timestamp() as t, ($2) as c, (select bytes from buildlog.archive_worker_stats()) as b;
$1
select pg_reload_conf();
do \$\$ begin
  loop
    exit when ($2) - (select c from t0) >= $3;
    if clock_timestamp() > (select t from t0) + interval '$TIMEOUT_S s' then
      raise exception 'timed out after $TIMEOUT_S s: % of $3', ($2) - (select c from t0);
    end if;
    perform pg_sleep(0.01);
  end loop;
end \$\$;
\\o
select round(extract(epoch from ($end) - t)::numeric, 3), (select bytes from buildlog.archive_worker_stats()) - b from t0;
EOF
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}'; }
ARCHIVED='(select archived from buildlog.archive_worker_stats())'
LAST_ARCHIVED='(select last_archived from buildlog.archive_worker_stats())'
# archiving off; the pause lets the worker take the reload before the next writes
archive_off() { sql -c "alter system set buildlog.s3_endpoint = ''" -c 'select pg_reload_conf()' -c 'select pg_sleep(1)' >/dev/null; }
ON="alter system set buildlog.s3_endpoint = '$S3';"

{
  echo "buildlog archive benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load at start $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "settings: 1 archive worker, 0 drain workers, s3rver $(node -p 'require("./.tools/node_modules/s3rver/package.json").version' 2>/dev/null || echo '?') on 127.0.0.1, $(sql -c "select string_agg(name || '=' || current_setting(name), ', ' order by name) from pg_settings where name in ('shared_buffers', 'fsync', 'synchronous_commit')")"
} >"$RESULTS"

# ------------------------------------------------------------------ large logs
# curl_puts NAME [CURL ARGS]: PUT the exported files one by one (one curl each); prints seconds
curl_puts() {
  local i t0 sha
  t0=$(now)
  for ((i = 1; i <= BIG_N; i++)); do
    if [ "$1" = signed ]; then sha=$(sha256sum "$STACK_DIR/files/$i" | cut -d' ' -f1); else sha=UNSIGNED-PAYLOAD; fi
    curl -sS -f -o /dev/null --aws-sigv4 aws:amz:us-east-1:s3 --user S3RVER:S3RVER \
      -H "x-amz-content-sha256: $sha" -T "$STACK_DIR/files/$i" "$S3/buildlog/curl/$1/$i"
  done
  since "$t0"
}
unarchive() { # forget the uploads, so the same logs are archived again
  sql -c "update buildlog.logs set archived_at = null, archive_size = null, archive_sha256 = null, archive_etag = null" >/dev/null
  settle
}
big_case() {
  local parts=$BIG_MB r secs pid hwm0 hwm1 rss i run sampler
  say "large logs: writing $BIG_N logs x $BIG_MB MB (write_parts, 1 MB parts + final), aggregating each"
  sql <<EOF
create table bench_chunk as  -- 1 MB+ of CI-like lines; each part gets its own first line
  select string_agg(format(E'\\x1b[32m%s\\x1b[0m step %s: %s %s\\r\\n', lpad(i::text, 6, '0'), i % 97,
                           md5(i::text), repeat('=', i % 41)), '') as c
    from generate_series(1, 14000) i;
do \$\$ begin
  for j in 1..$BIG_N loop
    perform buildlog.write_parts(array_fill(j::bigint, array[$parts + 1]),
                                 array(select generate_series(0, $parts)),
                                 array(select left(format(E'job %s part %s\\r\\n', j, n) || c, 1000000)
                                         from bench_chunk, generate_series(0, $parts - 1) n order by n) || ''::text,
                                 array_fill(false, array[$parts]) || true);
    perform buildlog.aggregate(j);
    commit;
  end loop;
end \$\$;
drop table bench_chunk;
EOF
  r=$(sql -c "select count(*), sum(octet_length(content)) from buildlog.logs where aggregated_at is not null")
  [ "$r" = "$BIG_N|$((BIG_N * BIG_MB * 1000000))" ] || { say "expected $BIG_N logs of $BIG_MB MB, found $r"; exit 1; }
  say "large logs: exporting them to files for curl"
  mkdir "$STACK_DIR/files"
  for ((i = 1; i <= BIG_N; i++)); do
    sql -c "select content from buildlog.logs where job_id = $i" -o "$STACK_DIR/files/$i"
    truncate -s -1 "$STACK_DIR/files/$i"   # psql's newline
  done
  [ "$(cat "$STACK_DIR"/files/* | wc -c)" -eq $((BIG_N * BIG_MB * 1000000)) ] || { say "exported files differ in size"; exit 1; }
  settle

  # memory: sample the archive worker's RssAnon every 50 ms while it uploads
  pid=$(sql -c 'select pid from buildlog.archive_worker_stats()')
  hwm0=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
  touch "$STACK_DIR/sampling"
  while [ -e "$STACK_DIR/sampling" ]; do awk '/^RssAnon/ {a = $2} /^RssShmem/ {s = $2} END {print a, s}' "/proc/$pid/status"; sleep 0.05; done >"$STACK_DIR/rss" &
  sampler=$!

  for ((run = 1; run <= RUNS; run++)); do
    [ "$run" -eq 1 ] || unarchive
    r=$(timed "$ON" "$ARCHIVED" "$BIG_N" "$LAST_ARCHIVED"); secs=${r%%|*}
    archive_off
    echo "none $secs" >>"$STACK_DIR/big"
    echo "curl $(curl_puts unsigned)" >>"$STACK_DIR/big"
    echo "curl_sha256 $(curl_puts signed)" >>"$STACK_DIR/big"
    say "large logs, run $run (seconds): $(tail -n3 "$STACK_DIR/big" | xargs)"
  done

  unarchive
  say "large logs: archiving again with archive_compression = gzip"
  r=$(timed "$ON alter system set buildlog.archive_compression = gzip;" "$ARCHIVED" "$BIG_N" "$LAST_ARCHIVED")
  secs=${r%%|*} STORED_GZIP=${r#*|}
  say "large logs: gzip: $secs s, $STORED_GZIP bytes stored"
  echo "gzip $secs" >>"$STACK_DIR/big"
  rm "$STACK_DIR/sampling"; wait "$sampler"
  hwm1=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
  rss=$(awk '$1 > a {a = $1} $2 > s {s = $2} END {print "RssAnon peak " a " kB, RssShmem peak " s " kB (" NR " samples, 50 ms apart)"}' "$STACK_DIR/rss")
  echo "archive worker (pid $pid) over the large-log uploads above: $rss; VmHWM $hwm0 -> $hwm1 kB (VmHWM counts the shared buffers it touched)" >"$STACK_DIR/memory"
  archive_off
  sql -c "alter system reset buildlog.archive_compression" -c 'select pg_reload_conf()' -c 'truncate buildlog.log_parts, buildlog.logs' >/dev/null
  rm -rf "$STACK_DIR/files"
}

# ------------------------------------------------------------------ small logs
small_case() {
  local n=$SMALL_N secs r i t0 run
  for ((i = 1; i <= n; i++)); do
    printf 'upload-file = "%s"\nurl = "%s"\noutput = /dev/null\n' "$STACK_DIR/small.txt" "$S3/buildlog/curl/small/$i"
  done >"$STACK_DIR/put.cfg"
  sed '/^upload-file/d' "$STACK_DIR/put.cfg" >"$STACK_DIR/head.cfg"
  for ((run = 1; run <= RUNS; run++)); do
    say "small logs, run $run: writing $n logs x $SMALL_SIZE B (5 parts + final), aggregating each"
    sql <<EOF
select buildlog.write_parts(array_agg(j::bigint), array_agg(p), array_agg(c), array_agg(p = 5))
  from (select j, p, case when p < 5 then left(repeat(format(E'job %s part %s: %s\\r\\n', j, p, md5((j * 10 + p)::text)), 60), $SMALL_SIZE / 5) else '' end as c
          from generate_series(100001, 100000 + $n) j, generate_series(0, 5) p) s \\g /dev/null
do \$\$ begin
  for j in 100001..100000 + $n loop perform buildlog.aggregate(j); commit; end loop;
end \$\$;
EOF
    r=$(sql -c "select count(*), sum(octet_length(content)) from buildlog.logs where aggregated_at is not null")
    [ "$r" = "$n|$((n * SMALL_SIZE))" ] || { say "expected $n logs of $SMALL_SIZE B, found $r"; exit 1; }
    sql -c 'select content from buildlog.logs where job_id = 100001' -o "$STACK_DIR/small.txt"
    truncate -s -1 "$STACK_DIR/small.txt"
    settle
    r=$(timed "$ON" "$ARCHIVED" "$n" "$LAST_ARCHIVED"); echo "archive ${r%%|*}" >>"$STACK_DIR/small"
    r=$(timed "alter system set buildlog.purge_delay = 0;" '(select purged from buildlog.archive_worker_stats())' "$n")
    echo "verify_purge ${r%%|*}" >>"$STACK_DIR/small"
    r=$(sql -c 'select count(*) from buildlog.logs where purged_at is not null and content is null')
    [ "$r" -eq "$n" ] || { say "expected $n purged logs, found $r"; exit 1; }
    archive_off
    sql -c "alter system set buildlog.purge_delay = '1h'" -c 'select pg_reload_conf()' -c 'truncate buildlog.log_parts, buildlog.logs' >/dev/null
    # the same PUTs and HEADs from one curl process (one connection, keep-alive)
    t0=$(now)
    curl -sS -f --aws-sigv4 aws:amz:us-east-1:s3 --user S3RVER:S3RVER -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -K "$STACK_DIR/put.cfg"
    echo "curl_put $(since "$t0")" >>"$STACK_DIR/small"
    t0=$(now)
    curl -sS -f -I --aws-sigv4 aws:amz:us-east-1:s3 --user S3RVER:S3RVER -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -K "$STACK_DIR/head.cfg"
    echo "curl_head $(since "$t0")" >>"$STACK_DIR/small"
    say "small logs, run $run (seconds): $(tail -n4 "$STACK_DIR/small" | xargs)"
  done
}

# ------------------------------------------------------------------ scheduler
scheduler_case() {
  local secs r run
  for ((run = 1; run <= RUNS; run++)); do
    say "scheduler, run $run: loading $AGG_JOBS jobs x $AGG_PARTS parts x $AGG_SIZE B (binary COPY, last part final; aggregate_delay 1h)"
    sql -c "insert into buildlog.logs (job_id) select generate_series(1, $AGG_JOBS)"
    "$STACK_DIR/write_bench" load "$AGG_JOBS" "$AGG_PARTS" "$AGG_SIZE" >/dev/null
    sql -c 'vacuum analyze buildlog.log_parts, buildlog.logs' -c checkpoint
    r=$(timed "alter system set buildlog.aggregate_delay = 0;" '(select aggregated from buildlog.scheduler_worker_stats())' "$AGG_JOBS")
    secs=${r%%|*}
    r=$(sql -c "select (select count(*) from buildlog.log_parts) || '|' || count(*) || '|' || sum(octet_length(content)) from buildlog.logs where aggregated_at is not null")
    [ "$r" = "0|$AGG_JOBS|$((AGG_JOBS * AGG_PARTS * AGG_SIZE))" ] || { say "expected no parts left and $AGG_JOBS logs, found $r"; exit 1; }
    say "scheduler, run $run: $AGG_JOBS jobs aggregated in $secs s"
    echo "scheduler $secs" >>"$STACK_DIR/scheduler"
    sql -c "alter system set buildlog.aggregate_delay = '1h'" -c 'select pg_reload_conf()' -c 'truncate buildlog.log_parts, buildlog.logs' >/dev/null
  done
}

big_case
small_case
scheduler_case

# table FILE KEY:LABEL:AMOUNT... (~ for spaces in LABEL): best of the runs and every run, per key
table() {
  awk -v spec="${*:2}" '{t[$1] = t[$1] (t[$1] == "" ? "" : " ") $2; if (!($1 in b) || $2 < b[$1]) b[$1] = $2}
    END { n = split(spec, rows, " ")
          for (i = 1; i <= n; i++) { split(rows[i], f, ":"); k = f[1]; gsub("~", " ", f[2])
            m = split(t[k], ts, " "); all = ""
            for (j = 1; j <= m; j++) all = all (j > 1 ? " / " : "") sprintf("%.1f", f[3] / ts[j])
            printf "%-38s %8.3f %9.1f   %s\n", f[2], b[k], f[3] / b[k], all } }' "$1"
}
{
  echo
  echo "archive throughput: $BIG_N logs x $BIG_MB MB = $((BIG_N * BIG_MB)) MB, 1 archive worker, purge_delay 1h; clock: reload with"
  echo "s3_endpoint set -> last upload committed (logs aggregated before); curl: one process per file, in a row"
  printf '%-38s %8s %9s   %s\n' case seconds "MB/s" "MB/s of each run"
  table "$STACK_DIR/big" none:buildlog~archive,~compression~none:$((BIG_N * BIG_MB)) \
    curl:curl~-T,~UNSIGNED-PAYLOAD:$((BIG_N * BIG_MB)) curl_sha256:sha256sum~+~curl~-T,~signed~payload:$((BIG_N * BIG_MB)) \
    gzip:buildlog~archive,~gzip~\(log~MB/s\):$((BIG_N * BIG_MB))
  awk '{if (!($1 in b) || $2 < b[$1]) b[$1] = $2} END {printf "buildlog none / curl UNSIGNED-PAYLOAD (best runs): %.2f; gzip stored %.1f MB of %d\n", b["curl"] / b["none"], stored / 1e6, mb}' \
    stored="$STORED_GZIP" mb=$((BIG_N * BIG_MB)) "$STACK_DIR/big"
  echo "memory: $(cat "$STACK_DIR/memory")"
  echo
  echo "small logs: $SMALL_N logs x $SMALL_SIZE B, 1 archive worker"
  printf '%-38s %8s %9s   %s\n' step seconds "logs/s" "logs/s of each run"
  table "$STACK_DIR/small" archive:upload~\(digest~+~PUT\),~purge_delay~1h:$SMALL_N verify_purge:verify~\(HEAD\)~+~purge,~purge_delay~0:$SMALL_N \
    curl_put:curl~PUT,~1~process,~keep-alive:$SMALL_N curl_head:curl~HEAD,~1~process,~keep-alive:$SMALL_N
  echo
  echo "scheduler: $AGG_JOBS jobs x $AGG_PARTS parts x $AGG_SIZE B = $((AGG_JOBS * AGG_PARTS * AGG_SIZE / 1000000)) MB, all made due at once"
  echo "(aggregate_delay 1h -> 0, reload) until the last job is aggregated (rounds of at most 500 jobs; a full round that made progress is followed at once by the next)"
  printf '%-38s %8s %9s   %s\n' "" seconds "logs/s" "logs/s of each run"
  table "$STACK_DIR/scheduler" scheduler:scheduler:$AGG_JOBS
  awk -v parts=$AGG_PARTS -v size=$AGG_SIZE -v jobs=$AGG_JOBS '{if (b == "" || $2 < b) b = $2} END {
    printf "best run: %.0f parts/s, %.1f MB/s\n", jobs * parts / b, jobs * parts * size / 1e6 / b}' "$STACK_DIR/scheduler"
} >>"$RESULTS"
echo
cat "$RESULTS"
if [ -n "${BENCH_OUT:-}" ]; then cp "$RESULTS" "$BENCH_OUT"; say "results written to $BENCH_OUT"; fi
