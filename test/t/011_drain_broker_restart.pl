# The broker is stopped while its queue still holds most of a backlog and
# started again: the drain workers notice, reconnect by themselves (exactly
# once each) and every log ends up exact.  Parking the workers on a missing
# queue is said once per worker, not flooded; the password is never logged.
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Temp qw(tempdir);

my ($url, $root) = need_env('BUILDLOG_AMQP_URL', 'BUILDLOG_ROOT');
my $node = buildlog_node('drain_restart', qq(
buildlog.amqp_url = '$url'
buildlog.amqp_queues = 'tq.none'
buildlog.drain_workers = 2
buildlog.aggregate_delay = '1h'
));
my $stored = q(select count(*) from buildlog.log_parts where job_id between 400000 and 400099);
my $dir = tempdir(CLEANUP => 1);
my $p;

subtest 'a backlog waits in the broker while the workers are parked on a missing queue' => sub {
	fresh_queues($node, 'tq.r', 0);
	my $mark = log_mark($node);
	use_queues($node, 'tq.none', park => 1);
	$p = published(publish('--queue', 'tq.r', '--jobs', 100, '--first-job', 400000,
		'--parts', 1000, '--size', 200, '--shuffle', '--dup', '0.05', '--confirm',
		'--expect-dir', $dir));
	is(queue_depth('tq.r'), $p->{messages}, "the broker holds all $p->{messages} confirmed messages");
	# retried with back-off all along, said once per worker (no flood)
	for my $w (1, 2)
	{
		is(log_count($node, $mark, qr/LOG:  buildlog drain $w: could not consume queue "tq.none"/),
			1, "parked: worker $w said once that it cannot consume \"tq.none\"");
	}
};

subtest 'the broker stopped mid-stream and started again: all stored, one reconnect each' => sub {
	use_queues($node, 'tq.r');
	# read only now: use_queues() waited until restart_workers()'s own
	# reconnect was counted
	my $before = $node->safe_psql('postgres', 'select sum(reconnects) from buildlog.drain_stats');
	wait_until('5,000 parts stored', sub { my $n = $node->safe_psql('postgres', $stored); ($n > 5000, $n) })
	  or BAIL_OUT('the workers store nothing');
	my $mark = log_mark($node);
	system("$root/script/stack", 'stop', 'rabbitmq') == 0 or BAIL_OUT('stopping the broker failed');
	wait_query($node, 'select count(*) || bool_or(connected)::text from buildlog.drain_stats',
		'2false', 'both workers saw the broker go down');
	my $mid = $node->safe_psql('postgres', $stored);
	cmp_ok($mid, '<', $p->{messages},
		"the broker went down holding messages: $mid of $p->{messages} stored");
	for my $w (1, 2)
	{
		is(log_count($node, $mark, qr/LOG:  buildlog drain $w: [^\n]*; reconnecting\n/), 1,
			"worker $w logged the lost connection once");
	}
	system("$root/script/stack", 'start', 'rabbitmq') == 0 or BAIL_OUT('starting the broker failed');
	wait_parts($node, 400000, 100, 100 * 1001, 'broker restart');
	check_logs($node, $dir, 400000, 100, 'broker restart');
	wait_query($node, 'select bool_and(connected) from buildlog.drain_stats', 't',
		'both workers connected again');
	# a worker sets connected, then counts the reconnect
	wait_query($node, 'select sum(reconnects) from buildlog.drain_stats',
		$before + 2, 'the workers reconnected by themselves, once each');
	ok(wait_until('the queue drained', sub { my $d = queue_depth('tq.r'); ($d eq '0', $d) }),
		'nothing left in the queue');
};

$node->stop;
unlike(slurp_file($node->logfile), qr/guest:guest/, 'the AMQP password never appears in the server log');
done_testing();
