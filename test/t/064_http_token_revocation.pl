# Token revocation against the real HTTP worker: a job's write, read and admin
# tokens work until buildlog.revoke_tokens(job) commits, then each is refused
# with a 401 problem+json saying it was revoked (nothing stored); a token
# issued after the revocation works, another job's tokens are unaffected, bl1
# tokens (0.3.0's form, no issue time) work for jobs never revoked and are
# refused for revoked ones.  A token issued while the revocation is not yet
# committed waits for it and works; one issued before it keeps working until
# the commit.  The revocation survives a restart of the worker (SIGTERM; the
# postmaster starts it again after 10 s) and of the server, and a pg_dump /
# pg_restore into another cluster; a row a DBA inserts refuses the job's
# tokens at once, and deleting the row makes them valid again.  A revocation
# also ends what its tokens hold open: an event stream read with a revoked
# token ends at once, and a stream upload stores nothing more and answers
# 401 at its body's end.
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Digest::SHA qw(hmac_sha256);
use MIME::Base64;
use IPC::Run;
use IO::Socket::INET;
use IO::Select;

my $secrets = PostgreSQL::Test::Utils::tempdir();
my $key = 'k3y-' . join('', map { sprintf('%02x', int(rand(256))) } 1 .. 24);
open(my $fh, '>', "$secrets/token.key") or die $!;
print $fh "$key\n";
close($fh);
chmod 0600, "$secrets/token.key";
my $conf = qq(
buildlog.http_token_key_file = '$secrets/token.key'
buildlog.http_read_tokens = on
buildlog.aggregate_delay = '1h'
);

my ($node, $base, $port) = http_node('revoke', $conf);
my $tmp = PostgreSQL::Test::Utils::tempdir();

sub sql { return $node->safe_psql('postgres', $_[0]); }

