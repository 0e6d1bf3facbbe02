# Secrets masked at the server, through the HTTP service, the drain and the
# archive: POST /jobs/{id}/secrets registers them (admin token only, UTF-8
# lines); a stream holds back an unfinished line at a flush, so a secret cut
# by a flush is stored as *** and never reaches a part, a watcher (SSE) or
# the archive; an "::add-mask::" line in the stream registers its value for
# the rest of the stream; numbered parts that cut a secret are masked at
# aggregation (a live reader sees the two pieces, never the whole), so the
# archived object is clean; a delivery kept aside in rejected_parts is
# masked (plain and base64 forms); the secrets go with the purged log; and
# no secret appears in the server log (log_statement = all).
use strict;
use warnings;
use BuildlogTest;
use BuildlogArchive;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use MIME::Base64;

my %secret = (
	stream => 'strm-Secret-9f3a',
	parts => 'part-Secret-77c1',
	rejected => 'rej-Secret-51b0',
	command => 'amask-Value-0042',
);
my $key_file = token_key_file();
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $node = archive_node('secrets', 't066/', qq(
buildlog.http_listen = '127.0.0.1:$port'
buildlog.http_token_key_file = '$key_file'
buildlog.http_flush_ms = 100
buildlog.amqp_url = '${\ amqp_url()}'
buildlog.amqp_queues = 'tq.none'
buildlog.drain_workers = 1
log_statement = 'all'
));
wait_parked($node, 0);
my $base = "http://127.0.0.1:$port";
ok(wait_until('the HTTP worker to listen', sub { my ($out) = run_command([ 'curl', '-s', "$base/healthz" ]); $out eq 'ok' }),
	'the HTTP service is up');
