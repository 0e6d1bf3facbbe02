# Streaming ingest: POST /jobs/{id}/stream cuts one chunked body
# into parts while the request is open (stored before its end, also when no
# byte follows: the flush timer), at UTF-8 boundaries (a character split
# across chunks is stored whole); a clean end marks the log final, ?final=0
# not; a connection killed mid-upload keeps what it delivered and the
# runner resumes from the offset HEAD tells: the log equals the source byte
# for byte; a wrong offset answers 416 with the offset held; tokens 401/403,
# 415, 411 before the body; invalid UTF-8 and NUL become U+FFFD, counted; a
# malformed chunked body 400.
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IO::Socket::INET;
use IO::Select;
use JSON::PP;
use Digest::MD5 qw(md5_hex);
use IPC::Run;

my $key_file = token_key_file();
my ($node, $base, $port) = http_node('stream', qq(
buildlog.http_token_key_file = '$key_file'
buildlog.http_flush_ms = 100
buildlog.aggregate_delay = '1h'
));
sub token { return $node->safe_psql('postgres', "select buildlog.issue_token($_[0], '$_[1]')"); }
sub query { return $node->safe_psql('postgres', $_[0]); }

sub open_stream { return stream_open($port, @_); }
sub stored_md5 { return query("select md5(convert_to(coalesce(buildlog.log($_[0]), ''), 'UTF8')) || ' ' || coalesce(octet_length(buildlog.log($_[0])), 0)"); }
sub md5_of { return md5_hex($_[0]) . ' ' . length($_[0]); }
sub head_offset
{
	my ($job, $token) = @_;
	my ($h) = run_command([ 'curl', '-s', '-I', '-H', "Authorization: Bearer $token", "$base/jobs/$job/stream" ]);
	return $h =~ /^Upload-Offset: (\d+)/mi ? $1 : "none: $h";
}

# parts stored while the request is open, a character split across chunks
my $t1 = token(1, 'write');
my $tmp = PostgreSQL::Test::Utils::tempdir();
my $watch = IPC::Run::start([ 'curl', '-sN', "$base/jobs/1/events" ], '>', "$tmp/events");
my $s = open_stream(1, $t1);
stream_chunk($s, "hello ");
wait_query($node, "select string_agg(content, '' order by number) from buildlog.log_parts where job_id = 1", 'hello ',
	'the first bytes are stored while the request is open (no more bytes sent: the flush timer)');
ok(wait_until('the SSE watcher to get the part', sub { -e "$tmp/events" && slurp_file("$tmp/events") =~ /"content":"hello "/ }),
	'an SSE watcher gets it while the stream is open');
stream_chunk($s, "w\xc3");
wait_query($node, "select buildlog.log(1)", 'hello w', 'the complete character before the split is stored');
ok(!IO::Select->new($s)->can_read(0), 'no answer before the body ends');
stream_chunk($s, "\xb6rld\n");
my ($code, $head, $body) = stream_finish($s);
is($code, 200, 'the stream is answered 200 after its end');
my $a = decode_json($body);
is_deeply([ @$a{qw(bytes offset replaced)}, $a->{final} ? 1 : 0 ], [ 13, 13, 0, 1 ], 'answer: 13 bytes stored, offset 13, final');
is(stored_md5(1), md5_of("hello w\xc3\xb6rld\n"), 'the log is the bytes sent (the split character whole)');
is(query("select count(*) filter (where final) || ' ' || (count(distinct number) = count(*)) || ' ' || (max(number) filter (where final) = max(number)) || ' ' || (count(*) >= 3) from buildlog.log_parts where job_id = 1"),
	'1 true true true', 'at least three parts, numbered once each, the last one final');
my $o = open_stream(1, $t1);
my ($c2) = stream_answer($o);
is($c2, 403, 'the write token is over once the stream marked the log final');

# ?final=0, then resumed from the offset HEAD tells; wrong offsets 416
my $t2 = token(2, 'write');
($code, undef, $body) = stream_finish(do { my $x = open_stream(2, $t2, '?final=0'); stream_chunk($x, 'abc'); $x });
is($code . ' ' . (decode_json($body)->{final} ? 'final' : 'open'), '200 open', '?final=0: stored, not final');
is(query("select count(*) filter (where final) from buildlog.log_parts where job_id = 2"), '0', 'no final part');
is(head_offset(2, $t2), 3, 'HEAD tells the offset held: 3');
for my $bad ([ '', 'no offset (0)' ], [ '?offset=5', '?offset=5' ], [ '', 'Content-Range 1-', 'Content-Range: bytes 1-*/*' ])
{
	my ($suffix, $what, @range) = @$bad;
	my $x = open_stream(2, $t2, $suffix, 'Content-Type: text/plain', 'Transfer-Encoding: chunked', @range);
	my ($c, $h) = stream_answer($x);
	like("$c $h", qr/^416 .*Upload-Offset: 3/s, "$what: 416 telling offset 3");
}
($code) = stream_finish(do { my $x = open_stream(2, $t2, '', 'Content-Type: text/plain', 'Transfer-Encoding: chunked', 'Content-Range: bytes 3-*/*'); stream_chunk($x, 'def'); $x });
is($code, 200, 'resumed at offset 3');
is(stored_md5(2), md5_of('abcdef'), 'the log is abcdef: nothing twice');

