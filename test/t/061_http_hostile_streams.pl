# Event streams against hostile cursors and part numbers: a cursor at the
# top of the number range ends a complete log with one read (no read loop
# that outlives its client), cursors are compared in 64 bits (an unsorted
# one is refused), parts numbered with gaps keep every event's cursor
# bounded (a part that would open a 65th range waits for the missing
# numbers, then comes), and a part after the final one does not hold the end.
# Backpressure: streams of a big log whose clients read nothing hold at most
# about a megabyte each in the worker; a client that reads gets every part
# once and the end.  The listening socket belongs to the postmaster: while the HTTP worker
# restarts no other process can bind its address, and a request sent
# meanwhile is answered by the next worker.
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use JSON::PP;
use IO::Socket::INET;

my ($node, $base, $port) = http_node('hostile_streams', "buildlog.aggregate_delay = '1h'\n");
my $tmp = PostgreSQL::Test::Utils::tempdir();

# curl(ARGS...): (status, body)
sub curl
{
	my ($out) = run_command([ 'curl', '-s', '-S', '--max-time', '30', '-w', '\n%{http_code}', @_ ]);
	my ($body, $status) = $out =~ /\A(.*)\n(\d+)\z/s;
	return ($status // 0, $body // '');
}

# A stream read into a file, and its complete events (BuildlogTest).
sub open_stream { return sse_open(@_) }
sub events { return sse_events(@_) }

sub numbers { return map { decode_json($_->{data})->{number} } grep { $_->{event} eq 'part' } @_ }

# the reads the readers ran so far (every reader's counter)
sub reads
{
	my (undef, $m) = curl("$base/metrics");
	my $n = 0;
	$n += $1 while $m =~ /^buildlog_http_reads_total\{[^}]*\} (\d+)$/mg;
	return $n;
}

$node->safe_psql('postgres', q{select buildlog.write_parts('{1,1,1}', '{0,1,2}', array['a','b',''], '{f,f,t}')});

# a cursor at the top of the number range, on a complete log
for my $how ([ '?after=2147483647' ], [ '', 'Last-Event-ID: 0-2147483647' ])
{
	my ($query, @headers) = @$how;
	my $r0 = reads();
	my ($h, $f) = open_stream("$base/jobs/1/events$query", @headers);
	ok(wait_until("the end event ($query@headers)", sub { grep { $_->{event} eq 'end' } events($f) }),
		"$query@headers: the complete log's stream ends");
	ok(wait_until('the stream to close', sub { !$h->pumpable }), 'and closes');
	$h->finish;
	is(scalar(numbers(events($f))), 0, 'no part: the client had them all');
	cmp_ok(reads() - $r0, '<=', 2, 'with one read (not a loop of reads)');
}

# compared in 64 bits: a range ending at 2147483647 then lower numbers is unsorted
for my $bad ('2147483647,0,2,4', '0-2147483647,5', '2147483646-2147483647,2147483647')
{
	my ($st, $body) = curl('-H', "Last-Event-ID: $bad", "$base/jobs/1/events");
	is($st, 400, "Last-Event-ID '$bad' is refused with 400");
}
my ($st, $body) = curl('-H', 'Last-Event-ID: ' . join(',', map { 2 * $_ } 0 .. 64), "$base/jobs/1/events");
is($st, 400, 'a cursor of 65 ranges is refused');
like($body, qr/too many ranges/, 'saying so');

# parts numbered with gaps: 0, 2, 4, ..., 3998, then the final 3999
$node->safe_psql('postgres', q{select buildlog.write_parts(array_fill(2::bigint, array[2000]),
  array(select 2 * x from generate_series(0, 1999) x), array(select 'p' || 2 * x || E'\n' from generate_series(0, 1999) x),
  array_fill(false, array[2000]))});
$node->safe_psql('postgres', q{select buildlog.write_parts('{2}', '{3999}', array[''], '{t}')});
my ($h, $f) = open_stream("$base/jobs/2/events");
ok(wait_until('64 parts of the gapped job', sub { scalar(numbers(events($f))) >= 64 }), 'the gapped job streams');
my $ranges = sub { my $id = shift; scalar(split /,/, $id) };
my @ev = events($f);
is(scalar(numbers(@ev)), 64, 'exactly the 64 parts that fit 64 ranges');
is_deeply([ numbers(@ev) ], [ map { 2 * $_ } 0 .. 63 ], 'the lowest ones, in order');
is($ranges->($ev[-1]{id}), 64, 'the cursor has 64 ranges');
cmp_ok(-s $f, '<', 200_000, 'the backlog stays small (' . (-s $f) . ' bytes)');
# the missing numbers arrive: the waiting parts follow, then the end
$node->safe_psql('postgres', q{select buildlog.write_parts(array_fill(2::bigint, array[1999]),
  array(select 2 * x + 1 from generate_series(0, 1999) x where 2 * x + 1 < 3999), array(select 'q' || 2 * x + 1 || E'\n' from generate_series(0, 1999) x where 2 * x + 1 < 3999),
  array_fill(false, array[1999]))});
