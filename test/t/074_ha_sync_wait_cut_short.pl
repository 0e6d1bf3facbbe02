# A commit whose wait for the synchronous standby is cut short (the worker
# terminated, as when the postmaster dies or the server shuts down) returns
# as if it had succeeded, though no standby may have it: a failover would
# lose it.  So the drain must not ack such a delivery and the HTTP service
# must not answer 2xx: the worker exits instead, the broker redelivers, the
# client sends again, and every part is stored once.
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $queue = "tq.syncwait.$$";
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $key_file = token_key_file();
my $node = drain_node('syncwait', qq(
buildlog.http_listen = '127.0.0.1:$port'
buildlog.http_token_key_file = '$key_file'
buildlog.aggregate_delay = '1h'
wal_level = replica
max_wal_senders = 2
));
my $base = "http://127.0.0.1:$port";
fresh_queues($node, $queue, 0);
use_queues($node, $queue);
my $token = $node->safe_psql('postgres', q(select buildlog.issue_token(7400002, 'write')));

# from now on every commit waits for a standby that never comes (the test's
# own sessions do not: synchronous_commit = local)
$node->safe_psql('postgres', "alter system set synchronous_standby_names = 'nosuch'; select pg_reload_conf();");
wait_query($node, 'show synchronous_standby_names', 'nosuch', 'commits wait for a synchronous standby');
my $local = 'set synchronous_commit = local; ';

# waiting(TYPE): the pid of the TYPE worker once it waits for the standby
sub waiting
{
	my ($type, $what) = @_;
	my $pid;
	ok(wait_until($what, sub {
				$pid = $node->safe_psql('postgres', $local . qq(
select pid from pg_stat_activity where backend_type like '$type' and wait_event = 'SyncRep'));
				$pid ne '' }), $what);
	return $pid;
}

# the drain: a delivery whose commit waits, then the worker is terminated
my $mark = log_mark($node);
publish_input(qq({"id":7400001,"number":0,"log":"drained once\\n","final":true}\n), '--queue', $queue, '--stdin');
my $pid = waiting('buildlog drain', 'the drain worker committed a part and waits for the standby');
$node->safe_psql('postgres', "${local}select pg_terminate_backend($pid)");
ok(wait_until('the drain worker to exit', sub {
			log_count($node, $mark, qr/FATAL:  buildlog drain \d+: a commit is not known to have reached the synchronous standby/) }),
	'the drain worker exits, saying its commit is not known to be on the standby');
is($node->safe_psql('postgres', "${local}select buildlog.log(7400001)"), "drained once\n",
	'the part is committed on this node (its wait was cut short)');
is(queue_depth($queue), 1, 'the delivery was not acked: the broker still holds it');

# the HTTP service: a batch upload whose commit waits, then the worker is terminated
open(my $fh, '>', "$node->{_basedir}/batch") or die $!;
print $fh qq({"id":7400002,"number":0,"log":"uploaded once\\n","final":true}\n);
close($fh);
my @curl = ('curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '60', '-H', "Authorization: Bearer $token",
	'-H', 'Content-Type: application/x-ndjson', '--data-binary', "\@$node->{_basedir}/batch", "$base/jobs/7400002/parts");
my ($code, $cerr) = ('', '');
my $upload = IPC::Run::start(\@curl, '>', \$code, '2>', \$cerr);
$mark = log_mark($node);
$pid = waiting('buildlog http%', 'the HTTP service (its worker or a reader) committed the batch and waits for the standby');
$node->safe_psql('postgres', "${local}select pg_terminate_backend($pid)");
$upload->finish;
isnt($code, '200', "the upload is not answered 200 (answer: '$code')");
ok(wait_until('the HTTP worker to exit', sub {
			log_count($node, $mark, qr/FATAL:  buildlog http( reader \d+)?: a commit is not known to have reached the synchronous standby/) }),
	'the process that committed exits, saying so');

# the standby requirement goes: the drain gets the delivery again, the client sends again
$node->safe_psql('postgres', "${local}alter system set synchronous_standby_names = ''; select pg_reload_conf();");
ok(wait_until('the delivery to be settled', sub { (queue_depth($queue) // '') eq '0' }, timeout => 60),
	'the restarted drain worker took the delivery again and acked it');
ok(wait_until('the HTTP service to answer again', sub {
			my ($st) = http_request("$base/healthz");
			$st == 200 }, timeout => 60), 'the HTTP worker is back');
my ($st) = http_request('-H', "Authorization: Bearer $token", '-H', 'Content-Type: application/x-ndjson',
	'--data-binary', "\@$node->{_basedir}/batch", "$base/jobs/7400002/parts");
is($st, 200, 'the batch sent again is answered 200 (its parts are stored, the final one among them)');
my $body;
($st, undef, $body) = http_request('-H', "Authorization: Bearer $token", '-H', 'Content-Type: application/x-ndjson',
	'--data-binary', qq({"id":7400002,"number":1,"log":"after the end\\n"}), "$base/jobs/7400002/parts");
is($st, 403, 'a new part after the final one is still refused (403)') or diag($body);
is($node->safe_psql('postgres', q(
select buildlog.log(7400001) || buildlog.log(7400002) || (select count(distinct (job_id, number)) from buildlog.log_parts))),
	"drained once\nuploaded once\n2", 'each log holds its part once');
is($node->safe_psql('postgres', 'select count(*) from buildlog.rejected_parts'), '0', 'nothing was kept aside');

done_testing();
