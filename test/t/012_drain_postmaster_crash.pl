# The postmaster is killed (stop -m immediate) while the drain workers are
# mid-stream: the broker keeps what was not acked, every log ends up exact
# after the restart.  Then the scheduler aggregates every finished job once,
# with exactly its parts (aggregation held back until the logs are checked).
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Temp qw(tempdir);

my ($url) = need_env('BUILDLOG_AMQP_URL', 'BUILDLOG_ROOT');
my $node = buildlog_node('drain_crash', qq(
buildlog.amqp_url = '$url'
buildlog.amqp_queues = 'tq.none'
buildlog.drain_workers = 2
buildlog.aggregate_delay = '1h'
));
my $stored = q(select count(*) from buildlog.log_parts where job_id between 500000 and 500099);
my $dir = tempdir(CLEANUP => 1);

subtest 'postmaster killed mid-stream: unacked deliveries redelivered, every log exact' => sub {
	fresh_queues($node, 'tq.k', 0);
	use_queues($node, 'tq.none', park => 1);
	my $p = published(publish('--queue', 'tq.k', '--jobs', 100, '--first-job', 500000,
		'--parts', 500, '--size', 200, '--shuffle', '--confirm', '--expect-dir', $dir));
	is($p->{messages}, 100 * 501, 'publisher: 50,100 messages confirmed');
	use_queues($node, 'tq.k');
	wait_until('5,000 parts stored', sub { my $n = $node->safe_psql('postgres', $stored); ($n > 5000, $n) })
	  or BAIL_OUT('the workers store nothing');
	$node->stop('immediate');
	# nobody consumes now: what the broker still holds waits for the restart
	my $left;
	ok(wait_until('the broker to take back the unacked deliveries', sub {
			my @c = split /\s+/, rabbitmqctl('list_queues', '-q', '--no-table-headers',
				'name', 'messages_unacknowledged', 'consumers');
			my %q = map { $_->[0] => $_ } map { [ @c[ 3 * $_ .. 3 * $_ + 2 ] ] } 0 .. $#c / 3;
			($q{'tq.k'} && $q{'tq.k'}[1] == 0 && $q{'tq.k'}[2] == 0, "@c");
		}), 'the broker took back the unacked deliveries: no consumer, nothing unacked');
	$left = queue_depth('tq.k');
	cmp_ok($left, '>', 0, "killed mid-stream: the broker still held $left messages");
	$node->start;
	wait_parts($node, 500000, 100, 100 * 501, 'postmaster crash');
	check_logs($node, $dir, 500000, 100, 'postmaster crash');
	ok(wait_until('the queue drained', sub { my $d = queue_depth('tq.k'); ($d eq '0', $d) }),
		'nothing left in the queue');
};

subtest 'the scheduler aggregates every finished job exactly once' => sub {
	is($node->safe_psql('postgres', q(select aggregated || '|' || aggregate_failures from buildlog.scheduler_stats)),
		'0|0', 'nothing aggregated while aggregate_delay is 1 h');
	$node->safe_psql('postgres', q(
alter system set buildlog.aggregate_delay = '1s';
select pg_reload_conf();
));
	wait_query($node, $stored, '0', 'scheduler: every part of the 100 finished jobs was aggregated');
	is($node->safe_psql('postgres', q(
select count(*) filter (where aggregated_at is not null and final_number = 500
                          and cardinality(part_numbers) = 501)
  from buildlog.logs where job_id between 500000 and 500099)), '100',
		'scheduler: all 100 jobs aggregated with their 501 parts and the final one');
	# the scheduler counts a job after its aggregation committed
	wait_query($node,
		q(select aggregated || '|' || parts_merged || '|' || aggregate_failures from buildlog.scheduler_stats),
		'100|50100|0', 'scheduler_stats: 100 jobs aggregated, 50,100 parts merged, no failure');
	check_logs($node, $dir, 500000, 100, 'aggregated');
};

done_testing();
