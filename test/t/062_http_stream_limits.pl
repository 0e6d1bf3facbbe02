# Event streams cannot lock everybody out: one client address holds at most
# buildlog.http_max_streams_per_client streams (429 past it), streams never
# take the last tenth of the connection limit (503 past that share, while
# /healthz and reads still find room), a client that closes a suspended
# stream frees its slot within about a second (not at the next 15 s
# heartbeat), and the gauges start from zero when the worker restarts.
# Log answers that clients do not read cannot pin more than
# buildlog.http_max_answer_bytes of the readers' files: past it, 503.
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Utils;
use Test::More;
use IO::Socket::INET;

my ($node, $base, $port) = http_node('stream_limits', qq(buildlog.http_max_connections = 60
buildlog.http_max_connections_per_client = 0
buildlog.http_max_streams_per_client = 8
buildlog.http_rate_limit = 0
buildlog.http_max_answer_bytes = '10MB'
));

# curl(ARGS...): (status, headers text, body)
my $tmp = PostgreSQL::Test::Utils::tempdir();
sub curl
{
	unlink("$tmp/head", "$tmp/body");
	run_command([ 'curl', '-s', '--max-time', '30', '-D', "$tmp/head", '-o', "$tmp/body", @_ ]);
	my $head = -e "$tmp/head" ? slurp_file("$tmp/head") : '';
	my ($status) = $head =~ m{^HTTP/1\.[01] (\d+)};
	return ($status // 0, $head, -e "$tmp/body" ? slurp_file("$tmp/body") : '');
}

sub metric { return http_metric($base, $_[0]) }

# open_stream(): a raw client of a running job's event stream (reads nothing)
sub open_stream
{
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
	  or die "connect: $!";
	print $sock "GET /jobs/1/events HTTP/1.1\r\nHost: t\r\n\r\n";
	return $sock;
}

$node->safe_psql('postgres', q{select buildlog.write_parts('{1}', '{0}', array[E'running\n'], '{f}')});

my @streams = map { open_stream() } 1 .. 8;
ok(wait_until('8 streams', sub { metric('buildlog_http_streams') == 8 }), 'one client holds 8 streams');
my ($st, $head, $body) = curl("$base/jobs/1/events");
is($st, 429, 'its ninth stream: 429');
like($head, qr/^Retry-After: \d+/mi, 'with Retry-After');
like($body, qr/http_max_streams_per_client/, 'naming the setting');
is(metric('buildlog_http_refused_streams_total'), 1, 'counted');

# no cap per client: streams stop at 60 - 8 = 52, the rest of the room is kept
$node->append_conf('postgresql.conf', "buildlog.http_max_streams_per_client = 0\n");
$node->reload;
ok(wait_until('the reload to reach the worker', sub { my ($s) = curl('--max-time', '1', "$base/jobs/1/events"); $s == 200 }),
	'after a reload the same client opens a ninth stream');
push @streams, open_stream() while @streams < 52;
ok(wait_until('52 streams', sub { metric('buildlog_http_streams') == 52 }), '52 streams open');
($st, $head, $body) = curl("$base/jobs/1/events");
is($st, 503, 'the 53rd: 503, the streams\' share is full');
like($head, qr/^Retry-After: \d+/mi, 'with Retry-After');
($st, undef, $body) = curl("$base/healthz");
like("$st $body", qr/^200 ok/, '/healthz still answers');
($st) = curl("$base/jobs/1/log");
is($st, 200, 'and so does a log read');

# clients that close suspended streams free their slots at once
close($_) for splice(@streams, 0, 10);
ok(wait_until('the 10 closed streams to be freed', sub { metric('buildlog_http_streams') == 42 }, timeout => 10),
	'10 closed clients freed their streams before the 15 s heartbeat');
($st) = curl('--max-time', '2', "$base/jobs/1/events");
is($st, 200, 'a new stream opens again');

# answers nobody reads: at most 10 MB of them in flight (more than the kernel's socket buffers hold)
close($_) for splice(@streams, 0, 20);
ok(wait_until('20 more streams freed', sub { metric('buildlog_http_streams') <= 23 }), 'room for reads');
$node->safe_psql('postgres', q{select buildlog.write_parts(array_fill(7::bigint, array[10]), array(select generate_series(0, 9)),
  array(select repeat('z', 800000) from generate_series(0, 9)), array(select x = 9 from generate_series(0, 9) x))});
my $reader = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp') or die $!;
setsockopt($reader, Socket::SOL_SOCKET(), Socket::SO_RCVBUF(), 4096);
print $reader "GET /jobs/7/log HTTP/1.1\r\nHost: t\r\n\r\n";
ok(wait_until('the answer in flight', sub { metric('buildlog_http_answer_bytes') == 8000000 }),
	'an answer of 8 MB waits for a client that reads nothing');
($st, $head, $body) = curl("$base/jobs/7/log");
is($st, 503, 'a second read of it (8 + 8 MB > 10 MB): 503');
like($head, qr/^Retry-After: \d+/mi, 'with Retry-After');
like($body, qr/http_max_answer_bytes/, 'naming the setting');
cmp_ok(metric('buildlog_http_refused_answers_total'), '>=', 1, 'counted');
close($reader);
ok(wait_until('the answers to be let go', sub { metric('buildlog_http_answer_bytes') == 0 }), 'closed clients let their answers go');
($st, undef, $body) = curl("$base/jobs/7/log");
is($st . ' ' . length($body), '200 8000000', 'then the read is answered');

# the worker restarts: the gauges count only what the new one holds
my $pid = $node->safe_psql('postgres', q{select pid from pg_stat_activity where backend_type = 'buildlog http'});
kill 'TERM', $pid;
ok(wait_until('the HTTP worker to exit', sub { !kill(0, $pid) }), 'the HTTP worker exited');
close($_) for @streams;
ok(wait_until('a new HTTP worker', sub { my ($s) = curl("$base/healthz"); $s == 200 }), 'a new worker answers');
is(metric('buildlog_http_streams'), 0, 'no stream is counted after the restart');
cmp_ok(metric('buildlog_http_connections'), '<=', 1, 'nor the old connections');

done_testing();
