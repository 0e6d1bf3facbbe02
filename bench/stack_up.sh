# Sourced by the benchmarks that start their own stack (drain.sh, sse.sh,
# http_ingest.sh) once they have set STACK_DIR and STACK_PG_EXTRA_CONF: stops
# and removes that stack at exit, builds the load tools (tools/), the bench
# tools and the extension, installs it, starts PostgreSQL and RabbitMQ,
# defines sql() and creates the extensions, and drain_seconds.  $RESULTS is a scratch folder inside the stack's.
RESULTS=$STACK_DIR/results
cleanup() { script/stack stop || true; rm -rf "$STACK_DIR"; }
trap cleanup EXIT

say "building the load tools and bench tools, installing the extension"
make -s -C tools >/dev/null
make -s -C bench >/dev/null
make -s -j2 >/dev/null
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO make -s install >/dev/null
script/stack start pg rabbitmq
eval "$(script/stack env)"
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
sql -c 'create schema partman' -c 'create extension pg_partman schema partman' -c 'create extension buildlog'

# drain_seconds N: point the drain workers at the pre-filled queue bench.drain
# and print the seconds from then to the commit that brings their deliveries
# up by N.
drain_seconds() {
  sql <<EOF
\\o /dev/null
create temp table t0 as select clock_timestamp() as t, (select sum(deliveries) from buildlog.drain_stats) as d;
alter system set buildlog.amqp_queues = 'bench.drain';
select pg_reload_conf();
select buildlog.restart_workers();
do \$\$ begin
  loop
    exit when (select sum(deliveries) from buildlog.drain_stats) - (select d from t0) >= $1;
    perform pg_sleep(0.01);
  end loop;
end \$\$;
\\o
select extract(epoch from (select max(last_commit) from buildlog.drain_stats) - t) from t0;
EOF
}
