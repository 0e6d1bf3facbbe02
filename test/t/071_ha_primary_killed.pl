# The database primary dies under load: a pg_auto_failover monitor and two
# data nodes with synchronous replication (script/cluster), HAProxy in front
# of their HTTP services, the drain fed by a publisher with confirms (the test
# broker), EventSource watchers following jobs through the proxy, a runner
# streaming and another uploading batches through the proxy, and finished
# logs being archived to s3rver and purged.  kill -9 of the primary's keeper
# and postmaster mid-stream: the standby is promoted, its workers start by
# themselves, every confirmed part and every batch answered 200 is in its log
# exactly once, the watchers reconnect through the proxy and end with the
# exact logs having seen no part twice, the runner is told its exact offset
# there and resumes, every log is archived and purged, and the old primary
# rejoins as the standby (pg_rewind).  Then the standby stops while writes go
# on (synchronous replication off) and comes back with them.  The failover
# times (to the first write, to the first event through the proxy) are
# printed.
use strict;
use warnings;
use BuildlogTest;
use BuildlogArchive;
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
my $prefix = "ha071-$$/";
$ENV{CLUSTER_PG_CONF} = "buildlog.amqp_queues = '$queue'\n" . archive_conf($prefix)
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

archive_functions($db, $prefix);
my ($afirst, $alast, $aparts) = (8000001, 8000040, 300);

# a runner streams its output through the proxy, then its machine pauses (no final part)
my ($proxy_port) = $proxy =~ /:(\d+)$/;
my $token = $db->safe_psql('postgres', q(select buildlog.issue_token(7600001, 'write')));
my $out1 = join('', map { "step $_: caf\xc3\xa9 \xff ok\n" } 1 .. 300);
my $s = stream_open($proxy_port, 7600001, $token, '?final=0');
stream_chunk($s, $out1);
my ($code, undef, $body) = stream_finish($s);
is($code, 200, 'a stream upload through the proxy before the failover');

# EventSource watchers (the npm package: it reconnects by itself, also after
# a 503 of the proxy) follow the publisher's first jobs through the proxy
my ($first, $jobs, $parts) = (7500001, 30, 60);
my @watched = ($first .. $first + 4);
my $module = "$root/.tools/node_modules/eventsource";
my $wdir = PostgreSQL::Test::Utils::tempdir();
open(my $js, '>', "$wdir/watch.js") or die $!;
print $js <<'JS';
const fs = require('fs');
const EventSource = require(process.argv[2]);
const [base, dir] = [process.argv[3], process.argv[4]];
const jobs = process.argv.slice(5);
let open = jobs.length;
for (const j of jobs) {
  const es = new EventSource(`${base}/jobs/${j}/events`), got = [];
  es.onopen = () => console.log(`open ${j} ${Date.now()}`);
  es.onerror = (e) => console.log(`error ${j} ${e.status || 'closed'} ${Date.now()}`);
  es.addEventListener('part', (e) => {
    const p = JSON.parse(e.data);
    got.push(p.content);
    console.log(`part ${j} ${p.number} ${Date.now()}`);
  });
  es.addEventListener('end', () => {
    es.close();
    fs.writeFileSync(`${dir}/${j}.got`, got.join(''));
    console.log(`end ${j} ${Date.now()}`);
    if (--open === 0) process.exit(0);
  });
}
setTimeout(() => { console.log('timeout'); process.exit(1); }, 300000);
JS
close($js);
my ($wout, $werr) = ('', '');
my $watch = IPC::Run::start([ 'node', "$wdir/watch.js", $module, $proxy, $wdir, @watched ], '>', \$wout, '2>', \$werr);
ok(wait_until('the watchers to open', sub { $watch->pump_nb if $watch->pumpable;
			((() = $wout =~ /^open /mg) == @watched, $wout) }), 'EventSource watchers follow 5 jobs through the proxy');

my $expect = PostgreSQL::Test::Utils::tempdir();
my ($pout, $perr) = ('', '');
my $pub = IPC::Run::start([ tool('publish'), '--url', amqp_url(), '--queue', $queue, '--first-job', $first,
		'--jobs', $jobs, '--parts', $parts, '--rate', 300, '--confirm', '--confirm-batch', 20,
		'--expect-dir', $expect ], '>', \$pout, '2>', \$perr);
wait_query($db, "select count(*) > 200 from buildlog.log_parts where job_id between $first and " . ($first + $jobs - 1), 't',
	'parts stored on the primary while the publisher runs');

# a runner uploads batches through the proxy, sending a batch again until it
# is answered 200 (connection errors and 503 while no node is the primary)
my $btoken = $db->safe_psql('postgres', q(select buildlog.issue_token(7600002, 'write')));
my ($batches, $per_batch) = (40, 5);
my $bdir = PostgreSQL::Test::Utils::tempdir();
my $uploader = fork() // die "fork: $!";
if (!$uploader)
{
	my ($attempts, %status) = (0);
	for my $b (0 .. $batches - 1)
	{
		open(my $fh, '>', "$bdir/body") or die $!;
		for my $n ($b * $per_batch .. ($b + 1) * $per_batch - 1) {
			my $final = $n == $batches * $per_batch - 1 ? 'true' : 'false';
			print $fh qq({"id":7600002,"number":$n,"log":"batch $b part $n\\n","final":$final}\n);
		}
		close($fh);
		while (1)
		{
			$attempts++;
			my $st = `curl -s -o /dev/null -w '%{http_code}' --max-time 20 -H 'Authorization: Bearer $btoken' -H 'Content-Type: application/x-ndjson' --data-binary \@$bdir/body $proxy/jobs/7600002/parts`;
			$status{$st}++;
			last if $st eq '200';
			select(undef, undef, undef, 0.2);
		}
		select(undef, undef, undef, 0.1);
	}
	open(my $fh, '>', "$bdir/done") or die $!;
	print $fh "$attempts " . join(',', map { "$_=$status{$_}" } sort keys %status);
	close($fh);
	POSIX::_exit(0);
}
wait_query($db, "select count(*) > 0 from buildlog.log_parts where job_id = 7600002", 't', 'the batch runner is uploading');