# request(BASE, METHOD, PATH, TOKEN, BODY): (status, problem or answer as a
# hash, headers as one string)
sub request
{
	my ($base, $method, $path, $token, $body) = @_;
	my @body;
	if (defined $body)
	{
		open(my $b, '>:raw', "$tmp/body") or die $!;
		print $b $body;
		close($b);
		@body = ('-H', 'Content-Type: application/x-ndjson', '--data-binary', "\@$tmp/body");
	}
	unlink "$tmp/answer", "$tmp/headers";
	my ($code) = run_command([ 'curl', '-s', '-o', "$tmp/answer", '-D', "$tmp/headers", '-w', '%{http_code}',
			'-X', $method, (defined $token ? ('-H', "Authorization: Bearer $token") : ()), @body,
			"$base$path" ]);
	my $text = -s "$tmp/answer" ? slurp_file("$tmp/answer") : '';
	my $answer = $text =~ /^\{/ ? eval { decode_json($text) } // {} : { text => $text };
	return ($code, $answer, -e "$tmp/headers" ? slurp_file("$tmp/headers") : '');
}

# post(JOB, NUMBER, TOKEN, BASE): POST /jobs/JOB/parts with one part NUMBER
sub post
{
	my ($job, $number, $token, $b) = @_;
	return request($b // $base, 'POST', "/jobs/$job/parts", $token,
		encode_json({ id => $job, number => $number, log => "part $number\n" }) . "\n");
}

sub stored
{
	my ($job, $number, $n) = @_;
	return ($n // $node)->safe_psql('postgres',
		"select count(*) from buildlog.parts($job) where number = $number");
}

# a bl1 token (0.3.0's form: job, scope, expiry, MAC), signed with the key
sub bl1
{
	my ($job, $scope) = @_;
	my $payload = "bl1.$job.$scope." . (time + 3600);
	my $mac = encode_base64(hmac_sha256($payload, $key), '');
	$mac =~ tr{+/}{-_};
	$mac =~ s/=+$//;
	return "$payload.$mac";
}

# refused(WHAT, STATUS, ANSWER, HEADERS, JOB, BL1): a 401 problem+json that
# says the token was revoked, naming the job's revocation
sub refused
{
	my ($what, $code, $answer, $headers, $job, $bl1) = @_;
	is($code, '401', "$what: 401");
	like($headers, qr{^Content-Type: application/problem\+json}mi, "$what: problem+json");
	like($headers, qr{^WWW-Authenticate: Bearer}mi, "$what: with the Bearer challenge");
	like($answer->{detail} // '',
		qr/^The token was revoked: buildlog\.revoke_tokens\($job\) at \d{4}-\d\d-\d\d [\d:.]+[+-]\d\d(?::\d\d)? refused the job's tokens issued before it${\($bl1 ? ' \(a bl1 token, which carries no issue time\)' : '')}\. Ask for a new token\.$/,
		"$what: the detail says it was revoked, when and by what")
	  or diag(explain($answer));
}

# ---- tokens of job 20 (write, read, admin), of job 21, bl1 tokens
my $write = sql('select buildlog.issue_write_token(20)');
like($write, qr/^bl2\.20\.write\.\d{16}\.\d{10}\.[A-Za-z0-9_-]{43}$/,
	'issue_write_token(): bl2.<job>.write.<issued, Unix us>.<expiry>.<MAC>');
my $read = sql('select buildlog.issue_read_token(20)');
my $admin = sql(q(select buildlog.issue_token(20, 'admin')));
my $other = sql('select buildlog.issue_write_token(21)');
my ($code, $answer, $headers) = post(20, 0, $write);
is($code, '200', 'a write token uploads: 200');
($code) = request($base, 'GET', '/jobs/20/log', $read);
is($code, '200', 'a read token reads: 200');
($code) = post(21, 0, $other);
is($code, '200', 'another job\'s write token uploads: 200');
($code) = post(22, 0, bl1(22, 'write'));
is($code, '200', 'a bl1 token of a job never revoked: 200');

# ---- revoke_tokens(20): every token of the job issued before is refused
my $revoked_at = sql('select buildlog.revoke_tokens(20)');
ok($revoked_at, "revoke_tokens(20) returned the revocation time ($revoked_at)");
($code, $answer, $headers) = post(20, 1, $write);
refused('the revoked write token', $code, $answer, $headers, 20);
is(stored(20, 1), '0', 'nothing of the refused upload stored');
($code, $answer, $headers) = request($base, 'GET', '/jobs/20/log', $read);
refused('the revoked read token', $code, $answer, $headers, 20);
($code, $answer, $headers) = request($base, 'GET', "/jobs/20/parts?token=$read", undef);
refused('the revoked read token in ?token=', $code, $answer, $headers, 20);
($code, $answer, $headers) = post(20, 1, $admin);
refused('the revoked admin token', $code, $answer, $headers, 20);
($code, $answer, $headers) = post(20, 1, bl1(20, 'admin'));
refused('a bl1 token of the revoked job', $code, $answer, $headers, 20, 1);

# tokens issued after the revocation work; other jobs' tokens are unaffected
my $write2 = sql('select buildlog.issue_write_token(20)');
($code) = post(20, 1, $write2);
is($code, '200', 'a write token issued after the revocation: 200');
is(stored(20, 1), '1', 'its part is stored');
($code) = request($base, 'GET', '/jobs/20/log', sql('select buildlog.issue_read_token(20)'));
is($code, '200', 'a read token issued after the revocation: 200');
($code) = post(21, 1, $other);
is($code, '200', 'job 21\'s token, issued before job 20\'s revocation: 200');
($code) = post(22, 1, bl1(22, 'write'));
is($code, '200', 'a bl1 token of a job never revoked: still 200');
($code, $answer) = post(20, 2, 'bl2.20.write.1.9999999999.' . ('A' x 43));
is("$code|$answer->{detail}", '401|The token\'s signature is not valid.',
	'a forged bl2 token: 401 for its signature, not taken for revoked');

# ---- a revocation not yet committed: a token issued before it still works
# until the commit; issuing meanwhile waits for the commit, and that token
# works
my $before = sql('select buildlog.issue_write_token(23)');
my $revoker = $node->background_psql('postgres');
$revoker->query_safe('begin');
$revoker->query_safe('select buildlog.revoke_tokens(23)');
($code) = post(23, 0, $before);
is($code, '200', 'before the revocation commits, the job\'s token works');
my ($issued, $issue_err) = ('', '');
my $issuer = IPC::Run::start([ 'psql', '-X', '-Atq', '-d', $node->connstr('postgres'),
		'-c', 'select buildlog.issue_write_token(23)' ], '>', \$issued, '2>', \$issue_err);
wait_query($node, q(select count(*) from pg_locks where locktype = 'advisory' and objsubid = 16980 and not granted),
	'1', 'issuing a token of job 23 waits for the revoking transaction');
$revoker->query_safe('commit');
$revoker->quit;
ok(wait_until('the waiting issue_write_token() to return', sub { $issuer->pump_nb; !$issuer->pumpable }),
	'the waiting issue_write_token() returned after the commit');
$issuer->finish;
chomp $issued;
like($issued, qr/^bl2\.23\.write\./, 'it returned a token') or diag($issue_err);
($code, $answer, $headers) = post(23, 1, $before);
refused('after the commit, the token issued before', $code, $answer, $headers, 23);
($code) = post(23, 1, $issued);
is($code, '200', 'the token issued while the revocation was pending (after its commit): 200');

# ---- the worker restarted (SIGTERM; back after 10 s): it reads them at start
my ($pid) = sql('select pid from buildlog.http_stats');
ok($pid, "the HTTP worker runs (pid $pid)");
kill 'TERM', $pid;
ok(wait_until('a new HTTP worker serving /healthz', sub {
			my $now = $node->safe_psql('postgres', 'select pid from buildlog.http_stats');
			my ($ok) = run_command([ 'curl', '-s', "$base/healthz" ]);
			($now && $now ne $pid && $ok eq 'ok', "pid '$now', healthz '$ok'") }),
	'the HTTP worker is back with a new pid');
($code, $answer, $headers) = post(20, 2, $write);
refused('after the worker restart, the revoked token', $code, $answer, $headers, 20);
($code) = post(20, 2, $write2);
is($code, '200', 'after the worker restart, the token issued after the revocation: 200');
($code) = post(21, 2, $other);
is($code, '200', 'after the worker restart, another job\'s token: 200');

# ---- the server restarted
$node->restart;
ok(wait_until('the HTTP service after the server restart', sub {
			my ($ok) = run_command([ 'curl', '-s', "$base/healthz" ]); $ok eq 'ok' }),
	'the HTTP service answers after the server restart');
($code, $answer, $headers) = post(20, 3, $write);
refused('after the server restart, the revoked token', $code, $answer, $headers, 20);
($code, $answer, $headers) = post(20, 3, bl1(20, 'write'));
refused('after the server restart, a bl1 token of the revoked job', $code, $answer, $headers, 20, 1);
($code) = post(20, 3, $write2);
is($code, '200', 'after the server restart, the token issued after the revocation: 200');
($code) = post(22, 2, bl1(22, 'write'));
is($code, '200', 'after the server restart, a bl1 token of a job never revoked: 200');
is(stored(20, 3), '1', 'job 20 holds exactly the parts of the accepted uploads');

# ---- pg_dump, pg_restore into another cluster: the copy refuses them too
# (restored into a database of its own, then served: a restore into the
# database the workers serve races the scheduler, which starts as soon as
# CREATE EXTENSION commits, for the partitions' locks)
my $dump = $node->basedir . '/revoked.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('postgres'), '-f', $dump ],
	'pg_dump of the database with the revocations');
