# The workers' sessions ignore a hostile database search_path: with
# ALTER DATABASE ... SET search_path = evil, pg_catalog and an evil.now()
# planted there (it records who calls it), the drain stores parts, the
# scheduler aggregates them and runs its rounds, and no worker ever calls
# evil.now().
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use BuildlogTest;

need_env('BUILDLOG_AMQP_URL', 'BUILDLOG_ROOT');
my $node = drain_node('workers_search_path', q(
buildlog.aggregate_delay = '1s'
));
$node->safe_psql('postgres', q(
create schema evil;
create table public.evil_calls (backend_type text, at timestamptz default pg_catalog.now());
create function evil.now() returns timestamptz language sql as $$
  insert into public.evil_calls (backend_type)
  select backend_type from pg_catalog.pg_stat_activity where pid = pg_catalog.pg_backend_pid()
  returning pg_catalog.now() $$;
grant usage on schema evil to public;
alter database postgres set search_path = evil, pg_catalog;
));
fresh_queues($node, 'tq.evil', 0);
my $mark = log_mark($node);
$node->restart;    # the workers' sessions take the database's search_path
wait_parked($node, $mark);

use_queues($node, 'tq.evil');
publish_input('', '--queue', 'tq.evil', '--jobs', 20, '--first-job', 960000, '--parts', 99);
wait_parts($node, 960000, 20, 2000, 'the drain under the hostile search_path');
wait_query($node, 'select count(*) from buildlog.logs where job_id between 960000 and 960019 and aggregated_at is not null',
	'20', 'the scheduler aggregated the 20 jobs under the hostile search_path');

# the scheduler and the drain ran in the hostile search_path
wait_query($node, q(select count(*) > 0 from buildlog.scheduler_stats
   where last_round > (select pg_postmaster_start_time() + interval '2 s')), 't',
	'the scheduler ran rounds since the restart');
is($node->safe_psql('postgres',
	q(select count(*) from public.evil_calls where backend_type like 'buildlog%')),
	'0', 'no worker ran the planted evil.now()');

done_testing();
