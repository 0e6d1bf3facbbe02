# SIGTERM redelivers unacked deliveries: a drain worker blocked inside a
# batch (its INSERT waits for a lock the test holds on log_parts) holds all
# the deliveries unacked; pg_terminate_backend() ends it (no need to wait for
# the lock: a bound on a hang, the time only noted), the broker
# puts every delivery back in the queue, and after the restart each part is
# stored exactly once: nothing lost, nothing doubled.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BuildlogTest;
use File::Temp qw(tempdir);
use Digest::MD5 qw(md5_hex);
use Time::HiRes qw(time);

my ($url, $root) = need_env('BUILDLOG_AMQP_URL', 'BUILDLOG_ROOT');
my $queue = 'tq.sigterm';
my ($first, $jobs, $parts) = (220000, 4, 50);
my $n = $jobs * $parts;
system('amqp-delete-queue', "--url=$url", '-q', $queue);

my $node = buildlog_node('sigterm', qq(
buildlog.amqp_url = '$url'
buildlog.amqp_queues = '$queue'
buildlog.drain_workers = 1
));
$node->safe_psql('postgres', "select buildlog.declare_queues('$queue', queue_type => 'classic')");  # counts read at once
wait_query($node, 'select connected from buildlog.drain_stats', 't', 'the worker consumes');

# depth(): "ready unacknowledged" messages of the queue, as the broker says
sub depth { return queue_counts($queue); }

# wait_depth(EXPECTED, WHAT): poll the broker until the queue shows EXPECTED
sub wait_depth
{
	my ($want, $what) = @_;
	ok(wait_until("queue $queue at '$want' (ready unacked)", sub { my $d = depth(); return ($d eq $want, $d); }),
		$what);
}

# ---- the worker takes every delivery and blocks writing them
my $holder = $node->background_psql('postgres');
$holder->query_safe('begin; lock table buildlog.log_parts in access exclusive mode');
my $dir = tempdir(CLEANUP => 1);
publish('--queue', $queue, '--jobs', $jobs, '--first-job', $first, '--parts', $parts,
	'--no-final', '--expect-dir', $dir);
my $pid = $node->safe_psql('postgres', 'select pid from buildlog.drain_stats');
wait_query($node, "select wait_event_type from pg_stat_activity where pid = $pid", 'Lock',
	'the worker waits for the lock inside its batch');
wait_depth("0 $n", "the worker holds all $n deliveries unacked");

# ---- SIGTERM: the worker exits, the broker puts the deliveries back
my $t0 = time;
is($node->safe_psql('postgres', "select pg_terminate_backend($pid)"), 't', 'SIGTERM sent');
# the lock is still held: the worker can only exit by the signal
ok(wait_until('the blocked worker to exit', sub { !kill(0, $pid) }, interval => 0.02),
	sprintf('the blocked worker exited while its lock wait went on (%.2f s after SIGTERM)', time - $t0));
wait_depth("$n 0", "all $n deliveries are back in the queue, none acked");
# read under the lock: the restarted worker (10 s later) cannot have written yet
is($holder->query_safe("select count(*) from buildlog.log_parts where job_id between $first and $first + $jobs - 1"),
	'0', 'nothing of the interrupted batch was stored');
$holder->query_safe('commit');
$holder->quit;

# ---- the restarted worker stores each part once
wait_query($node, "select count(*) from buildlog.log_parts where job_id between $first and $first + $jobs - 1",
	$n, "the restarted worker stored $n parts");
isnt($node->safe_psql('postgres', 'select pid from buildlog.drain_stats'), $pid, 'by a new worker process');
is($node->safe_psql('postgres', qq(
select count(distinct (job_id, number)) || ' ' || count(*) from buildlog.log_parts
 where job_id between $first and $first + $jobs - 1)), "$n $n", 'every part exactly once: none lost, none doubled');
my @bad;
for my $job ($first .. $first + $jobs - 1) {
	open(my $fh, '<:raw', "$dir/$job.clean") or die "$dir/$job.clean: $!";
	my $want = md5_hex(do { local $/; <$fh> });
	push @bad, $job if $node->safe_psql('postgres', "select md5(buildlog.log($job))") ne $want;
}
is("@bad", '', 'every log equals the text published');
wait_depth('0 0', 'the queue is empty: every redelivery acked');

$node->stop;
done_testing();
