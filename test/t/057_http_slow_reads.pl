# Slow reads never stall the service: GET /jobs/{id}/log of a
# purged log whose S3 does not answer, and a 64 MB log, are answered by the
# reader processes (buildlog.http_readers) while the event streams keep
# getting every part as it is written; the slow read's answer comes after
# S3's timeout, the big log byte for byte (sent from the reader's file); a
# client gone mid-read leaves no slot and no file behind.  With
# http_readers = 0 the same slow read does hold the events back: what the
# readers are for, and proof that this test can see a stall.  "While" is
# seen, not timed: the reader (or the worker) is still busy when the event
# arrives.
use strict;
use warnings;
use BuildlogTest;
use BuildlogArchive;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IO::Socket::INET;
use IPC::Run;
use Digest::MD5 qw(md5_hex);
use Time::HiRes qw(sleep);

my $secrets = PostgreSQL::Test::Utils::tempdir();
open(my $kf, '>', "$secrets/token.key") or die $!;
print $kf 'k3y-' . join('', map { sprintf('%02x', int(rand(256))) } 1 .. 24) . "\n";
close($kf);
chmod 0600, "$secrets/token.key";
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $base = "http://127.0.0.1:$port";
my $node = archive_node('http_slow_reads', 't057/', qq(
buildlog.http_listen = '127.0.0.1:$port'
buildlog.s3_request_timeout = '10s'
buildlog.http_token_key_file = '$secrets/token.key'
));
my $tmp = PostgreSQL::Test::Utils::tempdir();
my $data = $node->data_dir;
ok(wait_until('the HTTP service', sub { (run_command([ 'curl', '-s', "$base/healthz" ]))[0] eq 'ok' }),
	'the HTTP service is up');

# a purged log, and a 64 MB one in the database
write_jobs($node, 571, 571, 30);
wait_purged($node, 571, 571, 'the log to read from S3');
$node->safe_psql('postgres', q(
select buildlog.set_content(572, repeat(E'0123456789abcdef\x1b[31mred\x1b[0m line of a big log\n', 1677722))));
my $big_md5 = $node->safe_psql('postgres', 'select md5(content) from buildlog.logs where job_id = 572');

