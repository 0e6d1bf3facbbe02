# Bad input and abuse, while a fleet streams parts: write_parts
# writes 10 jobs continuously, a well-behaved runner PUTs its parts one by
# one, an SSE watcher (tools/bin/sse_watch) follows each of the 11 jobs.  Meanwhile,
# each from its own client address: a connection flood over
# buildlog.http_max_connections_per_client (refused at accept, the rest closed
# at buildlog.http_timeout), slowloris headers and a body trickled byte by
# byte (closed after buildlog.http_timeout although bytes keep coming), a
# request flood (429 problem+json with Retry-After), a malformed chunked body
# (400, nothing stored), garbage request lines and a huge header.  The worker
# never crashes (same PID), the watchers get every part exactly once, and
# every part the runner sent is stored.
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IO::Socket::INET;
use IO::Select;
use IPC::Run;
use Time::HiRes qw(time sleep);

my ($root) = need_env('BUILDLOG_ROOT');
$SIG{PIPE} = 'IGNORE';    # the server may close a socket we still write to
my $secrets = PostgreSQL::Test::Utils::tempdir();
open(my $fh, '>', "$secrets/token.key") or die $!;
print $fh 'k3y-' . join('', map { sprintf('%02x', int(rand(256))) } 1 .. 24) . "\n";
close($fh);
chmod 0600, "$secrets/token.key";
my ($node, $base, $port) = http_node('abuse', qq(
buildlog.aggregate_delay = '1h'
buildlog.http_token_key_file = '$secrets/token.key'
buildlog.http_timeout = '2s'
buildlog.http_max_connections_per_client = 20
buildlog.http_rate_limit = 15
buildlog.http_rate_burst = 30
));
my $tmp = PostgreSQL::Test::Utils::tempdir();
my $pid = $node->safe_psql('postgres', 'select pid from buildlog.http_stats');
my $token = sub { $node->safe_psql('postgres', "select buildlog.issue_token($_[0], 'write', '1 hour')") };
sub metric { my ($body) = run_command([ 'curl', '-s', "$base/metrics" ]); return ($body =~ /^$_[0] (\d+)$/m)[0]; }

# the well-behaved (127.0.0.1): a watcher of each job 3100 (the runner's) .. 3110 (the fleet's), 81 parts each
my ($wout, $werr) = ('', '');
my $watch = IPC::Run::start([ "$root/tools/bin/sse_watch", '--port', $port, '--clients', 11, '--jobs', 11,
		'--first-job', 3100, '--expect', 81, '--timeout', 60, '--ready-file', "$tmp/ready" ], '>', \$wout, '2>', \$werr);
ok(wait_until('the watchers answered', sub { -e "$tmp/ready" }), 'well-behaved watchers are streaming') or diag($werr);
my $fleet = IPC::Run::start([ 'psql', '-X', '-q', '-d', $node->connstr('postgres'), '-c', q{
do $$
begin
  for i in 0..80 loop
    perform buildlog.write_parts(array_agg(j), array_agg(i), array_agg(case when i = 80 then '' else 'fleet ' || i || E'\n' end), array_agg(i = 80))
       from generate_series(3101, 3110) j;
    commit;
    perform pg_sleep(0.1);
  end loop;
end $$} ]);
my $t3100 = $token->(3100);
open(my $up, '>', "$tmp/upload.sh") or die $!;
print $up qq{for n in \$(seq 0 80); do
  if [ \$n = 80 ]; then f=true; c=''; else f=false; c="runner \$n\\\\n"; fi
  curl -s -o /dev/null -w '%{http_code}\\n' -X PUT -H 'Authorization: Bearer $t3100' -H 'Content-Type: application/json' \\
    --data-binary "{\\"\@type\\":\\"log_part\\",\\"content\\":\\"\$c\\",\\"final\\":\$f}" $base/jobs/3100/parts/\$n
  sleep 0.1
done
};
close($up);
my $codes = '';
my $runner = IPC::Run::start([ 'bash', "$tmp/upload.sh" ], '>', \$codes);

# sock(ADDR): a connection from client address ADDR
sub sock
{
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, LocalAddr => $_[0], Proto => 'tcp')
	  or die "connect from $_[0]: $!";
	return $s;
}
# closed(SOCK, WAIT): has the server closed it (EOF or reset) within WAIT s?
sub closed
{
	my ($s, $wait) = @_;
	return 0 unless IO::Select->new($s)->can_read($wait);
	my $n = sysread($s, my $buf, 65536);
	return !$n;
}
# answer(ADDR, BYTES): the status line the server answers to BYTES, or 'closed'
sub answer
{
	my ($addr, $bytes) = @_;
	my $s = sock($addr);
	print $s $bytes;
	my $got = '';
	my $sel = IO::Select->new($s);
	while ($got !~ /\r\n/ && $sel->can_read(5)) { sysread($s, my $buf, 65536) or last; $got .= $buf; }
	close($s);
	return $got =~ m{^(HTTP/1\.\d \d\d\d)} ? $1 : 'closed';
}

