# The HTTP service's reads: /healthz, /metrics, the log by byte
# offset (Range: bytes=N-), ETag and If-None-Match, ?deansi=1, the parts
# after a number as JSON, problem+json errors (400, 404, 405, 410, 416), a
# busy listen address retried instead of crashing, and requests served while
# another client holds a connection open.  Real curl against the worker.
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Digest::MD5 qw(md5_hex);
use IO::Socket::INET;

my ($node, $base, $port) = http_node('http');

# curl(ARGS...): (status, headers as a hash of lower-case names, body bytes)
sub curl { return http_request(@_) }


# a running log with an ANSI colour, a multi-byte character and three parts
my $esc = "\e";
$node->safe_psql('postgres', q{
select buildlog.write_parts('{42,42,42}', '{0,1,2}',
  array[E'one \u00e9\n', chr(27) || E'[31mred' || chr(27) || E'[0m\n', E'three\n'], '{f,f,f}')});
my $want = "one \x{e9}\n${esc}[31mred${esc}[0m\nthree\n";
utf8::encode($want);

my ($st, $h, $body) = curl("$base/jobs/42/log");
is($st, 200, 'GET /jobs/42/log: 200');
is($body, $want, 'the whole log, byte for byte');
is($h->{'content-type'}, 'text/plain; charset=utf-8', 'text/plain; charset=utf-8');
is($h->{'x-log-size'}, length($want), 'X-Log-Size is the byte size so far');
is($h->{'x-log-complete'}, 'false', 'X-Log-Complete: false while no final part is stored');
is($h->{etag}, '"' . md5_hex($want) . '"', 'ETag is the MD5 of the bytes');
my $etag = $h->{etag};

($st, $h, $body) = curl('-H', 'Range: bytes=5-', "$base/jobs/42/log");
is($st, 206, 'Range: bytes=5-: 206');
is($body, substr($want, 5), 'the bytes from offset 5');
is($h->{'content-range'}, 'bytes 5-' . (length($want) - 1) . '/' . length($want),
	'Content-Range names the bytes sent and the size');

($st, $h, $body) = curl('-H', 'Range: bytes=' . length($want) . '-', "$base/jobs/42/log");
is($st, 416, 'a range at the end of the log so far: 416');
is($h->{'content-range'}, 'bytes */' . length($want), 'with the size so far');
is($h->{'x-log-size'}, length($want), 'and X-Log-Size');

# a tailing client: new parts arrive, the same offset now has bytes
$node->safe_psql('postgres', q{select buildlog.write_parts('{42}', '{3}', array[E'four\n'], '{t}')});
($st, $h, $body) = curl('-H', 'Range: bytes=' . length($want) . '-', "$base/jobs/42/log");
is("$st|$body", "206|four\n", 'after a new part the same offset returns just the new bytes');
is($h->{'x-log-complete'}, 'true', 'X-Log-Complete: true once the final part is stored');

($st) = curl('-H', "If-None-Match: $etag", "$base/jobs/42/log");
is($st, 200, 'If-None-Match with the old ETag: the changed log is sent');
(undef, $h) = curl("$base/jobs/42/log");
($st, undef, $body) = curl('-H', "If-None-Match: $h->{etag}", "$base/jobs/42/log");
is("$st|$body", '304|', 'If-None-Match with the current ETag: 304, no body');

($st, undef, $body) = curl("$base/jobs/42/log?deansi=1");
my $plain = "one \x{e9}\nred\nthree\nfour\n";
utf8::encode($plain);
is("$st|$body", "200|$plain", '?deansi=1 strips the ANSI escapes, keeps UTF-8');

# aggregated: the same bytes
$node->safe_psql('postgres', 'select buildlog.aggregate(42)');
($st, undef, $body) = curl("$base/jobs/42/log");
is($body, $want . "four\n", 'an aggregated log reads the same');

# parts after a number, as JSON
$node->safe_psql('postgres', q{select buildlog.write_parts('{43,43}', '{0,1}', array[E'a\n', E'b "q"\n'], '{f,f}')});
($st, $h, $body) = curl("$base/jobs/43/parts?after=0");
is($st, 200, 'GET /jobs/43/parts?after=0: 200');
is($h->{'content-type'}, 'application/json', 'application/json');
my $doc = decode_json($body);
is($doc->{job_id}, 43, 'the job id');
is_deeply([ map { [ $_->{number}, $_->{content}, $_->{final} ? 1 : 0 ] } @{ $doc->{log_parts} } ],
	[ [ 1, "b \"q\"\n", 0 ] ], 'only the parts above 0, content escaped and decoded back exactly');