# S3 that never answers: a listening socket nobody accepts on
my $hole = IO::Socket::INET->new(Listen => 16, LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp')
  or die "no socket: $!";
set_conf($node, 'buildlog.s3_endpoint' => 'http://127.0.0.1:' . $hole->sockport);

my $streams = 0;
sub background
{
	my (@args) = @_;
	my $file = "$tmp/out" . $streams++;
	return (IPC::Run::start([ 'curl', '-s', '-N', '--max-time', '60', '-D', "$file.head", '-o', $file, @args ]), $file);
}

sub write_part
{
	my ($job, $n) = @_;
	$node->safe_psql('postgres', "select buildlog.write_parts('{$job}', '{$n}', array['line $n\n'], '{f}')");
}

# the parts of job JOB an event stream file holds
sub streamed
{
	my ($file) = @_;
	return 0 unless -e $file;
	my @n = slurp_file($file) =~ /^event: part$/mg;
	return scalar @n;
}

# busy(BACKEND_TYPE, PATH): "pid|query_start" of each process of that type
# busy with a request for PATH
sub busy
{
	my ($type, $path) = @_;
	return $node->safe_psql('postgres', qq(select string_agg(pid || '|' || query_start, ',')
  from pg_stat_activity where backend_type = '$type' and query like '%$path%' and state = 'active'));
}

# reader_stuck(PATH): wait until one reader is busy with a request for PATH;
# returns that reader's "pid|query_start"
sub reader_stuck
{
	my ($path, $what) = @_;
	my $busy;
	ok(wait_until("a reader busy with $path", sub { $busy = busy('buildlog http reader', $path);
				($busy ne '' && $busy !~ /,/, $busy) }), $what);
	return $busy;
}

# still_busy(PID|QUERY_START): is that process still busy with that request?
sub still_busy
{
	my ($pid, $start) = split /\|/, $_[0];
	return $node->safe_psql('postgres', qq(select count(*) from pg_stat_activity
 where pid = $pid and state = 'active' and query_start = '$start')) eq '1';
}

# ---- readers: the events flow while the slow read waits for S3
my ($sse, $sse_file) = background("$base/jobs/573/events");
write_part(573, 0);
ok(wait_until('part 0 streamed', sub { streamed($sse_file) == 1 }), 'the watcher got part 0');
wait_query($node, q(select current_setting('buildlog.s3_endpoint') like '%' || ) . $hole->sockport . q(::text),
	't', 'the endpoint moved to the silent S3');
my ($slow, $slow_file) = background("$base/jobs/571/log");
my $stuck = reader_stuck('GET /jobs/{id}/log', 'a reader busy with the slow read');
my ($bigh, $big_file) = background("$base/jobs/572/log");
for my $n (1 .. 5)
{
	write_part(573, $n);
	ok(wait_until("part $n streamed", sub { streamed($sse_file) == $n + 1 }), "part $n reached the watcher");
}
# S3 never answers that reader before its 10 s request timeout: had the
# events waited for it, it would not be busy any more
ok(still_busy($stuck), 'the five parts streamed while the reader still waits for S3 on the slow read');
ok($slow->pumpable, 'the slow read is still unanswered after the five events');
$bigh->finish;
is(md5_hex(slurp_file($big_file)), $big_md5, 'meanwhile the 64 MB log came whole from the other reader');
$slow->finish;
like(slurp_file("$slow_file.head"), qr/^HTTP\/1\.1 503 .*^Retry-After: 10\r$/ms,
	'the slow read answers 503 with Retry-After after S3\'s timeout');
like(slurp_file($slow_file), qr/"detail":"The log is archived in S3, which did not answer: .*(too slow|timed out)/,
	'saying the S3 request timed out');

# ---- a client gone mid-read: the slot and the file are freed once its reader is done
my ($gone) = background("$base/jobs/571/log");
reader_stuck('GET /jobs/{id}/log', 'a reader busy with the read of a client that goes');
$gone->kill_kill;

# ... and the backlog of a stream opened on the purged log waits in the other reader
my ($ev571, $ev571_file) = background("$base/jobs/571/events");
my $backlog = reader_stuck('GET /jobs/{id}/events', 'a reader busy with the purged log\'s event backlog');
write_part(573, 6);
ok(wait_until('part 6 streamed', sub { streamed($sse_file) == 7 }), 'part 6 reaches the other watcher');
ok(still_busy($backlog), 'it streamed while the reader of the backlog still waits for S3');
ok(wait_until('the purged stream closed', sub { !$ev571->pumpable }),
	'the stream whose backlog S3 did not give is closed (its client reconnects)');
is(streamed($ev571_file), 0, 'with no part sent on it');
ok(wait_until('the read slot freed', sub {
			my ($m) = run_command([ 'curl', '-s', "$base/metrics" ]);
			$m =~ /^buildlog_http_reads_in_flight 0$/m }),
	'the gone client\'s read is freed after S3\'s timeout (reads_in_flight 0)');
opendir(my $dir, "$data/base/pgsql_tmp") or die "no pgsql_tmp: $!";
is(scalar(grep { /^pgsql_tmpbuildlog_http/ } readdir($dir)), 0, 'no answer file is left behind');
closedir($dir);

# ---- S3 back: the purged log read through a reader, exact
set_conf($node, 'buildlog.s3_endpoint' => $ENV{BUILDLOG_S3_ENDPOINT});
wait_query($node, q(select current_setting('buildlog.s3_endpoint')), $ENV{BUILDLOG_S3_ENDPOINT}, 'the real S3 back');
run_command([ 'curl', '-s', '-o', "$tmp/purged", "$base/jobs/571/log" ]);
is(md5_hex(slurp_file("$tmp/purged")), $node->safe_psql('postgres', 'select md5(expected(571, 30))'),
	'the purged log read from S3 is exact');
my ($head) = run_command([ 'curl', '-s', '-D', '-', '-o', "$tmp/purged_range", '-H', 'Range: bytes=1000-', "$base/jobs/571/log" ]);
like($head, qr/^HTTP\/1\.1 206 .*^Content-Range: bytes 1000-\d+\/\d+\r$/ms, 'a range of the purged log: 206');
is(md5_hex(slurp_file("$tmp/purged_range")),
	$node->safe_psql('postgres', q(select md5(substr(convert_to(expected(571, 30), 'UTF8'), 1001)))),
	'the bytes from offset 1000 of the purged log, exact');
my ($events) = run_command([ 'curl', '-s', '-N', '--max-time', '30', "$base/jobs/571/events" ]);
my @parts = $events =~ /^event: part$/mg;
is(scalar @parts, 30, 'the purged log streamed: all 30 parts from S3');
my $end = $node->safe_psql('postgres', q(
select format('{"size":%s,"sha256":"%s"}', octet_length(l), encode(sha256(convert_to(l, 'UTF8')), 'hex'))
  from expected(571, 30) l));
like($events, qr/^event: end\ndata: \Q$end\E$/m, 'and the end event with its size and SHA-256');
($events) = run_command([ 'curl', '-s', '-N', '--max-time', '30', '-H', 'Last-Event-ID: 0-29', "$base/jobs/571/events" ]);
like($events, qr/\Aretry: 1000\n\nid: 0-29\nevent: end\ndata: \Q$end\E\n*\z/,
	'resumed with every part (the final one too) received: only the end event');

# ---- a slow group commit (a trigger on job 575's parts waits for a lock the
# test holds until it has seen what it wants) is written by a reader
$node->safe_psql('postgres', q(
create function public.slow_575() returns trigger language plpgsql as $$
begin
  if new.job_id = 575 then perform pg_advisory_xact_lock_shared(575); end if;
  return new;
end $$;
create trigger slow_575 before insert on buildlog.log_parts for each row execute function public.slow_575();));
my $gate = $node->background_psql('postgres');
$gate->query_safe('select pg_advisory_lock(575)');
my $token = $node->safe_psql('postgres', q(select buildlog.issue_token(575, 'write')));
open(my $bf, '>', "$tmp/batch") or die $!;
print $bf qq({"id":575,"number":$_,"log":") . ('x' x 100000) . qq(\\n"}\n) for 0 .. 9;
close($bf);
my ($upload, $upload_file) = background('-H', "Authorization: Bearer $token", '-H', 'Content-Type: application/x-ndjson',
	'--data-binary', "\@$tmp/batch", "$base/jobs/575/parts");
my $held = q(select count(*) from pg_stat_activity
	where backend_type = 'buildlog http reader' and wait_event_type = 'Lock' and wait_event = 'advisory');
wait_query($node, $held, '1', 'a reader commits the slow group (held by the trigger)');
write_part(573, 7);
ok(wait_until('part 7 streamed', sub { streamed($sse_file) == 8 }), 'part 7 reaches the watcher');
is($node->safe_psql('postgres', $held), '1', 'it streamed while the group commit is still held');
ok($upload->pumpable, 'the upload is still unanswered then');
$gate->query_safe('select pg_advisory_unlock(575)');
$gate->quit;
ok(wait_until('the upload answered', sub { !$upload->pumpable }), 'the group commit ends once the trigger gets its lock');
$upload->finish;
like(slurp_file("$upload_file.head"), qr/^HTTP\/1\.1 200 /, 'the upload then answers 200');
is(slurp_file($upload_file), qq({"parts":10,"bytes":1000010,"replaced":0}\n), 'with its ten parts');
is($node->safe_psql('postgres', q(select count(*), sum(octet_length(content)) from buildlog.log_parts where job_id = 575)),
	'10|1000010', 'all stored once');
$node->safe_psql('postgres', q(drop trigger slow_575 on buildlog.log_parts));

# ---- no readers: the same slow read holds the events back
$sse->kill_kill;
$node->append_conf('postgresql.conf', "buildlog.http_readers = 0\nbuildlog.s3_request_timeout = '4s'\n");
set_conf($node, 'buildlog.s3_endpoint' => 'http://127.0.0.1:' . $hole->sockport);
$node->restart;
ok(wait_until('the HTTP service', sub { (run_command([ 'curl', '-s', "$base/healthz" ]))[0] eq 'ok' }),
	'the HTTP service is up without readers');
($sse, $sse_file) = background("$base/jobs/573/events");
ok(wait_until('the backlog streamed', sub { streamed($sse_file) == 8 }), 'the watcher got the backlog');
($slow, $slow_file) = background("$base/jobs/571/log");
wait_query($node, q(select count(*) from pg_stat_activity
	where backend_type = 'buildlog http' and query like '%GET /jobs/{id}/log%' and state = 'active'),
	'1', 'the HTTP worker itself busy with the slow read');
write_part(573, 8);
# watched for as long as the worker waits (S3's 4 s request timeout): part 8
# never streams meanwhile; a look counts only if the worker was still busy
# after it looked at the stream
my ($looks, $early) = (0, 0);
ok(wait_until('the HTTP worker to stop waiting for S3', sub {
			my $streamed = streamed($sse_file) == 9;
			return 1 if busy('buildlog http', 'GET /jobs/{id}/log') eq '';
			$looks++;
			$early ||= $streamed;
			return (0, "$looks looks");
		}), 'the HTTP worker stops waiting for S3 (its request timeout)');
ok($looks > 0 && !$early, "part 8 did not stream while the HTTP worker waited for S3 ($looks looks)");
ok(wait_until('the slow read answered', sub { !$slow->pumpable }), 'the slow read ends after S3\'s timeout');
ok(wait_until('part 8 streamed', sub { streamed($sse_file) == 9 }), 'then part 8 streamed');
$sse->kill_kill;
close($hole);
done_testing();
