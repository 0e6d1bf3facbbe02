# A batch is bounded by bytes as well as by count: with batch_bytes = 64kB,
# 100 deliveries of 10 kB waiting in the queue are written in batches of at
# most 7 (drain_stats.max_batch), never one batch of all of them.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use BuildlogTest;

need_env('BUILDLOG_AMQP_URL', 'BUILDLOG_ROOT');
my $node = drain_node('drain_batch_bytes', q(
buildlog.batch_bytes = '64kB'
buildlog.flush_ms = 1000
));

fresh_queues($node, 'tq.bytes', 0);
use_queues($node, 'tq.none', park => 1);    # parked: the queue fills first
publish_input('', '--queue', 'tq.bytes', '--jobs', 2, '--first-job', 940000, '--parts', 50,
	'--size', 10000, '--no-final');
use_queues($node, 'tq.bytes');
wait_parts($node, 940000, 2, 100, '10 kB parts');
# the counters (max_batch among them) follow each batch's commit
wait_query($node, 'select deliveries from buildlog.drain_stats', '100',
	'the 100 deliveries are counted');
my $max = drain_stat($node, 'max_batch');
ok($max >= 2 && $max <= 7, "batches of 10 kB deliveries stop at 64 kB (largest: $max)");

done_testing();