ok(wait_until('the end of the gapped job', sub { grep { $_->{event} eq 'end' } events($f) }, timeout => 120),
	'once the gaps are filled every part comes and the stream ends');
@ev = events($f);
my @got = sort { $a <=> $b } numbers(@ev);
is_deeply(\@got, [ 0 .. 3999 ], 'every part exactly once');
is($ev[-1]{id}, '0-3999', 'the last cursor is one range');
$h->finish;

# a part after the final one does not keep a stream from ending
$node->safe_psql('postgres', q{select buildlog.write_parts('{3,3,3}', '{0,1,5}', array['a','',E'after the end'], '{f,t,f}')});
my $r0 = reads();
($h, $f) = open_stream("$base/jobs/3/events", 'Last-Event-ID: 0-1');
ok(wait_until('the end of job 3', sub { grep { $_->{event} eq 'end' } events($f) }), 'a part after the final one: the stream still ends');
ok(wait_until('the stream of job 3 to close', sub { !$h->pumpable }), 'and closes');
$h->finish;
cmp_ok(reads() - $r0, '<=', 2, 'with one read');

# backpressure: a 10 MB log of escapes (60 MB as JSON), six clients that read nothing
sub metric { return http_metric($base, $_[0]) }
$node->safe_psql('postgres', q{select buildlog.write_parts(array_fill(4::bigint, array[101]),
  array(select generate_series(0, 100)),
  array(select case when x = 100 then '' else repeat(chr(27) || 'x', 51200) end from generate_series(0, 100) x),
  array(select x = 100 from generate_series(0, 100) x))});
my $worker = $node->safe_psql('postgres', q{select pid from pg_stat_activity where backend_type = 'buildlog http'});
my $rss0 = rss_anon($worker);
my $events0 = metric('buildlog_http_events_total');
my @idle;
for (1 .. 6)
{
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
	  or die "connect: $!";
	setsockopt($sock, Socket::SOL_SOCKET(), Socket::SO_RCVBUF(), 4096);
	print $sock "GET /jobs/4/events HTTP/1.1\r\nHost: t\r\n\r\n";
	push @idle, $sock;
}
ok(wait_until('six streams open', sub { metric('buildlog_http_streams') >= 6 }), 'six streams that read nothing are open');
# stalled: the events sent to them stop growing (their buffers are full)
my ($last, $peak, $still) = (-1, 0, 0);
ok(wait_until('the six streams to stall', sub {
			my $now = metric('buildlog_http_events_total');
			my $rss = rss_anon($worker);
			$peak = $rss if $rss > $peak;
			$still = ($now == $last && $now > $events0) ? $still + 1 : 0;
			$last = $now;
			select(undef, undef, undef, 0.25);
			$still >= 8 }, timeout => 120), 'the streams stall once their buffers are full');
cmp_ok($last - $events0, '<', 6 * 100, 'they did not get the whole log (' . ($last - $events0) . ' events of 600)');
cmp_ok($peak - $rss0, '<', 48 * 1024,
	sprintf('the worker grew by %.1f MB for six 60 MB streams that read nothing', ($peak - $rss0) / 1024));
my ($out) = run_command([ 'curl', '-s', '--max-time', '60', "$base/healthz" ]);
is($out, 'ok', 'meanwhile the service answers');
# a client that reads: every part once, then the end
my ($hr, $fr) = open_stream("$base/jobs/4/events");
ok(wait_until('the reading client to get the end', sub { grep { $_->{event} eq 'end' } events($fr) }, timeout => 120),
	'a client that reads gets the end');
$hr->finish;
is_deeply([ numbers(events($fr)) ], [ 0 .. 100 ], 'every part once, in order');
my @all = events($fr);
is(length(decode_json($all[1]{data})->{content}), 102400, 'each with its whole content');
close($_) for @idle;
ok(wait_until('the idle streams to close', sub { metric('buildlog_http_streams') == 0 }, timeout => 60),
	'the idle streams close with their clients');

# the worker stops (SIGTERM; restarted after 10 s): the address stays taken
my $pid = $node->safe_psql('postgres', q{select pid from pg_stat_activity where backend_type = 'buildlog http'});
like($pid, qr/^\d+$/, 'the HTTP worker runs');
kill 'TERM', $pid;
ok(wait_until('the HTTP worker to exit', sub { !kill(0, $pid) }), 'the HTTP worker exited');
is($node->safe_psql('postgres', q{select count(*) from pg_stat_activity where backend_type = 'buildlog http'}), '0',
	'no HTTP worker runs now');
my $thief = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port, Listen => 5, ReuseAddr => 1, Proto => 'tcp');
ok(!defined $thief, 'another process cannot listen on the address meanwhile (' . ($! // '') . ')');
close($thief) if $thief;
($out) = run_command([ 'curl', '-s', '--max-time', '60', "$base/healthz" ]);
is($out, 'ok', 'a request sent while the worker was down is answered by the next one');
isnt($node->safe_psql('postgres', q{select pid from pg_stat_activity where backend_type = 'buildlog http'}), $pid,
	'by a new worker');

done_testing();
