# Many jobs failing to aggregate at once log one line per kind of error: 200
# jobs whose aggregation fails the same way (a trigger raises) are each
# counted in scheduler_stats.aggregate_failures, but the server log gets one
# line (two at most, across a round), not 200.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use BuildlogTest;

my $node = buildlog_node('aggregate_errors', q(
buildlog.drain_workers = 0
buildlog.archive_workers = 0
buildlog.aggregate_delay = '1s'
));

$node->safe_psql('postgres', q(
create function public.broken() returns trigger language plpgsql as $$
begin
  raise exception 'hand-broken log of job %', new.job_id;
end $$;
create trigger broken before update on buildlog.logs
  for each row when (new.job_id between 970000 and 970199) execute function public.broken();
));
my $offset = log_mark($node);
my $failures = $node->safe_psql('postgres', 'select aggregate_failures from buildlog.scheduler_stats');
$node->safe_psql('postgres', q(
select buildlog.write_parts(array_agg(j::bigint), array_agg(0), array_agg('x'::text), array_agg(true))
  from generate_series(970000, 970199) j;
));
wait_query($node, "select aggregate_failures >= $failures + 200 from buildlog.scheduler_stats", 't',
	'200 jobs failed to aggregate');
my $lines = log_count($node, $offset, qr/aggregating job \d+ failed/);
ok($lines >= 1 && $lines <= 2, "one line for 200 failures of one kind ($lines)");

done_testing();
