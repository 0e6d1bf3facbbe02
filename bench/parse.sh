#!/usr/bin/env bash
# Parser agreement and throughput benchmark, run by `script/bench parse`;
# see bench/README.md.
#
# Generates BENCH_PARSE_BODIES (default 1,000,000) message bodies with the
# structure-aware generator of test/sql/05_parse.sql (the block between
# "-- BEGIN generator" and "-- END generator", seeded with BENCH_PARSE_SEED,
# default 0.5), then:
#   1. compares the drain's parser (fast scanner, then jansson) with
#      jansson alone on every body: verdict, job id, number, final,
#      content, reason and replaced count; any disagreement prints up to 5
#      bodies and fails the run (exit 1);
#   2. times buildlog.parse_message over all bodies for each parser, and a
#      baseline query over the same rows, giving bodies/s and MB/s.
# Uses the PostgreSQL of the environment when PGHOST answers, else starts one
# with script/stack in a temporary folder. BENCH_OUT=FILE also writes the results.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${BENCH_PARSE_BODIES:-1000000}
SEED=${BENCH_PARSE_SEED:-0.5}
DB=buildlog_bench_parse
say() { echo "bench: $*"; }
TMP=$(mktemp -d /tmp/buildlog-bench-parse.XXXXXX)
cleanup() {
  if [ -n "${STARTED:-}" ]; then script/stack stop pg || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

if [ -n "${PGHOST:-}" ] && pg_isready -q; then
  say "using PostgreSQL at ${PGHOST} port ${PGPORT:-5432}"
else
  export STACK_DIR=$TMP/stack STACK_PG_PORT=${BENCH_PG_PORT:-54336}
  mkdir -p "$STACK_DIR"; chmod 755 "$TMP" "$STACK_DIR"
  if [ "$(id -u)" -eq 0 ]; then chown postgres "$STACK_DIR"; fi
  say "no PostgreSQL answers at PGHOST=${PGHOST:-}: starting one in $STACK_DIR"
  STARTED=1
  if [ "$(id -u)" -eq 0 ]; then
    su postgres -s /bin/bash -c "PATH='$PATH' STACK_DIR='$STACK_DIR' STACK_PG_PORT=$STACK_PG_PORT script/stack start pg"
    cleanup() { su postgres -s /bin/bash -c "PATH='$PATH' STACK_DIR='$STACK_DIR' STACK_PG_PORT=$STACK_PG_PORT script/stack stop pg" || true; rm -rf "$TMP"; }
  else
    script/stack start pg
  fi
  eval "$(STACK_DIR=$STACK_DIR STACK_PG_PORT=$STACK_PG_PORT script/stack env)"
fi
sql() { psql -X -q -v ON_ERROR_STOP=1 -d $DB "$@"; }

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "set client_min_messages = warning" -c "drop database if exists $DB" \
  -c "create database $DB template template0 encoding 'UTF8' locale 'C'"
sql -c 'create schema partman; create extension pg_partman schema partman; create extension buildlog'
sed -n '/^-- BEGIN generator/,/^-- END generator/p' test/sql/05_parse.sql >"$TMP/generator.sql"
[ -s "$TMP/generator.sql" ] || { say "generator block not found in test/sql/05_parse.sql"; exit 1; }
sql -f "$TMP/generator.sql"

say "generating $N bodies (seed $SEED)"
start=$(date +%s.%N)
sql -c "do \$\$ begin perform setseed($SEED); end \$\$" -c "create unlogged table bodies as select i, gen_body() as body from generate_series(1, $N) i" \
  -c "vacuum analyze bodies"
say "  generated in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"

say "comparing both parsers on every body"
sql -At -F' ' >"$TMP/agree" <<SQL
select count(*), sum(length(body)),
       count(*) filter (where (f).ok), count(*) filter (where (f).replaced > 0),
       count(*) filter (where f::text is not distinct from r::text),
       count(*) filter (where f::text is distinct from r::text)
  from (select body, buildlog.parse_message(body) as f, buildlog.parse_message(body, true) as r
          from bodies) s;
SQL
read -r total bytes accepted replaced agree disagree <"$TMP/agree"
say "  $total bodies, $agree agree, $disagree disagree, $accepted accepted, $replaced with U+FFFD"
if [ "$disagree" -ne 0 ]; then
  say "THE PARSERS DISAGREE; first bodies (escaped), drain verdict, jansson verdict:"
  sql -c "select i, encode(body, 'escape') as body, buildlog.parse_message(body) as fast,
                 buildlog.parse_message(body, true) as jansson
            from bodies where buildlog.parse_message(body)::text
                  is distinct from buildlog.parse_message(body, true)::text
           order by i limit 5"
  exit 1
fi

# typical drain traffic: travis-worker messages with a 200 B or 1,600 B log
# of CI output (CRLF, ANSI colours, quotes, backslashes, non-ASCII)
say "making 200,000 typical messages (100,000 of 200 B and of 1,600 B logs)"
sql <<'SQL'
create unlogged table typical as
select size, convert_to(format('{"id":%s,"log":"%s","number":%s,"final":false,"uuid":"%s","meta":{"queued_at":"2026-11-23T00:00:00Z"}}',
              100000 + i / 500, repeat(E'$ bundle install \\u001b[32mok\\u001b[0m caf\\u00e9 \\"x\\" C:\\\\p\\r\\n', size / 40),
              i % 500, md5(i::text)), 'UTF8') as body
  from generate_series(1, 100000) i, (values (200), (1600)) s(size);
vacuum analyze typical;
SQL

say "timing (best of 3): baseline, drain parser, jansson alone"
sql -At >"$TMP/times" <<'SQL'
create function pg_temp.seconds(q text) returns float8 language plpgsql as $$
declare t0 timestamptz; best float8;
begin
  for r in 1 .. 3 loop
    t0 := clock_timestamp();
    execute q;
    best := least(best, extract(epoch from clock_timestamp() - t0));
  end loop;
  return best;
end $$;
select w, n, b,
       pg_temp.seconds(format('select count(*) filter (where length(body || %L::bytea) >= 0) from %s', '', q)),
       pg_temp.seconds(format('select count(*) filter (where (buildlog.parse_message(body)).ok) from %s', q)),
       pg_temp.seconds(format('select count(*) filter (where (buildlog.parse_message(body, true)).ok) from %s', q))
  from (values ('generated', 'bodies'),
               ('typical-200', '(select body from typical where size = 200) t'),
               ('typical-1600', '(select body from typical where size = 1600) t')) v(w, q),
       lateral (select count(*) as n, sum(length(body)) as b
                  from (select 1) x, lateral (select body from bodies where w = 'generated'
                                              union all select body from typical
                                               where w = 'typical-' || size) y) c;
SQL
{
  echo "parser benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "bodies: $total generated (seed $SEED), $((bytes / total)) B mean, $accepted accepted, $replaced with U+FFFD"
  echo "agreement: $agree of $total identical (verdict, job id, number, final, content, reason, replaced); $disagree disagreements"
  awk '
    BEGIN { printf "%-14s %9s %7s %-24s %9s %12s %12s %9s\n", "bodies", "count", "mean B", "parser", "seconds", "bodies/s", "net bodies/s", "net MB/s" }
    { split($0, f, "|"); n = f[2]; mb = f[3] / 1e6; base = f[4]
      printf "%-14s %9d %7.0f %-24s %9.3f %12.0f %12s %9s\n", f[1], n, f[3] / n, "baseline (detoast only)", base, n / base, "", ""
      printf "%-14s %9s %7s %-24s %9.3f %12.0f %12.0f %9.1f\n", "", "", "", "drain (scanner first)", f[5], n / f[5], n / (f[5] - base), mb / (f[5] - base)
      printf "%-14s %9s %7s %-24s %9.3f %12.0f %12.0f %9.1f\n", "", "", "", "jansson only", f[6], n / f[6], n / (f[6] - base), mb / (f[6] - base) }
    END { print "best of 3; net = after subtracting the baseline; all include the SQL call and its result row" }' "$TMP/times"
} >"$TMP/results"
psql -X -q -d postgres -c "drop database $DB"
echo
cat "$TMP/results"
if [ -n "${BENCH_OUT:-}" ]; then cp "$TMP/results" "$BENCH_OUT"; say "results written to $BENCH_OUT"; fi
