# The database primary dies under load: a pg_auto_failover monitor and two
# data nodes with synchronous replication (script/cluster), HAProxy in front
# of their HTTP services, the drain fed by a publisher with confirms (the test
# broker), and a runner streaming through the proxy.  kill -9 of the
# primary's keeper and postmaster mid-stream: the standby is promoted, its
# workers start by themselves, every confirmed part is in its log exactly
# once, the proxy serves the new primary, the runner is told its exact offset
# there and resumes, and the old primary rejoins as the standby (pg_rewind).
# Then the standby stops while writes go on (synchronous replication off) and
# comes back with them.  The failover time is printed.
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Utils;
use Test::More;
use IO::Socket::INET;
use IPC::Run;
use Time::HiRes qw(time);
use Digest::MD5;

my ($root) = need_env('BUILDLOG_ROOT');

# A node reached by a libpq URL (the multi-host one: whichever is the primary),
# with the two methods the BuildlogTest helpers use.
package UrlNode
{
	sub new { my ($class, $url) = @_; return bless { url => $url }, $class; }
	sub psql
	{
		my ($self, $db, $sql) = @_;
		my ($out, $err) = ('', '');
		IPC::Run::run([ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', $self->{url}, '-c', $sql ], '>', \$out, '2>', \$err);
		chomp $out;
		return ($? >> 8, $out, $err);
	}
	sub safe_psql
	{
		my ($self, $db, $sql) = @_;
		my ($rc, $out, $err) = $self->psql($db, $sql);
		die "psql failed: $err" if $rc;
		return $out;
	}
}

my $queue = "tq.hadb.$$";
$ENV{CLUSTER_DIR} = PostgreSQL::Test::Utils::tempdir();
$ENV{CLUSTER_PORT_BASE} = free_port_block(70);
$ENV{CLUSTER_AMQP_URL} = amqp_url();
my $key_file = token_key_file();
$ENV{CLUSTER_PG_CONF} = "buildlog.amqp_queues = '$queue'\nbuildlog.aggregate_delay = '1h'\n"
  . "buildlog.http_token_key_file = '$key_file'\nbuildlog.http_flush_ms = 50\n";
sub cluster { my ($out, $err) = run_command([ "$root/script/cluster", @_ ]); return "$out$err"; }
my $started = cluster('start', 'db', 'proxy');
END { cluster('stop') if $ENV{CLUSTER_DIR}; }
like($started, qr/nodes: node1 primary, node2 secondary, synchronous_standby_names = 'ANY 1/,
	'a primary and a synchronous standby under pg_auto_failover') or BAIL_OUT("no cluster:\n$started");
my $db = UrlNode->new(cluster('pg-url') =~ s/\s+$//r);
my $proxy = cluster('proxy-url') =~ s/\s+$//r;
my $state = sub { cluster('status') };

fresh_queues($db, $queue, 0);
ok(wait_until('the drain worker to consume', sub {
			$db->safe_psql('postgres', 'select count(*) filter (where connected) from buildlog.drain_stats') eq '1' }),
	'the primary\'s drain worker consumes the queue');
$db->safe_psql('postgres', q(select buildlog.set_content(7500000, 'written before the failover')));

# a runner streams its output through the proxy, then its machine pauses (no final part)
my ($proxy_port) = $proxy =~ /:(\d+)$/;
my $token = $db->safe_psql('postgres', q(select buildlog.issue_token(7600001, 'write')));
my $out1 = join('', map { "step $_: caf\xc3\xa9 \xff ok\n" } 1 .. 300);
my $s = stream_open($proxy_port, 7600001, $token, '?final=0');
stream_chunk($s, $out1);
my ($code, undef, $body) = stream_finish($s);
is($code, 200, 'a stream upload through the proxy before the failover');

my ($first, $jobs, $parts) = (7500001, 30, 60);
my $expect = PostgreSQL::Test::Utils::tempdir();
my ($pout, $perr) = ('', '');
my $pub = IPC::Run::start([ tool('publish'), '--url', amqp_url(), '--queue', $queue, '--first-job', $first,
		'--jobs', $jobs, '--parts', $parts, '--rate', 300, '--confirm', '--confirm-batch', 20,
		'--expect-dir', $expect ], '>', \$pout, '2>', \$perr);
wait_query($db, "select count(*) > 200 from buildlog.log_parts where job_id between $first and " . ($first + $jobs - 1), 't',
	'parts stored on the primary while the publisher runs');
my $killed_at = time;
like(cluster('kill', 'primary'), qr/node1 \(primary\): kill -9/, 'kill -9 of the primary (keeper and postmaster)');
my $write_at;
ok(wait_until('a write to succeed on the other node', sub {
			my ($rc) = $db->psql('postgres', 'create temporary table t(x int)');
			$write_at = time if $rc == 0;
			$rc == 0 }, timeout => 120), 'the standby was promoted: writes go to node2');
diag(sprintf('failover: %.1f s from the kill to the first write on the new primary', $write_at - $killed_at));
ok(wait_until('the HTTP service through the proxy', sub {
			my ($st, undef, $body) = http_request("$proxy/jobs/7500000/log");
			$st == 200 && $body eq 'written before the failover' }, timeout => 60),
	'the proxy serves the log from the new primary');
is($db->safe_psql('postgres', 'select inet_server_port()'), $ENV{CLUSTER_PORT_BASE} + 52, 'the primary is node2');
ok(wait_until('the workers on the new primary', sub {
			my $w = $db->safe_psql('postgres', q(select string_agg(distinct backend_type, ',' order by backend_type)
  from pg_stat_activity where backend_type like 'buildlog%'));
			($w =~ /buildlog drain/ && $w =~ /buildlog scheduler/, $w) }), 'the drain and the scheduler run on it by themselves');

# the runner asks the new primary where its stream stands and resumes
my ($st, $h) = http_request('-I', '-H', "Authorization: Bearer $token", "$proxy/jobs/7600001/stream");
is("$st " . ($h->{'upload-offset'} // 'none'), '200 ' . length($out1),
	'HEAD through the proxy: the new primary tells the exact raw offset (U+FFFD in the log)');
my $out2 = join('', map { "after the failover $_\n" } 1 .. 100);
$s = stream_open($proxy_port, 7600001, $token, '?offset=' . length($out1));
stream_chunk($s, $out2);
($code) = stream_finish($s);
is($code, 200, 'the stream resumed at that offset and ended');
(my $clean = $out1 . $out2) =~ s/\xff/\xef\xbf\xbd/g;
is($db->safe_psql('postgres', q(select md5(convert_to(buildlog.log(7600001), 'UTF8')))), Digest::MD5::md5_hex($clean),
	'its log is the runner\'s output, cleaned: nothing lost, nothing twice');

$pub->finish;
is($?, 0, 'the publisher got a confirm for every message') or diag($perr);
wait_parts($db, $first, $jobs, $jobs * ($parts + 1), 'every confirmed part stored', timeout => 120);
check_logs($db, $expect, $first, $jobs, 'after the failover');
is($db->safe_psql('postgres', qq(
select count(*) from generate_series($first, $first + $jobs - 1) j
 where (select count(distinct number) from buildlog.log_parts where job_id = j) <> $parts + 1)), '0',
	'no job misses a part number');

# the old primary comes back as the standby
like(cluster('rejoin'), qr/nodes: node1 secondary node2 primary/, 'node1 rejoined as the standby');
like($state->(), qr/node1 .*secondary .*\n.*node2 .*primary/s, 'pg_auto_failover: node1 secondary, node2 primary');
my $node1_http = 'http://127.0.0.1:' . ($ENV{CLUSTER_PORT_BASE} + 61);
ok(wait_until('the rejoined node\'s HTTP service', sub { my ($st, $hh) = http_request("$node1_http/healthz");
			($st == 503 && ($hh->{'x-buildlog-role'} // '') eq 'standby', $st) }),
	'the rejoined node answers on its own HTTP port: 503 standby (its settings survived pg_rewind)');

# the standby stops while writes go on: the primary stops waiting for it
like(cluster('stop-standby'), qr/node1 \(standby\): stopping/, 'the standby (node1) stopped');
ok(wait_until('the primary to write alone', sub {
			my $w = $db->safe_psql('postgres', 'show synchronous_standby_names');
			($w eq '', $w) }, timeout => 60), 'pg_auto_failover turned synchronous replication off (wait_primary)');
$db->safe_psql('postgres', q(select buildlog.set_content(7500099, 'written while the standby was down')));
like(cluster('rejoin'), qr/nodes: node1 secondary node2 primary/, 'the standby came back');
ok(wait_until('synchronous replication again', sub {
			my $w = $db->safe_psql('postgres', 'show synchronous_standby_names');
			($w =~ /^ANY 1/, $w) }, timeout => 60), 'synchronous replication is on again');
my $standby = UrlNode->new('postgresql://postgres@127.0.0.1:' . ($ENV{CLUSTER_PORT_BASE} + 51) . '/postgres');
ok(wait_until('the standby to have what was written meanwhile', sub {
			$standby->safe_psql('postgres', 'select coalesce(buildlog.log(7500099), \'\')') eq 'written while the standby was down' }),
	'what was written while it was down reached the standby');

done_testing();