# killed mid-upload, resumed from the offset told: the source byte for byte
my $t3 = token(3, 'write');
my $src = join('', map { "line $_ \xe2\x82\xac caf\xc3\xa9 " . ('x' x ($_ % 50)) . "\n" } 1 .. 4000);
my $cut = index($src, "\xe2\x82\xac", 100_000) + 2;	# the kill lands inside a character
$s = open_stream(3, $t3);
for (my $i = 0; $i < $cut; $i += 7000) { stream_chunk($s, substr($src, $i, ($i + 7000 > $cut ? $cut - $i : 7000))); }
wait_query($node, "select coalesce(sum(octet_length(content)), 0) >= 90000 from buildlog.log_parts where job_id = 3", 't',
	'parts of the big upload stored while it is open');
close($s);
ok(wait_until('the cut-off stream closed by the server', sub {
			my ($m) = run_command([ 'curl', '-s', "$base/metrics" ]); $m =~ /^buildlog_http_uploads 0$/m }), 'the upload is over');
my $held = head_offset(3, $t3);
ok($held <= $cut - 2 && $held > 90000, "offset held $held: at most the complete characters sent ($cut - 2)");
is(query("select count(*) filter (where final) from buildlog.log_parts where job_id = 3"), '0', 'a cut-off body is not final');
$s = open_stream(3, $t3, "?offset=$held");
for (my $i = $held; $i < length $src; $i += 9000) { stream_chunk($s, substr($src, $i, 9000)); }
($code) = stream_finish($s);
is($code, 200, 'the resumed upload is answered 200');
is(stored_md5(3), md5_of($src), 'the log equals the source byte for byte: nothing lost, nothing twice');
is(query("select count(*) - count(distinct number) from buildlog.log_parts where job_id = 3"), '0', 'no number twice');

# refusals before the body
my %r;
($r{none}) = stream_answer(open_stream(4, undef));
($r{other}) = stream_answer(open_stream(4, $t3));
($r{read}) = stream_answer(open_stream(4, token(4, 'read')));
my $t4 = token(4, 'write');
($r{type}) = stream_answer(open_stream(4, $t4, '', 'Content-Type: application/json', 'Transfer-Encoding: chunked'));
($r{length}) = stream_answer(open_stream(4, $t4, '', 'Content-Type: text/plain'));
is_deeply(\%r, { none => 401, other => 403, read => 403, type => 415, length => 411 },
	'no token 401, another job\'s or a read token 403, JSON 415, no length 411');

# invalid UTF-8 and NUL cleaned and counted; a malformed chunked body 400
($code, undef, $body) = stream_finish(do { my $x = open_stream(4, $t4, '?final=0'); stream_chunk($x, "a\xffb\x00c"); $x });
is($code . ' ' . decode_json($body)->{replaced}, '200 2', 'invalid byte and NUL: 2 replacements');
is(stored_md5(4), md5_of("a\xef\xbf\xbdb\xef\xbf\xbdc"), 'stored as U+FFFD');
$s = open_stream(4, $t4, '?offset=5');	# raw bytes held, not the 9 stored
print $s "zz\r\nnot a chunk\r\n";
($code) = stream_answer($s);
is($code, 400, 'a malformed chunked body answers 400');
is(query("select count(*) filter (where final) from buildlog.log_parts where job_id = 4"), '0', 'and marks nothing final');
my $t5 = token(5, 'write');
($body) = run_command([ 'sh', '-c', "printf 'via curl\\n' | curl -s -T - -H 'Authorization: Bearer $t5' -H 'Content-Type: text/plain' $base/jobs/5/stream" ]);
like($body, qr/"bytes":9,.*"final":true/, 'curl -T - (chunked, Expect: 100-continue) streams stdin: 9 bytes, final');
is(stored_md5(5), md5_of("via curl\n"), 'and the log is its bytes');
$watch->kill_kill;
unlike(slurp_file($node->logfile), qr/terminated by signal/, 'the HTTP worker never crashed');
done_testing();
