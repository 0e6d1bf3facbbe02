# Heartbeats: a 2 s heartbeat asked for through restart_workers() is what
# the broker negotiated, and idle workers serve it (9 idle seconds, more than
# the broker's two missed heartbeats: same connections, no reconnect).
# SIGTERM: a drain worker and the scheduler exit (a bound on a hang, not a
# speed: the time is noted) and come back.
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

my ($url) = need_env('BUILDLOG_AMQP_URL', 'BUILDLOG_ROOT');
my $node = buildlog_node('drain_heartbeat', qq(
buildlog.amqp_url = '$url'
buildlog.amqp_queues = 'tq.none'
buildlog.drain_workers = 2
));

# the broker's view of the connections: "name timeout" lines, sorted
sub broker_connections
{
	return join("\n", sort split /\n/,
		rabbitmqctl('list_connections', '-q', '--no-table-headers', 'name', 'timeout'));
}

subtest 'a 2 s heartbeat is negotiated and served while idle' => sub {
	fresh_queues($node, 'tq.h', 0);
	$node->safe_psql('postgres', q(
alter system set buildlog.amqp_heartbeat = '2s';
select pg_reload_conf();
));
	use_queues($node, 'tq.h');
	my $conns = broker_connections();
	is(join(' ', map { (split /\t/)[1] } split /\n/, $conns), '2 2',
		'the broker negotiated a 2 s heartbeat with both workers');
	# use_queues() waited until each reconnect was counted: a baseline
	my $before = $node->safe_psql('postgres',
		q(select sum(reconnects) || '|' || sum(deliveries) from buildlog.drain_stats));
	# no condition stands in for "idle long enough": the broker closes a
	# connection after two missed heartbeats (4 s); wait more than twice that
	# (a slower machine only makes the window longer)
	sleep 9;
	is($node->safe_psql('postgres',
		q(select sum(reconnects) || '|' || sum(deliveries) || '|' || bool_and(connected) from buildlog.drain_stats)),
		"$before|true", 'idle for 9 s: still connected, no reconnect, nothing delivered');
	is(broker_connections(), $conns, 'the broker still has the same two connections');
};

# Send SIGTERM from here; passes once PID is gone.  The default wait bounds
# a worker that ignores the signal (or waits for something else first);
# how fast it went is only noted.
sub terminate
{
	my ($pid, $what) = @_;
	my $t0 = time;
	kill('TERM', $pid) or die "kill $pid: $!";
	my $gone = wait_until("$what (pid $pid) to exit", sub { !kill(0, $pid) }, interval => 0.01);
	ok($gone, sprintf('%s exited after SIGTERM (%.3f s)', $what, time - $t0));
}

subtest 'SIGTERM: a drain worker and the scheduler exit promptly and come back' => sub {
	my ($pid, $other) = split /\|/, $node->safe_psql('postgres',
		q(select min(pid) || '|' || max(pid) from buildlog.drain_stats));
	my $scheduler = $node->safe_psql('postgres', 'select pid from buildlog.scheduler_stats');
	terminate($pid, 'a drain worker');
	terminate($scheduler, 'the scheduler');
	wait_query($node, qq(
select count(*) filter (where connected and pid not in ($pid, $other)) || '|'
       || count(*) filter (where pid = $other)
  from buildlog.drain_stats), '1|1', 'the drain worker came back (new pid, connected), the other one kept running');
	wait_query($node, qq(select pid <> $scheduler and pid is not null from buildlog.scheduler_stats), 't',
		'the scheduler came back (new pid)');
};

done_testing();
