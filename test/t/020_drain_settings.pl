# Drain settings: batch_size, flush_ms, batch_bytes and max_part_bytes
# apply from the next batch after a reload (same worker, same connection),
# and the prefetch (basic.qos) the broker shows is twice batch_size, taken
# at the next reconnect (restart_workers()).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BuildlogTest;

my ($url, $root) = need_env('BUILDLOG_AMQP_URL', 'BUILDLOG_ROOT');
my $queue = 'tq.settings';
system('amqp-delete-queue', "--url=$url", '-q', $queue);

my $node = buildlog_node('settings', qq(
buildlog.amqp_url = '$url'
buildlog.amqp_queues = '$queue'
buildlog.drain_workers = 1
buildlog.batch_size = 300
buildlog.flush_ms = '10s'
));
$node->safe_psql('postgres', "select buildlog.declare_queues('$queue', queue_type => 'classic')");  # counts read at once
# connected is set before the reconnect is counted: wait for both (a baseline)
wait_query($node, 'select connected and reconnects > 0 from buildlog.drain_stats', 't', 'the worker consumes');

# publish_bodies(BODIES): the lines of BODIES, one message each, as they are
sub publish_bodies
{
	my ($bodies) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ "$root/tools/bin/publish", '--url', $url, '--queue', $queue, '--stdin' ],
		'<', \$bodies, '>', \$out, '2>', \$err) or die "publish failed: $err";
}

# reload(MARKERS, SETTING => [VALUE, SHOWN], ...): ALTER SYSTEM,
# pg_reload_conf(), wait until a new session shows the values (the postmaster
# re-read the file and has signalled the worker), then publish MARKERS
# messages (a batch under the new settings: written at once) and wait until
# the worker took them.  The signal is pending before the markers arrive, and
# the worker re-reads its settings between two batches: the messages a test
# publishes next meet the new settings, whenever the worker ran.
my $marker_number = 0;
sub reload
{
	my ($markers, %set) = @_;
	$node->safe_psql('postgres', join('', map { "alter system set buildlog.$_ = '$set{$_}[0]';\n" }
		  sort keys %set) . 'select pg_reload_conf();');
	for my $name (sort keys %set) {
		wait_query($node, "show buildlog.$name", $set{$name}[1], "reloaded $name");
	}
	my $deliveries = $node->safe_psql('postgres', 'select deliveries from buildlog.drain_stats');
	my @m = split /\n/, $markers;
	publish_bodies(join('', map { $_ =~ s/NUMBER/$marker_number++/er . "\n" } @m));
	wait_query($node, "select deliveries - $deliveries from buildlog.drain_stats", scalar(@m),
		'the worker took the ' . scalar(@m) . ' marker message(s) of the reload');
}
# a marker message: a part of job 200000 (LOG its text)
sub marker { return qq({"id": 200000, "number": NUMBER, "log": "$_[0]"}); }

# stats(): the worker's pid, reconnects, batches and deliveries
sub stats
{
	return split /\|/, $node->safe_psql('postgres',
		'select pid, reconnects, batches, deliveries from buildlog.drain_stats');
}

# batches_for(N, PUBLISH ARGS...): publish N messages, wait until the worker
# took them, return how many batches it wrote them in
sub batches_for
{
	my ($n, @args) = @_;
	my (undef, undef, $batches, $deliveries) = stats();
	if (ref $args[-1]) {    # --stdin, BODIES
		publish_bodies(${ $args[-1] });
	}
	else {
		publish('--queue', $queue, '--no-final', @args);
	}
	wait_query($node, "select deliveries - $deliveries from buildlog.drain_stats", $n,
		"the worker took the $n messages");
	return (stats())[2] - $batches;
}

# prefetch(): the prefetch count the broker shows for our consumer
sub prefetch
{
	my ($out) = run_command([ "$root/script/stack", 'rabbitmqctl', 'list_consumers', '-q',
		'--no-table-headers', 'queue_name', 'prefetch_count' ]);
	my ($count) = $out =~ /^\Q$queue\E\s+(\d+)$/m;
	return $count // "none in: $out";
}

my ($pid, $reconnects) = stats();
is(prefetch(), 600, 'prefetch is twice batch_size (300)');

# ---- batch_size: 100 messages in batches of 10 (before: one batch of 100,
# written after flush_ms = 10 s)
reload(join("\n", (marker('m')) x 10), batch_size => [ 10, '10' ]);
is(batches_for(100, '--jobs', 1, '--first-job', 200001, '--parts', 100), 10,
	'batch_size 10 after a reload: 100 messages in 10 batches');

# ---- flush_ms: 20 messages 50 ms apart, flushed after 20 ms each (before: all
# in one batch, held up to 10 s)
reload(marker('m'), batch_size => [ 500, '500' ], flush_ms => [ '20ms', '20ms' ]);
my $batches = batches_for(20, '--jobs', 1, '--first-job', 200002, '--parts', 20, '--rate', 20);
cmp_ok($batches, '>=', 10, "flush_ms 20ms after a reload: 20 messages sent over 1 s in $batches batches");

# ---- batch_bytes: 10 bodies of 600 bytes, a batch ends at 1 kB: 5 batches of 2
reload(marker('m' x 1100), flush_ms => [ '10s', '10s' ], batch_bytes => [ '1kB', '1kB' ]);
my $bodies = '';
for my $number (0 .. 9) {
	my $body = qq({"id": 200003, "number": $number, "log": ");
	$bodies .= $body . ('x' x (600 - length($body) - 2)) . qq("}\n);
}
is(batches_for(10, '--stdin', \$bodies), 5,
	'batch_bytes 1kB after a reload: 10 bodies of 600 bytes in 5 batches');

# ---- max_part_bytes: a 2,000-byte part is now too large
reload(marker('m'), max_part_bytes => [ '1kB', '1kB' ], batch_bytes => [ '32MB', '32MB' ],
	flush_ms => [ '20ms', '20ms' ]);
batches_for(2, '--jobs', 2, '--first-job', 200004, '--parts', 1, '--size', 2000);
is($node->safe_psql('postgres', q(
select count(*) || ' ' || min(reason) from buildlog.rejected_parts where queue = 'tq.settings')),
	'2 part of 2000 bytes exceeds buildlog.max_part_bytes (1024)',
	'max_part_bytes 1kB after a reload: 2,000-byte parts rejected with the new limit');

my @now = stats();
is("$now[0] $now[1]", "$pid $reconnects", 'all along: the same worker, the same connection');
is(prefetch(), 600, 'a reload leaves the prefetch of the open connection alone');

# ---- the prefetch follows batch_size at the next reconnect
# (restart_workers() makes the worker re-read the file itself: no marker)
$node->safe_psql('postgres',
	"alter system set buildlog.batch_size = '40'; select pg_reload_conf();");
wait_query($node, 'show buildlog.batch_size', '40', 'reloaded batch_size');
$node->safe_psql('postgres', 'select buildlog.restart_workers()');
wait_query($node, "select connected and reconnects > $reconnects from buildlog.drain_stats", 't',
	'reconnected after restart_workers()');
ok(wait_until('prefetch 80', sub { my $p = prefetch(); return ($p eq '80', $p); }),
	'after restart_workers() the prefetch is twice the new batch_size (40)');

$node->stop;
done_testing();