my $port2 = PostgreSQL::Test::Cluster::get_free_port();
my $copy = buildlog_node('revoke_copy', qq(
buildlog.http_listen = '127.0.0.1:$port2'
buildlog.drain_workers = 0
buildlog.archive_workers = 0
) . $conf, no_extension => 1);
my $base2 = "http://127.0.0.1:$port2";
$copy->safe_psql('postgres', 'create database restored');
my ($rout, $rerr) = ('', '');
IPC::Run::run([ 'pg_restore', '-d', $copy->connstr('restored'), $dump ], '>', \$rout, '2>', \$rerr);
my @unexpected = grep { /ERROR:/ && !/already exists|is already a partition|duplicate key value violates unique constraint "part_config_parent_table_pkey"/ }
  split /\n/, $rerr;
is(scalar(@unexpected), 0, 'pg_restore: only objects that CREATE EXTENSION re-made already exist')
  or diag(join("\n", @unexpected));
is($copy->safe_psql('restored', 'select job_id, revoked_at from buildlog.token_revocations order by 1'),
	$node->safe_psql('postgres', 'select job_id, revoked_at from buildlog.token_revocations order by 1'),
	'the revocations are restored');
my ($copy_pid) = $copy->safe_psql('restored', 'select pid from buildlog.http_stats');
$copy->safe_psql('postgres', q(alter system set buildlog.database = 'restored'; select pg_reload_conf()));
ok(wait_until('the copy\'s HTTP worker serving database restored', sub {
			my $now = $copy->safe_psql('restored', 'select pid from buildlog.http_stats');
			my ($out) = run_command([ 'curl', '-s', "$base2/healthz" ]);
			($now && $now ne $copy_pid && $out eq 'ok', "pid '$now', healthz '$out'") }),
	'the copy\'s HTTP worker restarted for the restored database');