sub query { return $node->safe_psql('postgres', $_[0]); }
sub token { return query("select buildlog.issue_token($_[0], '$_[1]')"); }
sub register
{
	my ($job, $body, $scope, $type) = @_;
	return http_request('-X', 'POST', '-H', 'Authorization: Bearer ' . token($job, $scope // 'admin'),
		'-H', 'Content-Type: ' . ($type // 'text/plain; charset=utf-8'), '--data-binary', $body,
		"$base/jobs/$job/secrets");
}
# no piece of a secret as long as half of it, in text
sub leaks
{
	my ($text, $s) = @_;
	my $half = int(length($s) / 2);
	for my $i (0 .. length($s) - $half)
	{
		return substr($s, $i, $half) if index($text, substr($s, $i, $half)) >= 0;
	}
	return '';
}

# ---- the route: admin token, text/plain, UTF-8 lines
my ($st, $h, $body) = register(6601, "$secret{stream}\n", 'write');
is($st, 403, 'a write token cannot register secrets');
($st, $h, $body) = register(6601, "$secret{stream}\n", 'admin', 'application/json');
is($st, 415, 'secrets are sent as text/plain');
($st, $h, $body) = register(6601, "ab\n");
is($st, 400, 'a secret too short is refused (400)');
unlike($body, qr/\bab\b/, 'the refusal does not show the value');
($st, $h, $body) = register(6601, "\xff\xfe-not-utf8\n");
is($st, 400, 'secrets that are not UTF-8 are refused');
($st, $h, $body) = register(6601, "$secret{stream}\r\n\n$secret{stream}\n");
is($st, 200, 'an admin token registers secrets');
is(decode_json($body)->{registered}, 1, 'one new secret (CRLF and blank lines aside, duplicates once)');
is(query('select count(*) from buildlog.job_secrets where job_id = 6601'), '1', 'one row, sealed');
($st) = register(6602, "$secret{parts}\n");
is($st, 200, 'a secret of job 6602');
($st) = register(6603, "$secret{rejected}\n");
is($st, 200, 'a secret of job 6603');

# ---- a stream: a secret cut by a flush is held back, then stored as ***
my ($sse, $sse_file) = sse_open("$base/jobs/6601/events");
my $s = stream_open($port, 6601, token(6601, 'write'));
stream_chunk($s, "line one\nexport T=" . substr($secret{stream}, 0, 8));
wait_query($node, "select string_agg(content, '' order by number) from buildlog.log_parts where job_id = 6601",
	"line one\n", 'the finished line is stored at the flush');
is(query("select string_agg(content, '' order by number) from buildlog.log_parts where job_id = 6601"), "line one\n",
	'the unfinished line that may hold a secret is held back (not stored)');
stream_chunk($s, substr($secret{stream}, 8) . " done\n");
my ($code) = stream_finish($s);
is($code, 200, 'the stream ends');
my $parts = query("select string_agg(content, '|' order by number) from buildlog.log_parts where job_id = 6601");
is(leaks($parts, $secret{stream}), '', 'no stored part holds a piece of the secret');
is(query("select buildlog.log(6601)"), "line one\nexport T=*** done\n", 'the log shows *** where the secret was');
ok(wait_until('the watcher to get the end event', sub { grep { $_->{event} eq 'end' } sse_events($sse_file) }),
	'the SSE watcher got the whole log');
my $seen = join('', map { $_->{data} // '' } sse_events($sse_file));
like($seen, qr/\*\*\*/, 'the watcher saw ***');
is(leaks($seen, $secret{stream}), '', 'the watcher never saw a piece of the secret');
$sse->kill_kill;

# ---- "::add-mask::" in a stream: the value is masked in the same flush and later ones
$s = stream_open($port, 6604, token(6604, 'write'));
stream_chunk($s, "::add-mask::$secret{command}\nuse " . substr($secret{command}, 0, 9));
wait_query($node, "select string_agg(content, '' order by number) from buildlog.log_parts where job_id = 6604",
	"::add-mask::***\n", 'the command line is stored masked, the unfinished line held back');
stream_chunk($s, substr($secret{command}, 9) . " ok\n");
($code) = stream_finish($s);
is($code, 200, 'the stream ends');
is(query("select buildlog.log(6604)"), "::add-mask::***\nuse *** ok\n", 'the value is masked where it was cut');
is(query('select count(*) from buildlog.job_secrets where job_id = 6604'), '1', 'the value is remembered, sealed');

# ---- numbered parts cutting a secret: a live reader sees pieces; the
# aggregated log and the archive are clean
my $w = token(6602, 'write');
for my $p ([ 0, 'pw=' . substr($secret{parts}, 0, 7), 0 ], [ 1, substr($secret{parts}, 7) . " end\n", 1 ])
{
	($st) = http_request('-X', 'PUT', '-H', "Authorization: Bearer $w", '-H', 'Content-Type: application/json',
		'--data-binary', encode_json({ '@type' => 'log_part', encoding => 'base64',
				content => encode_base64($p->[1], ''), final => $p->[2] ? JSON::PP::true : JSON::PP::false }),
		"$base/jobs/6602/parts/$p->[0]");
	is($st, 200, "part $p->[0] stored");
}
wait_purged($node, 6602, 6602, 'job 6602');
my ($headers, $object) = object_get($node, 6602);
is($object, "pw=*** end\n", 'the archived object holds *** for the secret cut across two parts');
is(query('select count(*) from buildlog.job_secrets where job_id = 6602'), '0', 'the purged log\'s secrets are dropped');
wait_purged($node, 6601, 6601, 'job 6601');
(undef, $object) = object_get($node, 6601);
is(leaks($object, $secret{stream}), '', 'the stream\'s object holds no piece of its secret');

# ---- deliveries kept aside: masked with the secrets of the job they name
fresh_queues($node, 'tq.s', 0);
publish_input(qq({"id": 6603, "number": "bad", "log": "leak $secret{rejected} here"}\n)
	  . qq({"id": 6603, "number": -1, "encoding": "base64", "log": ") . encode_base64("xy $secret{rejected}\n", '') . qq("}\n),
	'--queue', 'tq.s', '--stdin');
use_queues($node, 'tq.s');
wait_query($node, q(select count(*) from buildlog.rejected_parts where queue = 'tq.s'), '2', 'both deliveries are kept aside');
my $bodies = query(q(select string_agg(convert_from(body, 'UTF8'), E'\n' order by id) from buildlog.rejected_parts where queue = 'tq.s'));
like($bodies, qr/leak \*\*\* here/, 'the plain secret in a rejected body is ***');
is(index($bodies, $secret{rejected}), -1, 'no rejected body holds the secret');
my @logs = $bodies =~ /"log": "([^"]*)"/g;
like($logs[1] // '', qr/\*\*\*/, 'the base64 form of the secret in a rejected body is ***');
is(index($logs[1] // '', substr(encode_base64("xy $secret{rejected}\n", ''), 4, 12)), -1, 'no whole base64 group of the secret is left');

# ---- nothing in the server log
my $log = slurp_file($node->logfile);
for my $name (sort keys %secret)
{
	is(leaks($log, $secret{$name}), '', "no piece of the $name secret in the server log");
}

done_testing();
