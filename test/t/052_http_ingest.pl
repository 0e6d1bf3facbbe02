# Token-scoped ingest over HTTP: issue_token() signs job tokens;
# PUT /jobs/{id}/parts/{number} (travis-logs' log_part) and
# POST /jobs/{id}/parts with a write token store a batch of travis-worker
# messages through the one ingest path (answered after the commit, the log
# exact, live watchers woken); forged, expired, other-job, wrong-scope and
# after-final tokens are refused (401/403) before the body is read, bad
# content answers 400 naming the line and stores nothing, oversized bodies
# 413, other types 415; the token and its key never reach the server log.
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use MIME::Base64;

my $secrets = PostgreSQL::Test::Utils::tempdir();
my $key = 'k3y-' . join('', map { sprintf('%02x', int(rand(256))) } 1 .. 24);
open(my $fh, '>', "$secrets/token.key") or die $!;
print $fh "$key\n";
close($fh);
chmod 0600, "$secrets/token.key";

my ($node, $base) = http_node('ingest', qq(
buildlog.http_token_key_file = '$secrets/token.key'
buildlog.http_max_body = '64kB'
buildlog.aggregate_delay = '1h'
));
my $tmp = PostgreSQL::Test::Utils::tempdir();

sub token { return $node->safe_psql('postgres', "select buildlog.issue_token($_[0], '$_[1]', '" . ($_[2] // '1 hour') . "')"); }

# post(job, token, body, extra curl args...): (status, problem or answer as a hash)
sub post
{
	my ($job, $token, $body, @extra) = @_;
	my $type = 'application/x-ndjson';
	($type, @extra) = @extra if @extra && $extra[0] =~ m{^\w+/};
	open(my $b, '>:raw', "$tmp/body") or die $!;
	print $b $body;
	close($b);
	my ($code) = run_command([ 'curl', '-s', '-o', "$tmp/answer", '-w', '%{http_code}', '-X', 'POST',
			(defined $token ? ('-H', "Authorization: Bearer $token") : ()),
			'-H', "Content-Type: $type", @extra, '--data-binary', "\@$tmp/body",
			"$base/jobs/$job/parts" ]);
	my $answer = -s "$tmp/answer" ? eval { decode_json(slurp_file("$tmp/answer")) } // {} : {};
	return ($code, $answer);
}
sub msg { my ($job, $n, $log, $final) = @_; return encode_json({ id => $job, number => $n, log => $log, final => $final ? JSON::PP::true : JSON::PP::false }) . "\n"; }

# tokens
my $write = token(10, 'write');
like($write, qr/^bl2\.10\.write\.\d+\.\d+\.[A-Za-z0-9_-]{43}$/, 'a write token: bl2.<job>.<scope>.<issued>.<expiry>.<MAC>');
my ($rc, $out, $err) = $node->psql('postgres', "select buildlog.issue_token(10, 'root')");
like($err, qr/unknown token scope "root"/, 'an unknown scope is refused');
($rc, $out, $err) = $node->psql('postgres', "select buildlog.issue_token(10, 'write', '31 days')");
like($err, qr/between 1 second and 30 days/, 'a ttl over 30 days is refused');
$node->safe_psql('postgres', 'create role runner_service login');
($rc, $out, $err) = $node->psql('postgres', "set role runner_service; select buildlog.issue_token(10, 'write')");
like($err, qr/permission denied for (function issue_token|schema buildlog)/, 'issue_token is not open to PUBLIC');

# a batch, plain and base64, out of order
my $body = msg(10, 1, "two\n") . msg(10, 0, "one \x{e9}\n") . "\n"
  . encode_json({ id => 10, number => 2, log => encode_base64("three\n", ''), encoding => 'base64' }) . "\n";
my ($code, $answer) = post(10, $write, $body);
is($code, '200', 'POST a batch with a write token: 200');
is_deeply([ $answer->{parts}, $answer->{replaced} ], [ 3, 0 ], 'three parts stored, none replaced');
my $log = $node->safe_psql('postgres', 'select buildlog.log(10)');
my $want = "one \x{e9}\ntwo\nthree\n";
utf8::encode($want);
is($log, $want, 'the log, in number order, base64 decoded');

# bad content: 400 naming the line, nothing stored
($code, $answer) = post(10, $write, msg(10, 3, "four\n") . "{not json\n");
is($code, '400', 'a malformed line: 400');
like($answer->{detail}, qr/^line 2: .*nothing was stored/, 'the detail names the line');
is($node->safe_psql('postgres', 'select count(*) from buildlog.log_parts where job_id = 10 and number = 3'), '0',
	'and the good line before it was not stored either');
($code, $answer) = post(10, $write, msg(11, 0, "x\n"));
is("$code|" . ($answer->{detail} =~ /job 11, not job 10/ ? 'named' : $answer->{detail}), '400|named',
	'a line for another job: 400');
($code) = post(10, $write, '');
is($code, '400', 'an empty body: 400');

# refused tokens, before any body is read
my @refusals = (
	[ undef, 401, 'no token' ],
	[ 'garbage', 401, 'not a token' ],
	[ substr($write, 0, -1) . (substr($write, -1) eq 'A' ? 'B' : 'A'), 401, 'a forged MAC' ],
	[ $write =~ s/^bl2\.10\./bl2.11./r, 401, 'another job id under the same MAC' ],
	[ token(11, 'write'), 403, 'a token of another job' ],
	[ token(10, 'read'), 403, 'a read token' ],
);
for my $r (@refusals)
{
	($code, $answer) = post(10, $r->[0], msg(10, 3, "four\n"));
	is($code, $r->[1], "$r->[2]: $r->[1]");
}
my $short = token(10, 'write', '1 second');
# expiry is a time (Unix seconds, in the token): wait until it has passed
my ($expiry) = $short =~ /^bl2\.10\.write\.\d+\.(\d+)\./ or die "no expiry in $short";
ok(wait_until("the clock past the token's expiry $expiry", sub { (time > $expiry + 1, time) }),
	'the short token has expired by the clock');
($code, $answer) = post(10, $short, msg(10, 3, "four\n"));
is("$code|$answer->{detail}", '401|The token has expired.', 'an expired token: 401');
is($node->safe_psql('postgres', 'select count(*) from buildlog.log_parts where job_id = 10 and number = 3'), '0',
	'no refused request stored anything');
($code, $answer) = post(10, $write, msg(10, 3, "four\n"), 'text/plain');
is($code, '415', 'text/plain: 415');

# sizes: refused on Content-Length before the body, or while reading a chunked one
my $big = msg(10, 3, 'x' x 70000);
($code) = post(10, $write, $big);
is($code, '413', 'a body over buildlog.http_max_body: 413');
($code) = post(10, $write, $big, '-H', 'Transfer-Encoding: chunked');
like($code, qr/^(413|000)$/, "the same, chunked (no Content-Length): refused while reading ($code: 413, or the connection closed under curl's upload)");
is($node->safe_psql('postgres', 'select count(*) from buildlog.log_parts where job_id = 10 and number = 3'), '0',
	'nothing of them stored');

# an admin token works for any scope; the final part ends write tokens
($code) = post(10, $write, msg(10, 3, "four\n") . msg(10, 4, '', 1));
is($code, '200', 'the last batch with the final part: 200');
($code, $answer) = post(10, $write, msg(10, 5, "late\n"));
is("$code|" . ($answer->{detail} // ''), '403|The job\'s final part is stored: its write tokens are no longer valid.',
	'after the final part a write token is refused');
($code) = post(10, token(10, 'admin'), msg(10, 5, "late\n"));
is($code, '200', 'an admin token still writes');

# PUT /jobs/{id}/parts/{number}: travis-logs' log_part body
sub put
{
	my ($job, $number, $token, $body, $type) = @_;
	open(my $b, '>:raw', "$tmp/body") or die $!;
	print $b $body;
	close($b);
	my ($code) = run_command([ 'curl', '-s', '-o', "$tmp/answer", '-w', '%{http_code}', '-X', 'PUT',
			'-H', "Authorization: Bearer $token", '-H', 'Content-Type: ' . ($type // 'application/json'),
			'--data-binary', "\@$tmp/body", ($number =~ /^(|\?.*)$/ ? "$base/jobs/$job/log$number" : "$base/jobs/$job/parts/$number") ]);
	my $answer = -s "$tmp/answer" ? eval { decode_json(slurp_file("$tmp/answer")) } // {} : {};
	return ($code, $answer);
}
my $w20 = token(20, 'write');
($code, $answer) = put(20, 1, $w20, encode_json({ '@type' => 'log_part', encoding => 'base64',
			content => encode_base64("second\n", ''), final => JSON::PP::false }));
is("$code|$answer->{parts}", '200|1', 'PUT parts/1 with a base64 log_part: 200');
($code) = put(20, 0, $w20, encode_json({ '@type' => 'log_part', content => "first \xff\n" }));
is($code, '200', 'PUT parts/0 with plain content');
($code) = put(20, 'last', $w20, encode_json({ '@type' => 'log_part', content => '', final => JSON::PP::true }));
is($code, '200', 'PUT parts/last, final');
is($node->safe_psql('postgres', q{select string_agg(number || ':' || final, ',' order by number) from buildlog.parts(20)}),
	'0:false,1:false,2147483647:true', 'stored as 0, 1 and travis\' "last"');
is($node->safe_psql('postgres', 'select buildlog.log(20)'), "first \x{c3}\x{bf}\nsecond\n", 'the content, decoded');
# the body is read by jansson: its refusals name the fault and its position
for my $bad ([ '{not json', q(not valid JSON: string or '}' expected near 'not' (line 1, column 4, position 4)) ],
	[ '{"content":"\\ud800"}', q(invalid Unicode '\uD800') ], [ qq({"content":"\xff"}), 'unable to decode byte 0xff' ],
	[ '{"content":"","x":{"k\\u0000":1}}', 'NUL byte in object key not supported' ],
	[ '{"content":"","x":1e400}', 'real number overflow' ], [ qq({"content":""}\0), 'raw NUL byte at byte offset 14' ],
	[ '[1]', 'must be a JSON object' ],
	[ '{"@type":"job","content":""}', 'not "log_part"' ], [ '{"content":5}', '"content" must be a string' ],
	[ '{"content":"a","encoding":"base64"}', 'not valid base64' ], [ '{"content":"","final":"yes"}', '"final" must be true or false' ])
{
	(my $shown = $bad->[0]) =~ s/[^\x20-\x7e]/?/g;
	($code, $answer) = put(21, 0, token(21, 'write'), $bad->[0]);
	like("$code|" . ($answer->{detail} // ''), qr/^400\|.*\Q$bad->[1]\E/, "PUT $shown: 400 ($bad->[1])");
}
# "\u0000" in the content is read, and stored as U+FFFD (counted); a duplicated key means its last value
($code, $answer) = put(22, 0, token(22, 'write'), '{"@type":"log_part","content":"x","content":"a\\u0000b"}');
is("$code|$answer->{replaced}", '200|1', 'PUT with \u0000 in the content: 200, one replacement');
is($node->safe_psql('postgres', 'select buildlog.log(22)'), "a\x{ef}\x{bf}\x{bd}b", 'stored with U+FFFD, the last "content"');
($code) = put(21, 'x', token(21, 'write'), '{"content":""}');
is($code, '400', 'PUT parts/x: 400');
is($node->safe_psql('postgres', 'select count(*) from buildlog.log_parts where job_id = 21'), '0', 'nothing stored for them');
($code) = put(20, 3, $w20, '{"content":"late"}');
is($code, '403', 'PUT after the final part with a write token: 403');

# PUT /jobs/{id}/log with an admin token: set_content, or the removal
my $a20 = token(20, 'admin');
($code, $answer) = put(20, '', $a20, "replaced \xff\n", 'text/plain; charset=utf-8');
is("$code|" . ($answer->{removed} ? 'removed' : 'kept'), '200|kept', 'PUT /jobs/20/log with an admin token: 200');
is($node->safe_psql('postgres', 'select buildlog.log(20)'), "replaced \x{ef}\x{bf}\x{bd}\n",
	'the new content, invalid UTF-8 replaced, pending parts gone');
($code) = put(20, '', $w20, "x\n", 'text/plain');
is($code, '403', 'a write token cannot replace the log');
($code) = put(20, '', $a20, "x\n", 'application/json');
is($code, '415', 'the new log must be text/plain');
($code) = put(20, '?removed_by=0', $a20, '', 'text/plain');
is($code, '400', 'removed_by=0: 400');
($code, $answer) = put(20, '?removed_by=7', $a20, '', 'text/plain');
is("$code|" . ($answer->{removed} ? 'removed' : 'kept'), '200|removed', 'PUT /jobs/20/log?removed_by=7: removed');
is($node->safe_psql('postgres', 'select removed_by from buildlog.logs where job_id = 20'), '7', 'removed_by recorded');

# reads need a token when buildlog.http_read_tokens is on
$node->safe_psql('postgres', "alter system set buildlog.http_read_tokens = on; select pg_reload_conf()");
sub get_code { my ($url, @h) = @_; my ($c) = run_command([ 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', (map { ('-H', $_) } @h), $url ]); return $c; }
ok(wait_until('the reload to reach the worker', sub { get_code("$base/jobs/10/log") eq '401' }), 'a read without a token: 401');
my $r10 = token(10, 'read');
is(get_code("$base/jobs/10/log", "Authorization: Bearer $r10"), '200', 'with a read token: 200');
is(get_code("$base/jobs/10/log?token=$r10"), '200', 'with ?token= (EventSource cannot send headers): 200');
is(get_code("$base/jobs/10/parts", "Authorization: Bearer $write"), '200', 'a write token of the job reads too');
is(get_code("$base/jobs/10/log", 'Authorization: Bearer ' . token(11, 'read')), '403', 'another job\'s token: 403');
is(get_code("$base/jobs/10/events?token=" . token(11, 'read')), '403', 'the same for the event stream');
is(get_code("$base/healthz"), '200', '/healthz stays open');
$node->safe_psql('postgres', "alter system reset buildlog.http_read_tokens; select pg_reload_conf()");
ok(wait_until('reads open again', sub { get_code("$base/jobs/10/log") eq '200' }), 'reads are public again once it is off');

# the token and the key never in the log
my $serverlog = slurp_file($node->logfile);
unlike($serverlog, qr/\Q$key\E/, 'the key never appears in the server log');
my ($mac) = $write =~ /\.([A-Za-z0-9_-]{43})$/;
unlike($serverlog, qr/\Q$mac\E/, 'no token MAC appears in the server log (except issue_token statements: none)');
unlike($serverlog, qr/terminated by signal/, 'the HTTP worker never crashed');
$node->stop;
done_testing();
