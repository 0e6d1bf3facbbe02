# Durable acks whatever synchronous_commit says: with synchronous_commit =
# off for the server and the database and a WAL writer that flushes every
# 10 s, a delivery is acked only once its part is on disk: after every
# delivery was acked (the broker's queue empty) the postmaster is killed
# (kill -9) and all 2,000 parts are there after the restart.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use BuildlogTest;

need_env('BUILDLOG_AMQP_URL', 'BUILDLOG_ROOT');
my $node = drain_node('drain_durable_acks', qq(
synchronous_commit = off
wal_writer_delay = '10s'
wal_writer_flush_after = '1GB'
));
$node->safe_psql('postgres', 'alter database postgres set synchronous_commit = off');
fresh_queues($node, 'tq.durable', 0);
my $mark = log_mark($node);
$node->restart;    # the workers' sessions take the database's setting
wait_parked($node, $mark);

# Start a node whose killed postmaster's children may still be exiting.
sub poll_start
{
	my ($n) = @_;
	return wait_until('the node to start after the kill (its old children gone)', sub {
			return 1 if $n->start(fail_ok => 1);
			$n->{_pid} = undef;    # start() read the dead postmaster's pid file
			return (0, 'pg_ctl start failed');
		}, interval => 0.2);
}

use_queues($node, 'tq.none', park => 1);    # parked: the queue fills first
publish_input('', '--queue', 'tq.durable', '--jobs', 20, '--first-job', 960000, '--parts', 99,
	'--confirm');
use_queues($node, 'tq.durable');
wait_parts($node, 960000, 20, 2000, 'before the crash');
# acked = gone from the queue (ready + unacknowledged)
ok(wait_until('tq.durable to hold no message', sub {
			my $depth = queue_depth('tq.durable');
			(defined $depth && $depth eq '0', $depth);
		}, interval => 0.2), 'every delivery acked');
$node->kill9;
# the orphaned children notice the postmaster's death and exit
ok(poll_start($node), 'restarted after kill -9 of the postmaster');
is($node->safe_psql('postgres', stored_parts_sql(960000, 960019)), '2000',
	'all 2,000 acked parts survived the crash (synchronous_commit = off for server and database)');

done_testing();
