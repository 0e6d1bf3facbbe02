#!/usr/bin/env bash
# The worst case each defence of the HTTP service allows, with the default
# limits, run by `script/bench abuse`; see bench/README.md.
#
# Starts its own stack (ports from the STACK_* variables when set), writes a
# 10 MB log of escapes (60 MB as event JSON) and a 16 MB plain log, then
# bench/abuse.py reaches each cap from many loopback source addresses and
# measures the HTTP worker's memory and /healthz latency with the cap
# reached: event streams that read nothing, log answers that are not read,
# 16 stream uploads piped at full speed.  BENCH_HTTP_PORT (18471), BENCH_OUT=FILE.
set -euo pipefail
cd "$(dirname "$0")/.."

HTTP_PORT=${BENCH_HTTP_PORT:-18471}
say() { echo "bench: $*"; }
export STACK_DIR; STACK_DIR=$(mktemp -d /tmp/buildlog-bench-abuse.XXXXXX)
chmod 755 "$STACK_DIR"
export STACK_PG_PORT=${STACK_PG_PORT:-54375} STACK_AMQP_PORT=${STACK_AMQP_PORT:-56775} \
       STACK_RABBITMQ_DIST_PORT=${STACK_RABBITMQ_DIST_PORT:-56776} STACK_RABBITMQ_MGMT_PORT=${STACK_RABBITMQ_MGMT_PORT:-15700} \
       STACK_EPMD_PORT=${STACK_EPMD_PORT:-56777} STACK_S3_PORT=${STACK_S3_PORT:-45695}
openssl rand -hex 32 > "$STACK_DIR/token.key"
export STACK_PG_EXTRA_CONF="buildlog.http_listen = '127.0.0.1:$HTTP_PORT'
buildlog.http_token_key_file = '$STACK_DIR/token.key'
buildlog.aggregate_delay = '1d'
buildlog.archive_workers = 0
buildlog.drain_workers = 0"
source bench/stack_up.sh
[ "$(id -u)" -ne 0 ] || chown postgres "$STACK_DIR/token.key"
chmod 600 "$STACK_DIR/token.key"
sql -c "select pg_reload_conf()" >/dev/null

say "writing the logs: job 1, 10 MB of escapes in 100 parts; job 2, 16 MB in 16 parts"
sql -c "select buildlog.write_parts(array_fill(1::bigint, array[101]), array(select generate_series(0, 100)),
  array(select case when x = 100 then '' else repeat(chr(27) || 'x', 51200) end from generate_series(0, 100) x),
  array(select x = 100 from generate_series(0, 100) x))" >/dev/null
sql -c "select buildlog.write_parts(array_fill(2::bigint, array[16]), array(select generate_series(0, 15)),
  array(select repeat('z', 1048576) from generate_series(0, 15)), array(select x = 15 from generate_series(0, 15) x))" >/dev/null
sql -c "select x, buildlog.issue_token(x, 'write') from generate_series(100, 115) x" -F ' ' > "$STACK_DIR/tokens"
until curl -sf "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null; do sleep 0.5; done
pid=$(sql -c "select pid from pg_stat_activity where backend_type = 'buildlog http'")

{
  echo "HTTP abuse benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "limits: $(sql -c "select string_agg(name || '=' || setting, ', ' order by name) from pg_settings
        where name in ('buildlog.http_max_connections', 'buildlog.http_max_connections_per_client',
                       'buildlog.http_max_streams_per_client', 'buildlog.http_max_answer_bytes', 'buildlog.http_timeout')")"
  python3 bench/abuse.py "http://127.0.0.1:$HTTP_PORT" "$pid" 1 2 "$STACK_DIR/tokens" 100
} | tee "${BENCH_OUT:-/dev/null}"