# a connection flood over the per-client cap: 20 kept, 40 closed at accept
my $t0 = time;
my @flood = map { sock('127.0.0.2') } 1 .. 60;
ok(wait_until('40 refused at accept', sub { (metric('buildlog_http_refused_connections_total') // 0) >= 40 }, interval => 0.5),
	'60 connections from one client: the 40 over its cap are refused');
is(scalar(grep { closed($_, 0.5) } @flood[20 .. 59]), 40, 'the refused connections are closed at once');
my ($code) = run_command([ 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', "$base/healthz" ]);
is($code, '200', 'another client is served meanwhile');
ok(wait_until('the flood closed at the timeout', sub { scalar(grep { closed($_, 0) } @flood[0 .. 19]) == 20 }),
	sprintf('the 20 idle connections are closed at buildlog.http_timeout (%.1f s after they opened)', time - $t0));
close($_) for @flood;

# slowloris: headers and a body trickled a byte every 0.3 s (MHD's idle
# timeout never fires): closed, though bytes keep coming, not before the
# 2 s timeout (a lower bound: a slow machine only makes it later); the
# trickle goes on for at most ten timeouts (a bound on "never closed")
my $t3200 = $token->(3200);
my @slow = map { sock('127.0.0.3') } 1 .. 3;
print { $slow[$_] } "GET /jobs/3101/log HTTP/1.1\r\nHost: x\r\n" for 0 .. 1;
print { $slow[2] } "PUT /jobs/3200/parts/0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $t3200\r\n"
  . "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{";
$t0 = time;
my %closed_at;
while (keys(%closed_at) < 3 && time - $t0 < 20)
{
	for my $i (0 .. 2)
	{
		next if $closed_at{$i};
		if (closed($slow[$i], 0)) { $closed_at{$i} = time - $t0; next; }
		syswrite($slow[$i], $i < 2 ? 'X' : ' ');
	}
	sleep 0.3;
}
for my $i (0 .. 2)
{
	my $at = $closed_at{$i};
	ok(defined $at && $at >= 1.5, ($i < 2 ? 'trickled headers' : 'a body trickled byte by byte')
		  . sprintf(': closed after buildlog.http_timeout (%.1f s) although bytes kept coming', $at // -1));
}
is($node->safe_psql('postgres', 'select count(*) from buildlog.log_parts where job_id = 3200'), '0',
	'nothing of the trickled body is stored');

# a request flood: 429 problem+json with Retry-After past the burst
my $t1 = time;
my ($flood) = run_command([ 'curl', '-s', '--interface', '127.0.0.4', '-w', '%{http_code}\n', '-D', "$tmp/heads",
		(map { ('-o', '/dev/null', "$base/healthz") } 1 .. 99), '-o', "$tmp/429", "$base/healthz" ]);
my $took = time - $t1;
my %by;
$by{$_}++ for split /\n/, $flood;
# the bucket: 30 at once, then 15 per second
cmp_ok($by{200} // 0, '>=', 30, "a flood of 100 requests: the burst of 30 is served ($by{200})");
cmp_ok($by{200} // 0, '<=', 30 + 15 * $took + 1, sprintf('no more than the bucket allows in %.2f s', $took));
is(($by{200} // 0) + ($by{429} // 0), 100, "the others answer 429 ($by{429})");
my ($head) = grep { /^HTTP\/1\.1 429 / } split /\r?\n\r?\n/, slurp_file("$tmp/heads");
$head //= '';
like($head, qr{^HTTP/1\.1 429 }, 'past the burst: 429');
like($head, qr{^Retry-After: [1-9]\d*\r?\n}mi, 'with Retry-After');
like($head, qr{^Content-Type: application/problem\+json\r?\n}mi, 'as problem+json');
like(slurp_file("$tmp/429"), qr/"title":"Too Many Requests"/, 'its title (the last request of the flood)');

# malformed chunked body, garbage request lines, a huge header (client .5)
my $t3201 = $token->(3201);
is(answer('127.0.0.5', "POST /jobs/3201/parts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $t3201\r\n"
		  . "Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"),
	'HTTP/1.1 400', 'a malformed chunked body: 400');
is($node->safe_psql('postgres', 'select count(*) from buildlog.log_parts where job_id = 3201'), '0',
	'nothing of it stored');
for my $garbage ("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", "GET\r\n\r\n", "GET /healthz HTTP/9.9\r\n\r\n",
	"\r\n\r\n\r\n", "GET /jobs/%zz/log HTTP/1.1\r\nHost: x\r\n\r\n")
{
	like(answer('127.0.0.5', $garbage), qr{^(HTTP/1\.1 4\d\d|HTTP/1\.1 505|closed)$},
		'garbage request line ' . join('', map { sprintf('%02x', ord) } split //, substr($garbage, 0, 6)) . ': refused');
}
like(answer('127.0.0.5', "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " . ('a' x 200000) . "\r\n\r\n"),
	qr{^(HTTP/1\.1 (431|413|400)|closed)$}, 'a 200 kB header: refused');

# the well-behaved lost nothing
ok(wait_until('the runner to finish', sub { $runner->pump_nb if $runner->pumpable; !$runner->pumpable }), 'the runner finished');
$runner->finish;
$fleet->finish;
my %rc;
$rc{$_}++ for split /\n/, $codes;
is_deeply(\%rc, { 200 => 81 }, 'every upload of the runner answered 200');
is($node->safe_psql('postgres', 'select count(distinct number) from buildlog.log_parts where job_id = 3100'), '81',
	'every part the runner sent is stored');
ok(wait_until('the watchers to finish', sub { $watch->pump_nb if $watch->pumpable; !$watch->pumpable }), 'the watchers finished');
ok($watch->finish, 'sse_watch: every watcher got every part exactly once and the end') or diag("$wout\n$werr");
like($wout, qr/^clients 11 .* ended 11 .* events 891 duplicates 0 missing 0 cursor_mismatches 0 /m, $wout);

is($node->safe_psql('postgres', 'select pid from buildlog.http_stats'), $pid, 'the HTTP worker is the same process');
unlike(slurp_file($node->logfile), qr/terminated by signal/, 'no process crashed');
$node->stop;
done_testing();