($code, $answer, $headers) = request($base2, 'GET', '/jobs/20/log', $read);
refused('the restored copy', $code, $answer, $headers, 20);
($code) = post(20, 4, $write2, $base2);
is($code, '200', 'the restored copy accepts the token issued after the revocation');
$copy->stop;

# ---- a DBA's own rows: the commit tells the worker (the table's trigger)
sql('insert into buildlog.token_revocations values (21, now())');
($code, $answer, $headers) = post(21, 3, $other);
refused('a revocation inserted by hand, at once', $code, $answer, $headers, 21);
sql('delete from buildlog.token_revocations where job_id = 20');
($code) = post(20, 4, $write);
is($code, '200', 'the revocation of job 20 deleted by hand: its old token works again at once');
is(stored(20, 4), '1', 'and its part is stored');

# ---- open requests end when their token is revoked
my $read30 = sql('select buildlog.issue_read_token(30)');
my $write31 = sql('select buildlog.issue_write_token(31)');
sql(q{select buildlog.write_parts('{30}', '{0}', array[E'open\n'], '{f}')});
my $events = IPC::Run::start([ 'curl', '-s', '-N', '--max-time', '60', '-o', "$tmp/events30",
		"$base/jobs/30/events?token=$read30" ]);
ok(wait_until('the stream of job 30 to have part 0', sub { -e "$tmp/events30" && slurp_file("$tmp/events30") =~ /"number":0/ }),
	'an event stream read with a read token is open');
my $up = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp') or die $!;
$up->autoflush(1);
print $up "POST /jobs/31/stream?final=0 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer $write31\r\n"
  . "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\nContent-Range: bytes 0-*/*\r\n\r\n";
my $chunk = sub { my $b = shift; print $up sprintf("%x\r\n", length $b), $b, "\r\n"; };
$chunk->("before\n");
ok(wait_until('the upload\'s bytes stored', sub { sql(q{select count(*) from buildlog.log_parts where job_id = 31 and content = E'before\n'}) eq '1' }),
	'a stream upload with a write token is open and stores');
sql('select buildlog.revoke_tokens(30)');
sql('select buildlog.revoke_tokens(31)');
ok(wait_until('the event stream to end', sub { !$events->pumpable }), 'the revocation ends the open event stream');
$events->finish;
like(slurp_file("$tmp/events30"), qr/^: the token was revoked$/m, 'saying why');
$chunk->("after\n");
print $up "0\r\n\r\n";
my ($buf, $sel) = ('', IO::Select->new($up));
while ($sel->can_read(30)) { last unless sysread($up, $buf, 65536, length $buf); last if $buf =~ /\r\n\r\n.*\}/s; }
close $up;
like($buf, qr{^HTTP/1\.1 401 }, 'the open upload answers 401 at its body\'s end');
like($buf, qr/revoked/, 'saying the token was revoked');
is(sql(q{select count(*) from buildlog.log_parts where job_id = 31 and content like '%after%'}), '0',
	'nothing it sent after the revocation was stored');

$node->stop;
done_testing();
