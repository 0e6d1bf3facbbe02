#!/usr/bin/env bash
# The ingest cost of masking secrets (script/bench mask): the same batches of
# parts written with write_parts() for jobs without masking (the job_secrets
# table out of sight: the reference), with no secrets, with 10 and with 100
# secrets each, interleaved in one run; batches of 100 parts and of 1 part;
# then aggregate() of the jobs of each case. See bench/README.md.
#
# Uses the PostgreSQL of the environment (PGHOST...) when it answers, else starts
# one with script/stack. Scratch database buildlog_bench_mask, dropped and recreated.
# BENCH_RUNS=N (default 5) runs, best reported; BENCH_OUT=FILE also writes the table there.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${BENCH_RUNS:-5}
DB=buildlog_bench_mask
say() { echo "bench mask: $*"; }
cleanup() { if [ -n "${STARTED:-}" ]; then script/stack stop pg; fi; }
trap cleanup EXIT
if [ -n "${PGHOST:-}" ] && pg_isready -q; then
  say "using PostgreSQL at ${PGHOST} port ${PGPORT:-5432}"
else
  export STACK_DIR=${BENCH_STACK_DIR:-$PWD/.stack/bench} STACK_PG_PORT=${BENCH_PG_PORT:-54335}
  STARTED=1
  script/stack start pg
  eval "$(script/stack env)"
fi
sql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
# the commits' flushes would drown what masking costs: off in these sessions
export PGOPTIONS="${PGOPTIONS:-} -c synchronous_commit=off"
sql -d postgres -c 'set client_min_messages = warning' -c "drop database if exists $DB" -c "create database $DB template template0 encoding 'UTF8' locale 'C'"
export PGDATABASE=$DB
sql -c 'create schema partman; create extension pg_partman schema partman; create extension buildlog'

# a key for the secrets, in the data directory (written by the server)
key=$(sql -At -c "select current_setting('data_directory') || '/buildlog_bench_mask.key'")
sql -c "do \$\$ begin execute format('copy (select %L) to %L', 'bench-mask-key-' || md5(random()::text), '$key'); end \$\$"
sql -c "alter system set buildlog.secrets_key_file = '$key'" -c 'select pg_reload_conf()' >/dev/null
for _ in $(seq 100); do [ "$(sql -At -c 'show buildlog.secrets_key_file')" = "$key" ] && break; sleep 0.05; done

sql <<'EOF'
-- 100 parts of about 2 kB of CI output (ANSI colours, CRLF, UTF-8); every
-- 20th part prints two of the secrets (sk_live_<md5(1)>, sk_live_<md5(2)>)
create table bench_contents as
select i, string_agg(format(E'\x1b[32m\u2713\x1b[0m spec %s/%s passed in 0.%s s (worker %s)\r\n', i, l, (i * l) % 997, l % 4), '')
          || case when i % 20 = 0 then format(E'export TOKEN=sk_live_%s; curl -u sk_live_%s x\n',
                                           left(md5('1'), 20), left(md5('2'), 20)) else '' end as c
  from generate_series(0, 99) i, generate_series(1, 36) l group by i;

-- write BATCHES batches of PARTS parts (over JOBS jobs from FIRST), one
-- transaction each; seconds
create procedure bench_write(first bigint, batches int, parts int, jobs int, inout secs float8 default null)
language plpgsql as $$
declare
  contents text[] := array(select c from bench_contents order by i limit parts);
  finals bool[] := array(select false from generate_series(1, parts));
  ids bigint[] := array(select first + i % jobs from generate_series(0, parts - 1) i);
  numbers int[];
  t0 timestamptz := clock_timestamp();
begin
  for b in 0..batches - 1 loop
    numbers := array(select b * (parts / jobs) + i / jobs from generate_series(0, parts - 1) i);
    perform buildlog.write_parts(ids, numbers, contents, finals);
    commit;
  end loop;
  secs := extract(epoch from clock_timestamp() - t0);
end $$;

-- aggregate jobs FIRST..FIRST+JOBS-1, one transaction each; seconds
create procedure bench_aggregate(first bigint, jobs int, inout secs float8 default null)
language plpgsql as $$
declare t0 timestamptz := clock_timestamp();
begin
  for j in first..first + jobs - 1 loop
    perform buildlog.aggregate(j);
    commit;
  end loop;
  secs := extract(epoch from clock_timestamp() - t0);
end $$;

