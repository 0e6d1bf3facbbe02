#!/usr/bin/env bash
# script/bench viewer: the log viewer on a 50 MB log of 500,000 lines (colour
# every 50th line, a GitLab section every 5,000 lines, a link every 97th), in
# 1,000 parts, and on a hostile one (job 101: 40,000 GitLab sections started
# and never ended, then 40,000 travis and GitLab end markers that match none
# of them, each of those lines with an OSC 8 link of its own, every other one
# left open at the line's end), on a throwaway cluster of its own
# (BENCH_VIEWER_PG_PORT, default 54337; HTTP on BENCH_VIEWER_HTTP_PORT,
# default 18437).
# BENCH_RUNS=N runs (default 3; medians); BENCH_VIEWER_RAW=1 adds the raw
# text/plain page as a reference (about 2 minutes and 7 GB of memory here);
# BENCH_VIEWER_CASES=hostile runs only the hostile log (big: only the 50 MB one).
set -euo pipefail
cd "$(dirname "$0")/.."
PGPORT_B=${BENCH_VIEWER_PG_PORT:-54337}
HTTP=${BENCH_VIEWER_HTTP_PORT:-18437}
DIR=$(mktemp -d /tmp/buildlog-bench-viewer.XXXXXX)
chmod 755 "$DIR"
RUN=(); [ "$(id -u)" -eq 0 ] && { chown postgres "$DIR"; RUN=(su postgres -s /bin/sh -c); }
as_pg() { if [ ${#RUN[@]} -gt 0 ]; then "${RUN[@]}" "export PATH='$PATH'; $*"; else sh -c "$*"; fi; }
cleanup() { as_pg "pg_ctl -D '$DIR/data' -m fast stop >/dev/null 2>&1" || true; rm -rf "$DIR"; }
trap cleanup EXIT
say() { echo "bench viewer: $*"; }

[ -f .tools/node_modules/puppeteer-core/package.json ] || script/bootstrap
say "cluster in $DIR (port $PGPORT_B, HTTP $HTTP)"
as_pg "initdb -D '$DIR/data' -A trust >/dev/null"
cat >>"$DIR/data/postgresql.conf" <<CONF
port = $PGPORT_B
listen_addresses = ''
unix_socket_directories = '$DIR'
shared_preload_libraries = 'buildlog'
buildlog.database = 'postgres'
buildlog.http_listen = '127.0.0.1:$HTTP'
buildlog.drain_workers = 0
buildlog.archive_workers = 0
max_worker_processes = 16
CONF
as_pg "pg_ctl -D '$DIR/data' -l '$DIR/log' -w start >/dev/null"
psql() { command psql -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$PGPORT_B" -U postgres -d postgres "$@"; }
psql -c 'create schema partman; create extension pg_partman schema partman; create extension buildlog'
CASES=${BENCH_VIEWER_CASES:-big,hostile}
lines=0
if [[ ,$CASES, == *,big,* ]]; then
say "writing the log (job 100)"
psql -c "select buildlog.write_parts(array_fill(100::bigint, array[1000]), array(select generate_series(0, 999)),
  array(select (select string_agg(
      case when l % 5000 = 0 then E'\x1b[0Ksection_start:' || (1700000000 + l) || ':step' || l || E'\r\x1b[0K' else '' end ||
      case when l % 50 = 0 then E'\x1b[32mok\x1b[0m ' else '' end || 'line ' || l || ' ' || repeat('x', 80) ||
      case when l % 97 = 0 then ' https://example.com/' || l else '' end ||
      case when l = 377777 then ' needle' else '' end ||
      case when l % 5000 = 4999 then E'\n\x1b[0Ksection_end:' || (1700000000 + l) || ':step' || (l - 4999) || E'\r\x1b[0K' else '' end, E'\n') || E'\n'
    from generate_series(p * 500, p * 500 + 499) l) from generate_series(0, 999) p),
  array(select p = 999 from generate_series(0, 999) p))" >/dev/null
psql -c 'select buildlog.aggregate(100)' >/dev/null
lines=$(psql -Atc "select length(buildlog.fetch(100)) - length(replace(buildlog.fetch(100), E'\n', ''))")
bytes=$(psql -Atc "select octet_length(buildlog.fetch(100))")
say "$bytes bytes, $lines lines (aggregated)"
for i in 1 2 3; do
  for path in bundle parts log; do   # the page's read, and the two it replaces
    curl -s -o /dev/null -w "bench viewer: GET /jobs/100/$path %{size_download} bytes in %{time_total} s\n" "http://127.0.0.1:$HTTP/jobs/100/$path"
  done
done
fi
hostile_lines=0
if [[ ,$CASES, == *,hostile,* ]]; then
  say "writing the hostile sections log (job 101)"
  # the same log as test/t/060_viewer.pl's job 14
  psql -c "select buildlog.write_parts(array_fill(101::bigint, array[9]), array(select generate_series(0, 8)), array(
    select case when p < 4 then
      (select string_agg(E'section_start:1700000000:s' || x || E'\r\x1b[0Kstep ' || x, E'\n') || E'\n'
         from generate_series(p * 10000 + 1, p * 10000 + 10000) x)
    when p < 8 then
      (select string_agg(case when x % 2 = 0 then 'travis_fold:end:g' || x else 'section_end:1700000009:g' || x end
         || E'\r\x1b[0Kafter ' || x || E' \x1b]8;;https://e.x/' || x || E'\x1b\\\\L'
         || case when x % 2 = 0 then E'\x1b]8;;\x1b\\\\' else '' end, E'\n') || E'\n'
         from generate_series((p - 4) * 10000 + 1, (p - 4) * 10000 + 10000) x)
    else '' end from generate_series(0, 8) p), array(select p = 8 from generate_series(0, 8) p))" >/dev/null
  hostile_lines=80000
  say "$(psql -Atc "select octet_length(buildlog.log(101))") bytes, $hostile_lines lines"
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
node bench/viewer.js "http://127.0.0.1:$HTTP" 100 "$lines" "$PWD/.tools/node_modules/puppeteer-core" "${BENCH_RUNS:-3}" 101 "$hostile_lines"