# finished logs for the archive worker: the kill comes once it has archived
# one, so some are archived before, some in flight, the rest left to the new primary
write_jobs($db, $afirst, $alast, $aparts);
wait_query($db, "select count(*) > 0 from buildlog.logs where job_id between $afirst and $alast and archived_at is not null",
	't', 'the archive worker archives the finished logs');
my $archived_before = $db->safe_psql('postgres', "select count(*) from buildlog.logs where job_id between $afirst and $alast and archived_at is not null");

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
			($w =~ /buildlog drain/ && $w =~ /buildlog scheduler/ && $w =~ /buildlog archive/ && $w =~ /buildlog http/, $w) }),
	'the drain, the scheduler, the archive worker and the HTTP service run on it by themselves');

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
wait_parts($db, $first, $jobs, $jobs * ($parts + 1), 'every confirmed part stored', timeout => 120)
  or diag('missing: ' . $db->safe_psql('postgres', qq(
select string_agg(j || ':' || n, ' ') from generate_series($first, $first + $jobs - 1) j, generate_series(0, $parts) n
 where not exists (select from buildlog.log_parts where job_id = j and number = n)
   and not exists (select from buildlog.logs where job_id = j and n = any(part_numbers))))
	. "\nrejected: " . $db->safe_psql('postgres', 'select count(*) from buildlog.rejected_parts'));
check_logs($db, $expect, $first, $jobs, 'after the failover');
is($db->safe_psql('postgres', qq(
select count(*) from generate_series($first, $first + $jobs - 1) j
 where (select count(distinct n) from (select number from buildlog.log_parts where job_id = j
                                        union all
                                        select unnest(part_numbers) from buildlog.logs where job_id = j) p(n)) <> $parts + 1)), '0',
	'no job misses a part number');

# the watchers: reconnected through the proxy by themselves, every part once
ok(wait_until('the watchers to end', sub { $watch->pump_nb if $watch->pumpable;
			((() = $wout =~ /^end /mg) == @watched || !$watch->pumpable, $wout =~ tr/\n//) }, timeout => 120)
	  && (() = $wout =~ /^end /mg) == @watched, 'every watcher got the end of its log') or diag("$wout\n$werr");
my (%seen, @twice, @bad_log, @not_reopened);
for my $line ($wout =~ /^part (\d+ -?\d+) /mg) { push @twice, $line if $seen{$line}++; }
for my $j (@watched) {
	push @bad_log, $j unless -e "$wdir/$j.got" && slurp_file("$wdir/$j.got") eq slurp_file("$expect/$j.clean");
	push @not_reopened, $j unless (() = $wout =~ /^open $j /mg) >= 2;
}
is("@twice", '', 'no watcher saw a part twice');
is("@bad_log", '', 'every watcher ends with the exact log');
is("@not_reopened", '', 'every watcher reconnected through the proxy after the kill (Last-Event-ID)');
my $killed_ms = $killed_at * 1000;
my ($reopen) = sort { $a <=> $b } grep { $_ > $killed_ms } $wout =~ /^open \d+ (\d+)/mg;
my ($event) = sort { $a <=> $b } grep { $_ > ($reopen // 9e15) } $wout =~ /^part \d+ -?\d+ (\d+)/mg;
diag(sprintf('failover: %.1f s from the kill to the first event through the proxy', ($event - $killed_ms) / 1000)) if $event;

# the batch runner: every batch answered 200 at last, every part once
ok(wait_until('the batch runner to finish', sub { -e "$bdir/done" }, timeout => 120), 'the batch runner finished');
waitpid($uploader, 0);
my ($attempts, $statuses) = split / /, slurp_file("$bdir/done");
diag("batch runner: $attempts requests for $batches batches, answers $statuses");
cmp_ok($attempts, '>', $batches, 'batches were sent again while no node was the primary');
is($db->safe_psql('postgres', q(select md5(buildlog.log(7600002)))),
	Digest::MD5::md5_hex(join('', map { my $b = int($_ / $per_batch); "batch $b part $_\n" } 0 .. $batches * $per_batch - 1)),
	'the batch runner\'s log holds every part once, in order');

# the archive: every finished log archived, verified and purged, the objects exact
diag("archive: $archived_before of " . ($alast - $afirst + 1) . ' logs archived before the kill');
wait_purged($db, $afirst, $alast, 'after the failover', timeout => 180);
check_objects($db, $afirst, $alast, $aparts, 0, 'after the failover');
wait_purged($db, $first, $first + $jobs - 1, 'the publisher\'s logs', timeout => 180);
check_logs($db, $expect, $first, $jobs, 'read back from the archive');

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
