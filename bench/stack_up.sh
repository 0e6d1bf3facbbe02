# Sourced by the benchmarks that start their own stack (drain.sh, sse.sh,
# http_ingest.sh) once they have set STACK_DIR and STACK_PG_EXTRA_CONF: stops
# and removes that stack at exit, builds the bench tools and the extension,
# installs it, starts PostgreSQL and RabbitMQ, defines sql() and creates the
# extensions.  $RESULTS is a scratch folder inside the stack's.
RESULTS=$STACK_DIR/results
cleanup() { script/stack stop || true; rm -rf "$STACK_DIR"; }
trap cleanup EXIT

say "building bench tools, installing the extension"
make -s -C bench >/dev/null
make -s -j2 >/dev/null
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO make -s install >/dev/null
script/stack start pg rabbitmq
eval "$(script/stack env)"
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
sql -c 'create schema partman' -c 'create extension pg_partman schema partman' -c 'create extension buildlog'
