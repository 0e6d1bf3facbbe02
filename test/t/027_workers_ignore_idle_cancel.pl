# pg_cancel_backend() on idle workers cancels nothing: the drain worker
# (connected, nothing to do), the scheduler and the archive worker each
# accept the cancel, keep their processes and carry on working (a part is
# stored, the scheduler runs its rounds).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use BuildlogTest;

need_env('BUILDLOG_AMQP_URL', 'BUILDLOG_ROOT');
my $node = drain_node('workers_idle_cancel', q(
buildlog.aggregate_delay = '1s'
buildlog.archive_workers = 1
));
fresh_queues($node, 'tq.cancel', 0);
use_queues($node, 'tq.cancel');
wait_until('the scheduler and the archive worker to run', sub {
		$node->safe_psql('postgres',
			'select (select count(*) from buildlog.scheduler_stats where pid is not null)
			      + (select count(*) from buildlog.archive_stats where pid is not null)') eq '2' })
  or die 'the scheduler or the archive worker is missing';

my %pid = (
	drain => drain_stat($node, 'pid'),
	scheduler => $node->safe_psql('postgres', 'select pid from buildlog.scheduler_stats'),
	archive => $node->safe_psql('postgres', 'select pid from buildlog.archive_stats'));
my $t0 = $node->safe_psql('postgres', 'select now()');
for my $kind (sort keys %pid) {
	is($node->safe_psql('postgres', "select pg_cancel_backend($pid{$kind})"), 't',
		"cancel the idle $kind worker");
}
# one aggregation round and a stored part later, every worker is the same
publish_input('', '--queue', 'tq.cancel', '--jobs', 1, '--first-job', 961000, '--parts', 1);
wait_parts($node, 961000, 1, 2, 'after the cancels');
wait_query($node,
	"select count(*) = 1 from buildlog.scheduler_stats where last_round > '$t0'::timestamptz + interval '2 s'",
	't', 'the scheduler carries on');
is($node->safe_psql('postgres', qq(
select string_agg(pid::text, ' ' order by pid) from (
  select pid from buildlog.drain_stats union all
  select pid from buildlog.scheduler_stats union all
  select pid from buildlog.archive_stats) p)),
	join(' ', sort { $a <=> $b } values %pid), 'drain, scheduler and archive: same PIDs');

done_testing();
