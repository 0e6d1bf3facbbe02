# A batch too large for the lock table is split until it fits: 6,000
# deliveries of 3,000 jobs (one job lock each) in batches of up to 5,000 with
# max_locks_per_transaction = 10 run out of shared memory; the worker logs
# it, retries in smaller pieces and stores everything, nothing rejected.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use BuildlogTest;

need_env('BUILDLOG_AMQP_URL', 'BUILDLOG_ROOT');
my $node = drain_node('drain_lock_table');

fresh_queues($node, 'tq.locks', 0);
my $offset = log_mark($node);
# a small lock table once the extension exists (creating it takes more locks)
$node->append_conf('postgresql.conf', qq(
max_locks_per_transaction = 10
max_connections = 10
buildlog.batch_size = 5000
buildlog.flush_ms = 2000
));
use_queues($node, 'tq.none', park => 1);    # parked: the queue fills first
publish_input('', '--queue', 'tq.locks', '--jobs', 3000, '--first-job', 950000, '--parts', 1);
my $mark = log_mark($node);
$node->restart;
wait_parked($node, $mark);
my $t0 = time;
use_queues($node, 'tq.locks');
wait_parts($node, 950000, 3000, 6000, 'one job lock each, 6,000 deliveries, max_locks_per_transaction = 10');
note(sprintf('stored in %.1f s', time - $t0));
wait_query($node, 'select deliveries from buildlog.drain_stats', '6000',
	'the 6,000 deliveries are counted');
is($node->safe_psql('postgres',
	'select split_retries > 0, error_rejected, max_batch < 5000 from buildlog.drain_stats'),
	't|0|t', 'the batch was split into pieces that fit, nothing rejected');
like(log_since($node, $offset),
	qr/WARNING:  buildlog drain 1: \d+ deliveries not written, retrying them in smaller pieces: 53200: out of shared memory/,
	'the split was logged with its error');

done_testing();
