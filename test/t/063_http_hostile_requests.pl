# Requests a front proxy could read differently, or that a lenient parser
# would guess at, are refused: a body framed two ways (two different
# Content-Length values, Content-Length with Transfer-Encoding, a transfer
# coding other than chunked) answers 400 before any of it is read; numbers
# and media types are parsed exactly (`?after= 5`, `+5`, `5%00`,
# `removed_by=5abc`, `application/x-ndjsonfoo` refused; `bearer` and media
# type parameters accepted).  `?deansi=1` ends an unterminated escape at its
# line and never cuts a character.  A refusal decided mid-body reaches the
# client once the body ends: 413 for a chunked body past the limit, 409 for
# a stream upload another request took over.  Stream uploads have
# backpressure: 40 MB piped at full speed keep the worker's memory bounded
# and arrive byte for byte; buildlog.http_max_stream_bytes caps a job.
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Utils;
use Test::More;
use IO::Socket::INET;
use IO::Select;
use JSON::PP;
use IPC::Run;
use Digest::MD5 qw(md5_hex);

my $key_file = token_key_file();
my ($node, $base, $port) = http_node('hostile_requests', qq(
buildlog.http_token_key_file = '$key_file'
buildlog.http_max_body = '64kB'
buildlog.http_flush_ms = 100
buildlog.aggregate_delay = '1h'
));
sub token { return $node->safe_psql('postgres', "select buildlog.issue_token($_[0], '$_[1]')"); }
sub query { return $node->safe_psql('postgres', $_[0]); }

