#!/usr/bin/env bash
# script/demo --ha: the simulated CI fleet streamed into a highly available
# buildlog (script/cluster: three RabbitMQ nodes, a pg_auto_failover pair with
# synchronous replication, HAProxy). Half-way through, the primary is killed
# (kill -9 of its keeper and postmaster); the demo shows the failover as it
# happens once a second, lets the old primary rejoin, and ends with every log
# read back through the proxy and compared with what each job printed.
#
#   script/demo --ha   (FLEET_JOBS default 20, FLEET_RATE 50 messages/s, FLEET_SEED)
# Uses its own cluster in .cluster-demo (ports from 57800), stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."

JOBS=${FLEET_JOBS:-20}
RATE=${FLEET_RATE:-50}
SEED=${FLEET_SEED:-1}
FIRST=7200001
export CLUSTER_DIR=${DEMO_CLUSTER_DIR:-$PWD/.cluster-demo} CLUSTER_PORT_BASE=${DEMO_CLUSTER_PORT_BASE:-57800}
export CLUSTER_PG_CONF="buildlog.amqp_queues = 'reporting.jobs.logs'"
TMP=$(mktemp -d /tmp/buildlog-demo-ha.XXXXXX); chmod 755 "$TMP"
stop() { echo "== stopping the cluster"; script/cluster stop || true; rm -rf "$TMP" "$CLUSTER_DIR"; }
trap stop EXIT
# a fresh cluster every run (a broker node alone would wait for the others of an old one)
script/cluster stop >/dev/null 2>&1 || true
rm -rf "$CLUSTER_DIR"

make -s -C tools >/dev/null
mkdir -p "$CLUSTER_DIR"; [ "$(id -u)" -ne 0 ] || chown postgres "$CLUSTER_DIR"
echo "== 1. the cluster: three broker nodes, a primary and a synchronous standby, HAProxy"
script/cluster start
URLS=$(script/cluster urls); PG=$(script/cluster pg-url); PROXY=$(script/cluster proxy-url)
sql() { if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/bash -c "psql -X -At '$PG' -c \"$1\""; else psql -X -At "$PG" -c "$1"; fi; }
sql "select buildlog.declare_queues('reporting.jobs.logs')" >/dev/null
sql "select buildlog.restart_workers()" >/dev/null
states() { script/cluster status 2>/dev/null | awk -F'|' '/^node[12] /{gsub(/ /, "", $1); gsub(/ /, "", $6); printf "%s %s  ", $1, $6}'; }

echo "== 2. the fleet: $JOBS jobs, publisher confirms, through broker node 3"
tools/fleet --jobs "$JOBS" --first-job "$FIRST" --seed "$SEED" --expect-dir "$TMP/expected" |
  tools/bin/publish --stdin --rate "$RATE" --confirm --url "${URLS##*,}" --queue reporting.jobs.logs \
    >"$TMP/publish.out" 2>"$TMP/publish.err" &
PUB=$!
until [ -s "$TMP/expected/fleet.env" ]; do sleep 0.2; done
. "$TMP/expected/fleet.env"
RANGE="generate_series($FIRST, $((FIRST + JOBS - 1))) j"
complete() { sql "select count(*) from $RANGE where exists (select 1 from buildlog.parts(j, -1) p where p.final)" 2>/dev/null || echo 0; }
killed=0; t=0
while kill -0 "$PUB" 2>/dev/null || [ "$(complete)" != "$JOBS" ]; do
  parts=$(sql "select sum((select count(*) from buildlog.parts(j, -1))) from $RANGE" 2>/dev/null || echo "none (no primary)")
  printf '  %3ss  parts stored: %-18s %s\n' "$t" "$parts" "$(states)"
  if [ $killed -eq 0 ] && [[ $parts =~ ^[0-9]+$ ]] && [ "$parts" -gt 0 ] && [ $t -ge 5 ]; then
    echo "== 3. kill -9 of the primary, half-way"
    script/cluster kill primary
    killed=1
  fi
  sleep 1; t=$((t + 1))
  [ $t -lt 300 ] || { echo "demo: the fleet did not finish within 300 s" >&2; exit 1; }
done
wait "$PUB" || { cat "$TMP/publish.err" >&2; exit 1; }
echo "  publisher: $(tail -n1 "$TMP/publish.out")"

echo "== 4. the old primary rejoins as the standby"
script/cluster rejoin

echo "== 5. every log read back through the proxy ($PROXY) equals what its job printed"
bad=0
for ((j = FIRST; j < FIRST + JOBS; j++)); do
  got=$(curl -s "$PROXY/jobs/$j/log" | md5sum | cut -d' ' -f1)
  exp=$(md5sum <"$TMP/expected/$j.log" | cut -d' ' -f1)
  [ "$got" = "$exp" ] || { echo "  job $j differs"; bad=$((bad + 1)); }
done
echo "  $((JOBS - bad))/$JOBS logs exact"
[ $bad -eq 0 ] || exit 1
