# Stream offsets come from the database, never from the log's text or the
# HTTP worker's memory: HEAD /jobs/{id}/stream on a 64 MB log reads no text
# (the worker's peak memory stays put); after a kill -9 of the HTTP worker
# (the whole cluster restarts) a runner is told the exact raw offset of a
# stream whose bytes were cleaned to U+FFFD, and resumes it; a HEAD while
# a stream has bytes not yet stored waits for them (the stream pauses and
# goes on after); a resume at the right offset takes the job's stream over
# from a request still open (409 for that one) and nothing is doubled.
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Utils;
use Test::More;
use IO::Socket::INET;
use IO::Select;
use JSON::PP;
use Digest::MD5 qw(md5_hex);

my $key_file = token_key_file();
my ($node, $base, $port) = http_node('stream_offsets', qq(
buildlog.http_token_key_file = '$key_file'
buildlog.http_flush_ms = 10000
buildlog.aggregate_delay = '1h'
restart_after_crash = on
));
sub query { return $node->safe_psql('postgres', $_[0]); }
sub token { return query("select buildlog.issue_token($_[0], '$_[1]')"); }
sub http_pid { return query(q{select pid from pg_stat_activity where backend_type = 'buildlog http'}); }
sub peak_kb
{
	open my $f, '<', "/proc/$_[0]/status" or return 0;
	my ($kb) = join('', <$f>) =~ /^VmHWM:\s+(\d+)/m;
	return $kb // 0;
}

sub open_stream { return stream_open($port, @_); }
sub head_stream { return http_request('-I', '-H', "Authorization: Bearer $_[1]", "$base/jobs/$_[0]/stream"); }
sub stored_md5 { return query("select md5(convert_to(coalesce(buildlog.log($_[0]), ''), 'UTF8')) || ' ' || coalesce(octet_length(buildlog.log($_[0])), 0)"); }
sub md5_of { return md5_hex($_[0]) . ' ' . length($_[0]); }

# HEAD on a 64 MB log set whole: sizes only, no text read by the worker
query("select buildlog.set_content(21, repeat('0123456789abcdef', 4 * 1024 * 1024))");
my $admin21 = token(21, 'admin');
my $pid = http_pid();
my $peak0 = peak_kb($pid);
my ($st, $h) = head_stream(21, $admin21);
my $size = 64 * 1024 * 1024;
is($st, 409, 'a log not streamed here, with bytes: 409, its raw offset is a range');
is($h->{'upload-offset-range'}, int(($size + 2) / 3) . "-$size", 'the range: a third of the stored size to the stored size');
my $grew = peak_kb($pid) - $peak0;
cmp_ok($grew, '<', 16 * 1024, "the HTTP worker's peak memory grew $grew kB (< 16 MB): the 64 MB text was not read");
is(query("select count(*) from buildlog.stream_offsets"), '0', 'a HEAD stores no offset');

# a stream cleaned to U+FFFD, then kill -9 of the HTTP worker: the exact offset after the restart
my $t22 = token(22, 'write');
my $src = join('', map { "line $_ \xff\xfe caf\xc3\xa9 \x00 end\n" } 1 .. 3000);
my $s = open_stream(22, $t22, '?final=0');
stream_chunk($s, substr($src, $_, 5000)) for map { $_ * 5000 } 0 .. int((length($src) - 1) / 5000);
my ($code, undef, $body) = stream_finish($s);
is($code, 200, 'the stream is stored');
is(decode_json($body)->{offset}, length $src, 'its answer tells the raw offset');
cmp_ok(decode_json($body)->{replaced}, '>', 0, 'bytes were replaced by U+FFFD (stored and raw sizes differ)');
is(query("select raw_bytes from buildlog.stream_offsets where job_id = 22"), length $src,
	'buildlog.stream_offsets holds the raw offset, written with the parts');
kill 'KILL', $pid;
ok(wait_until('the cluster to restart and the HTTP worker to listen', sub {
			my ($out) = run_command([ 'curl', '-s', "$base/healthz" ]);
			$out eq 'ok' }), 'the HTTP service is back after kill -9 of its worker');
isnt(http_pid(), $pid, 'a new HTTP worker');
($st, $h) = head_stream(22, $t22);
is("$st " . ($h->{'upload-offset'} // 'none'), '200 ' . length($src), 'HEAD tells the exact raw offset after the restart');
my $more = "more \xff output\n" x 100;
$s = open_stream(22, $t22, '?offset=' . length $src);
stream_chunk($s, $more);
($code) = stream_finish($s);
is($code, 200, 'the stream resumed at that offset');
(my $clean = $src . $more) =~ s/[\xff\xfe]/\xef\xbf\xbd/g;
$clean =~ s/\x00/\xef\xbf\xbd/g;
is(stored_md5(22), md5_of($clean), 'the log is the cleaned source: nothing lost, nothing twice');

# HEAD while the stream holds bytes not yet stored (the flush is 10 s away)
my $t23 = token(23, 'write');
$s = open_stream(23, $t23, '?final=0');
stream_chunk($s, 'a' x 1000);
ok(wait_until('the worker to take the bytes', sub { http_metric($base, 'buildlog_http_uploads') == 1 }), 'the stream is open');
my $told;
ok(wait_until('HEAD to tell the bytes sent', sub {
			($st, $h) = head_stream(23, $t23);
			$told = $h->{'upload-offset'} // -1;
			$told == 1000 }), "HEAD waited for the stream's bytes: it tells 1000 (last: $told)");
is(query("select raw_bytes from buildlog.stream_offsets where job_id = 23"), '1000', 'they are stored');
stream_chunk($s, 'b' x 500);
($code, undef, $body) = stream_finish($s);
is("$code " . (decode_json($body || '{}')->{offset} // 'none'), '200 1500', 'the stream went on after the HEAD');
is(stored_md5(23), md5_of(('a' x 1000) . ('b' x 500)), 'the log is what was sent');

# a resume at the right offset takes over from a request still open
my $t24 = token(24, 'write');
my $old = open_stream(24, $t24, '?final=0');
stream_chunk($old, 'x' x 700);
ok(wait_until('HEAD to tell 700', sub { ((head_stream(24, $t24))[1]->{'upload-offset'} // -1) == 700 }), 'HEAD tells 700');
my $new = open_stream(24, $t24, '?offset=700');
stream_chunk($new, 'y' x 300);
($code) = stream_finish($new);
is($code, 200, 'the resume at 700 is stored');
stream_chunk($old, 'z' x 50);
($code, my $oh) = stream_finish($old);
is($code, 409, 'the request it took over from is answered 409');
is(stored_md5(24), md5_of(('x' x 700) . ('y' x 300)), 'the log: the old request up to 700, then the new one');
is(query("select raw_bytes from buildlog.stream_offsets where job_id = 24"), '1000', 'the stored offset is 1000');

# a log set whole starts its stream afresh
query("select buildlog.set_content(24, 'new text')");
is(query("select count(*) from buildlog.stream_offsets where job_id = 24"), '0', 'set_content() forgets the stream offset');

done_testing();
