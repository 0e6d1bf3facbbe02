# A broker node dies under load: three RabbitMQ nodes clustered
# (script/cluster), a quorum queue declared by declare_queues() on the node
# the drain workers consume from, a publisher with confirms on another node.
# kill -9 of the drain's node (also the queue's Raft leader): the drain moves
# to the next URL of buildlog.amqp_url, every confirmed part is stored, every
# log equals what was published (nothing lost, nothing twice), and the killed
# node rejoins the cluster.
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Utils;
use Test::More;
use IO::Socket::INET;
use IPC::Run;

my ($root) = need_env('BUILDLOG_ROOT');

$ENV{CLUSTER_DIR} = PostgreSQL::Test::Utils::tempdir();
$ENV{CLUSTER_PORT_BASE} = free_port_block(40);
sub cluster { my ($out, $err) = run_command([ "$root/script/cluster", @_ ]); return "$out$err"; }
my $started = cluster('start', 'broker');
END { cluster('stop') if $ENV{CLUSTER_DIR}; }
like($started, qr/running: bl1\@localhost, bl2\@localhost, bl3\@localhost/, 'three RabbitMQ nodes run as one cluster')
  or BAIL_OUT("no cluster:\n$started");
my $urls = cluster('urls');
chomp $urls;
my @url = split /,/, $urls;

my $node = buildlog_node('ha_broker', qq(
buildlog.amqp_url = '$urls'
buildlog.drain_workers = 2
buildlog.aggregate_delay = '1h'
));
my $queue = "tq.ha.$$";
is($node->safe_psql('postgres', "select string_agg(queue_name, ',') from buildlog.declare_queues('$queue')"), $queue,
	'declare_queues() on the cluster (its first URL)');
is(cluster('rabbitmqctl', 2, '-q', 'list_queues', '-p', 'buildlog', '--no-table-headers', 'name', 'type'),
	"$queue\tquorum", 'the queue is a quorum queue, seen from another node');
is($node->safe_psql('postgres', "select string_agg(queue_name, ',') from buildlog.declare_queues('$queue', queue_type => 'classic')"),
	$queue, 'declared again as classic: the queue exists and keeps its type, no error');
is(cluster('rabbitmqctl', 3, '-q', 'list_queues', '-p', 'buildlog', '--no-table-headers', 'name', 'type'),
	"$queue\tquorum", 'still a quorum queue');
my $mark = log_mark($node);
use_queues($node, $queue);
my $port1 = $ENV{CLUSTER_PORT_BASE} + 10;
like(log_since($node, $mark), qr/consuming \Q$queue\E from 127\.0\.0\.1:$port1\//,
	'the drain workers consume from node 1');

# a publisher with confirms on node 3, rate-limited so the kill lands mid-stream
my ($first, $jobs, $parts) = (7400001, 40, 60);
my $expect = PostgreSQL::Test::Utils::tempdir();
my ($pout, $perr) = ('', '');
my $pub = IPC::Run::start([ tool('publish'), '--url', $url[2], '--queue', $queue, '--first-job', $first,
		'--jobs', $jobs, '--parts', $parts, '--rate', 600, '--confirm', '--confirm-batch', 50,
		'--expect-dir', $expect ], '>', \$pout, '2>', \$perr);
ok(wait_query($node, "select count(*) > 300 from buildlog.log_parts where job_id between $first and " . ($first + $jobs - 1), 't',
		'parts flowing through the cluster'), 'parts are stored while the publisher runs');
$mark = log_mark($node);
like(cluster('kill', 1), qr/kill -9/, 'kill -9 of node 1 (the drain\'s node, the queue\'s leader)');
ok(wait_until('both drain workers to consume from another node', sub {
			my $c = () = log_since($node, $mark) =~ /consuming \Q$queue\E from 127\.0\.0\.1:(?!$port1\/)/g;
			($c >= 2, "$c workers moved") }), 'the drain moved to another node of buildlog.amqp_url');
$pub->finish;
is($?, 0, 'the publisher got a confirm for every message') or diag($perr);
like($pout, qr/^published @{[ $jobs * ($parts + 1) ]} messages/m, 'every message published');
wait_parts($node, $first, $jobs, $jobs * ($parts + 1), 'every confirmed part stored');
check_logs($node, $expect, $first, $jobs, 'after the kill');
is($node->safe_psql('postgres', qq(
select count(*) from generate_series($first, $first + $jobs - 1) j
 where (select count(distinct number) from buildlog.log_parts where job_id = j) <> $parts + 1)), '0',
	'no job misses a part number');

# the node comes back and rejoins
like(cluster('start', 'broker'), qr/running: bl1\@localhost, bl2\@localhost, bl3\@localhost/, 'node 1 rejoined the cluster');

done_testing();