# raw(REQUEST): the answer to a request sent as bytes: (status, head, body, closed)
sub raw
{
	my ($req) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp') or die $!;
	print $s $req;
	my ($buf, $sel, $closed) = ('', IO::Select->new($s), 0);
	while ($sel->can_read(30))
	{
		my $n = sysread($s, $buf, 65536, length $buf);
		if (!$n) { $closed = 1; last; }
		last if $buf =~ /\r\n\r\n/ && $buf =~ /Content-Length: (\d+)/i && length($buf) >= $+[0] + $1 + 4
		  && $buf !~ /^Connection: close/mi;
	}
	close $s;
	my ($head, $body) = split /\r\n\r\n/, $buf, 2;
	return ((($head // '') =~ m{^HTTP/1\.\d (\d+)})[0] // 0, $head // '', $body // '', $closed);
}

# a body framed two ways: 400 before any of it is read, the connection closed
my $t1 = token(1, 'write');
my $line = qq({"id":1,"number":0,"log":"smuggled?\\n"}\n);
my $post = "POST /jobs/1/parts HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer $t1\r\nContent-Type: application/x-ndjson\r\n";
for my $case ([ "Content-Length: 5\r\nContent-Length: " . length($line), 'different values' ],
	[ 'Content-Length: ' . length($line) . "\r\nTransfer-Encoding: chunked", 'both Content-Length and Transfer-Encoding' ],
	[ "Transfer-Encoding: gzip, chunked", 'only transfer coding accepted' ],
	[ "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", 'only transfer coding accepted' ])
{
	my ($framing, $why) = @$case;
	my ($st, $head, $body, $closed) = raw("$post$framing\r\n\r\n$line");
	is($st, 400, "$why: 400");
	like($body, qr/\Q$why\E/, "$why: the problem says so");
	ok($closed, "$why: the connection is closed");
}
my ($st, $head, $body) = raw("${post}Content-Length: " . length($line) . "\r\nContent-Length: " . length($line) . "\r\n\r\n$line");
is($st, 200, 'the same Content-Length twice is one length: 200');
($st) = raw("${post}Content-Length: -1\r\n\r\n$line");
is($st, 400, 'Content-Length: -1: 400 (libmicrohttpd\'s own answer)');
is(query('select count(*) from buildlog.log_parts where job_id = 1'), '1', 'only the well-framed part was stored');

# numbers, tokens and media types parsed exactly
my @get = ('curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10');
for my $after ('%205', '%2B5', '5%00', '5%20', '0x5', '')
{
	my ($code) = run_command([ @get, "$base/jobs/1/parts?after=$after" ]);
	is($code, '400', "/parts?after=$after: 400");
	($code) = run_command([ @get, '--max-time', '2', "$base/jobs/1/events?after=$after" ]);
	is($code, '400', "/events?after=$after: 400");
}
my ($code) = run_command([ @get, "$base/jobs/1/parts?after=-1" ]);
is($code, '200', '/parts?after=-1: 200');
($code) = run_command([ @get, "$base/jobs/1/parts?after=0&x=%00" ]);
is($code, '400', 'any argument holding a NUL: 400');
my $post_line = sub {
	my ($type, $auth) = @_;
	my ($c) = run_command([ @get, '-X', 'POST', '-H', "Authorization: $auth", '-H', "Content-Type: $type",
			'--data-binary', qq({"id":1,"number":1,"log":"x"}), "$base/jobs/1/parts" ]);
	return $c;
};
is($post_line->('application/x-ndjsonfoo', "Bearer $t1"), '415', 'application/x-ndjsonfoo: 415 (no prefix match)');
is($post_line->('application/jsonx', "Bearer $t1"), '415', 'application/jsonx: 415');
is($post_line->('Application/X-NDJSON; charset=utf-8', "bearer $t1"), '200',
	'a media type in another case with a parameter, and the scheme "bearer": 200');
my $admin = token(2, 'admin');
for my $by ('5abc', '0', '-3', '%2B5', '9223372036854775808')
{
	my ($c) = run_command([ @get, '-X', 'PUT', '-H', "Authorization: Bearer $admin", '-H', 'Content-Type: text/plain',
			'--data-binary', '', "$base/jobs/2/log?removed_by=$by" ]);
	is($c, '400', "removed_by=$by: 400");
}

# ?deansi=1: an escape ends at its line, a character is never cut
query(q{select buildlog.write_parts('{3}', '{0}', array[E'ok\n\x1b]8;;unterminated link\nERROR: tests failed\n\x1b[31;1\nafter \x1bé \x1b[1;€m end\n'], '{t}')});
my $tmp = PostgreSQL::Test::Utils::tempdir();
run_command([ 'curl', '-s', '--max-time', '10', '-o', "$tmp/plain", "$base/jobs/3/log?deansi=1" ]);
my $plain = slurp_file("$tmp/plain");
my $copy = $plain;
ok(utf8::decode($copy), 'the answer is valid UTF-8');
is($plain, "ok\n\nERROR: tests failed\n\nafter \xc3\xa9 \xe2\x82\xacm end\n",
	'an unterminated OSC and CSI end at their newline; ESC before a multi-byte character drops only ESC');

# a chunked body past buildlog.http_max_body: the 413 comes once the body ends
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp') or die $!;
print $s "POST /jobs/4/parts HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " . token(4, 'write')
  . "\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n";
my $chunk = qq({"id":4,"number":0,"log":") . ('y' x 16000) . qq("}\n);
print $s sprintf("%x\r\n", length $chunk), $chunk, "\r\n" for 1 .. 8;
print $s "0\r\n\r\n";
my ($buf, $sel) = ('', IO::Select->new($s));
while ($sel->can_read(30)) { last unless sysread($s, $buf, 65536, length $buf); }
close $s;
like($buf, qr{^HTTP/1\.1 413 }, 'a chunked body of 128 kB over 64 kB: 413 at its end, not a cut connection');
like($buf, qr/http_max_body/, 'naming the setting');
is(query('select count(*) from buildlog.log_parts where job_id = 4'), '0', 'nothing of it stored');

# a stream upload taken over by another request: 409 once its body ends
my $t5 = token(5, 'write');
sub open_upload
{
	my ($suffix, @headers) = @_;
	my $u = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp') or die $!;
	$u->autoflush(1);
	print $u "POST /jobs/5/stream$suffix HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer $t5\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
	  . join('', map { "$_\r\n" } @headers) . "\r\n";
	return $u;
}
sub chunk { my ($u, $bytes) = @_; print $u sprintf("%x\r\n", length $bytes), $bytes, "\r\n"; }
sub answer
{
	my ($u) = @_;
	my ($b, $sl) = ('', IO::Select->new($u));
	while ($sl->can_read(30)) { last unless sysread($u, $b, 65536, length $b); last if $b =~ /\r\n\r\n.*\n/s; }
	return $b;
}
my $first = open_upload('?final=0');
chunk($first, "first\n");
wait_query($node, 'select count(*) from buildlog.log_parts where job_id = 5', '1', 'the first upload\'s bytes stored');
my $second = open_upload('', 'Content-Range: bytes 6-*/*');
chunk($second, "second\n");
print $second "0\r\n\r\n";
like(answer($second), qr{^HTTP/1\.1 200 }, 'the second request resumes the job\'s stream: 200');
chunk($first, "late\n");
print $first "0\r\n\r\n";
my $a1 = answer($first);
like($a1, qr{^HTTP/1\.1 409 }, 'the first, taken over, gets 409 at the end of its body (not a cut connection)');
like($a1, qr/Another request resumed/, 'saying why');
is(query(q{select string_agg(content, '' order by number) from buildlog.log_parts where job_id = 5}), "first\nsecond\n",
	'its bytes after the takeover were not stored');

# backpressure: 40 MB piped at full speed into one stream upload
my $worker = query(q{select pid from pg_stat_activity where backend_type = 'buildlog http'});
my $src = "$tmp/src";
open(my $out, '>', $src) or die $!;
print $out join('', map { sprintf("line %08d %s\n", $_, 'x' x 60) } 1 .. 550_000);
close $out;
my $size = -s $src;
my $t6 = token(6, 'write');
my $rss0 = rss_anon($worker);
my $up = IPC::Run::start([ 'curl', '-s', '--max-time', '300', '-o', "$tmp/up.out", '-H', "Authorization: Bearer $t6",
		'-H', 'Content-Type: text/plain', '-H', 'Transfer-Encoding: chunked', '--data-binary', "\@$src", "$base/jobs/6/stream" ]);
my $peak = $rss0;
ok(wait_until('the upload of 40 MB to end', sub { my $r = rss_anon($worker); $peak = $r if $r > $peak; !$up->pumpable },
		timeout => 300), "$size bytes piped into one stream upload");
$up->finish;
like(slurp_file("$tmp/up.out"), qr/"received":$size\b/, 'the upload is answered with every byte received');
cmp_ok($peak - $rss0, '<', 32 * 1024,
	sprintf('the worker grew by %.1f MB while %.0f MB came in as fast as the client could send', ($peak - $rss0) / 1024, $size / 1e6));
is(query(q{select md5(string_agg(content, '' order by number)) from buildlog.log_parts where job_id = 6}),
	md5_hex(slurp_file($src)), 'stored byte for byte');

# a job's stream capped: buildlog.http_max_stream_bytes
$node->append_conf('postgresql.conf', "buildlog.http_max_stream_bytes = '1MB'\n");
$node->reload;
my $t8 = token(8, 'write');
ok(wait_until('the cap to be in force', sub {
			my ($o) = run_command([ 'curl', '-s', '--max-time', '60', '-H', "Authorization: Bearer $t8", '-H', 'Content-Type: text/plain',
					'-H', 'Transfer-Encoding: chunked', '--data-binary', "\@$src", "$base/jobs/8/stream" ]);
			$o =~ /http_max_stream_bytes/ }), 'an upload past the cap of its job answers 413 naming the setting');
cmp_ok(query(q{select coalesce(sum(octet_length(content)), 0) from buildlog.log_parts where job_id = 8}), '<=', 1024 * 1024,
	'the job holds at most the cap');

done_testing();