like($doc->{log_parts}[0]{created_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/, 'each part with its time');
($st, undef, $body) = curl("$base/jobs/43/parts");
is(scalar @{ decode_json($body)->{log_parts} }, 2, 'without after: every part');

# errors
my %cases = (
	"$base/jobs/999/log" => [ 404, 'Not Found' ],
	"$base/jobs/999/parts" => [ 404, 'Not Found' ],
	"$base/jobs/0/log" => [ 404, 'Not Found' ],
	"$base/jobs/abc/log" => [ 404, 'Not Found' ],
	"$base/jobs/99999999999999999999/log" => [ 404, 'Not Found' ],
	"$base/nothing" => [ 404, 'Not Found' ],
	"$base/jobs/43/parts?after=x" => [ 400, 'Bad Request' ],
	"$base/jobs/43/parts?after=-2" => [ 400, 'Bad Request' ],
);
for my $url (sort keys %cases)
{
	($st, $h, $body) = curl($url);
	my $p = eval { decode_json($body) } // {};
	is("$st|" . ($h->{'content-type'} // '') . "|" . ($p->{status} // '') . "|" . ($p->{title} // ''),
		"$cases{$url}[0]|application/problem+json|$cases{$url}[0]|$cases{$url}[1]",
		"$url: $cases{$url}[0] as application/problem+json");
}
($st, $h, $body) = curl('-X', 'POST', '-d', 'x', "$base/jobs/43/log");
is("$st|$h->{allow}", '405|GET, HEAD, PUT', 'POST on /log: 405 with Allow (GET, HEAD, and PUT with an admin token)');

# a removed log: 410
$node->safe_psql('postgres', q{select buildlog.set_content(43, null, 7)});
($st) = curl("$base/jobs/43/log");
is($st, 410, 'a removed log: 410 Gone');

# a client holding a connection open (sending nothing) does not stall others
my $idle = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
  or die "connect: $!";
print $idle "GET /jobs/42/log HTTP/1.1\r\nHost: x\r\n";    # headers never finished
($st) = curl("$base/healthz");
is($st, 200, 'another request is served while a connection sits half-sent');
close($idle);

# GET /metrics: Prometheus text with every family, values as the views say
my $before = $node->safe_psql('postgres', 'select requests from buildlog.http_stats');
($st, $h, $body) = curl("$base/metrics");
is($st, 200, 'GET /metrics: 200');
like($h->{'content-type'}, qr{^text/plain; version=0\.0\.4}, "Prometheus' text format");
my %m = map { /^(\S+) (\S+)$/ ? ($1 => $2) : () } split /\n/, $body;
is($m{'buildlog_logs{state="removed"}'}, $node->safe_psql('postgres', 'select removed from buildlog.lifecycle'),
	'the life cycle counts equal buildlog.lifecycle');
is($m{buildlog_scheduler_aggregated_total}, $node->safe_psql('postgres', 'select aggregated from buildlog.scheduler_stats'),
	'the scheduler counters equal scheduler_stats');
is($m{buildlog_http_requests_total}, $before + 1, 'the HTTP request counter counts this request too');
like($body, qr/^# TYPE buildlog_http_responses_total counter$/m, 'with TYPE lines');
my @bad = grep { !/^(#.*|[a-z_]+(\{[a-z_]+="[^"]*"\})? -?\d+(\.\d+)?)$/ } split /\n/, $body;
is(scalar(@bad), 0, 'every line is a comment or a sample') or diag(join("\n", @bad));
is($node->safe_psql('postgres', 'select count(*), bool_and(responses_4xx > 0) from buildlog.http_stats'), '1|t',
	'buildlog.http_stats: one row, the 4xx answers counted');

# the worker never died
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|was terminated|server process .* exited/, 'the HTTP worker never crashed');

# keep-alive: reads and errors answered on one connection (curl reuses it)
{
	my ($out) = run_command([ 'curl', '-s', '-w', '%{http_code}:%{num_connects} ',
			map { ('-o', '/dev/null', "$base$_") } '/healthz', '/jobs/42/log', '/jobs/999/log', '/jobs/42/parts' ]);
	is($out, '200:1 200:0 404:0 200:0 ', 'four requests on one kept-alive connection');
}

# a second node on the same address: it says so and retries, without crashing
my $other = buildlog_node('http2', qq(
buildlog.http_listen = '127.0.0.1:$port'
buildlog.drain_workers = 0
buildlog.archive_workers = 0
));
ok(wait_until('the second node to report the busy address', sub {
			slurp_file($other->logfile) =~ /buildlog http: could not listen on 127\.0\.0\.1:$port/ }),
	'a busy listen address is reported');
is($other->safe_psql('postgres', q{select count(*) from pg_stat_activity where backend_type = 'buildlog http'}),
	'1', 'the worker keeps running and retries');
$other->stop;
($st) = curl("$base/healthz");
is($st, 200, 'the first node still serves');

$node->stop;
done_testing();