-- K secrets (24 to 40 bytes) for jobs FIRST..FIRST+JOBS-1
create procedure bench_secrets(first bigint, jobs int, k int)
language plpgsql as $$
begin
  for j in first..first + jobs - 1 loop
    perform buildlog.add_secrets(j, array(select 'sk_live_' || left(md5(i::text), 16 + i % 17)
                                            from generate_series(1, k) i));
  end loop;
end $$;
EOF

cases="reference s0 s10 s100"
first_of() { case $1 in reference) echo 1000000 ;; s0) echo 2000000 ;; s10) echo 3000000 ;; s100) echo 4000000 ;; esac; }
k_of() { case $1 in reference | s0) echo 0 ;; s10) echo 10 ;; s100) echo 100 ;; esac; }
JOBS=10
out=$(mktemp /tmp/buildlog-bench-mask.XXXXXX)
say "registering secrets (not timed)"
for run in $(seq "$RUNS"); do
  for c in $cases; do
    for shape in 0 1; do    # the batch-shaped jobs, then the single-part one
      base=$(( $(first_of $c) + (run * 2 + shape) * 1000 ))
      k=$(k_of $c)
      if [ "$k" -gt 0 ]; then
        # k - 2 of its own and the two the parts print
        sql -c "call bench_secrets($base, $JOBS, $k - 2)" \
            -c "select buildlog.add_secrets(j, array['sk_live_' || left(md5('1'), 20), 'sk_live_' || left(md5('2'), 20)]) from generate_series($base::bigint, $base + $JOBS - 1) j" >/dev/null
      fi
    done
  done
done
sql -c checkpoint
say "writing: $RUNS run(s), cases interleaved"
for run in $(seq "$RUNS"); do
  for c in $cases; do
    [ $c = reference ] && sql -c 'alter table buildlog.job_secrets rename to job_secrets_hidden'
    b=$(( $(first_of $c) + run * 2 * 1000 ))
    s=$(( b + 1000 ))
    t1=$(sql -At -c "call bench_write($b, 200, 100, $JOBS)")      # 20,000 parts in batches of 100
    t2=$(sql -At -c "call bench_write($s, 2000, 1, 1)")            # 2,000 parts one by one
    t3=$(sql -At -c "call bench_aggregate($b, $JOBS)")            # 10 jobs x 2,000 parts
    [ $c = reference ] && sql -c 'alter table buildlog.job_secrets_hidden rename to job_secrets'
    say "  run $run $c: batches ${t1}s, single parts ${t2}s, aggregate ${t3}s"
    echo "$c $t1 $t2 $t3" >>"$out"
  done
done
mb=$(sql -At -c "select round(sum(octet_length(c)) * 200 / 1e6, 1) from bench_contents")
mb1=$(sql -At -c "select round(octet_length(c) * 2000 / 1e6, 1) from bench_contents where i = 0")
check=$(sql -At -c "select count(*) from buildlog.logs where job_id >= 3000000 and strpos(content, 'sk_live_' || left(md5('1'), 20)) > 0")
{
  echo "masking, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), best of $RUNS"
  printf '%-10s %22s %22s %22s\n' case "100-part batches" "1-part batches" "aggregate 10 jobs"
  awk -v mb="$mb" -v mb1="$mb1" '
    { if (!($1 in a) || $2 < a[$1]) a[$1] = $2; if (!($1 in b) || $3 < b[$1]) b[$1] = $3; if (!($1 in g) || $4 < g[$1]) g[$1] = $4 }
    END { n = split("reference s0 s10 s100", cs, " ")
          for (i = 1; i <= n; i++) { c = cs[i]
            printf "%-10s %7.3f s %5.1f MB/s x%.2f %7.3f s %5.0f parts/s x%.2f %7.3f s x%.2f\n", c,
              a[c], mb / a[c], a["reference"] / a[c], b[c], 2000 / b[c], b["reference"] / b[c], g[c], g["reference"] / g[c] } }' "$out"
  echo "($mb MB in 200 batches of 100 parts over 10 jobs; 2,000 parts of $(sql -At -c "select octet_length(c) from bench_contents where i = 0") B one per batch; x = throughput / reference's; logs still holding a secret after aggregation: $check)"
} | tee -a "${BENCH_OUT:-/dev/null}"
rm -f "$out"
sql -c 'alter system reset buildlog.secrets_key_file' -c 'select pg_reload_conf()' >/dev/null
