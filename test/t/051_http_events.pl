# Live logs over Server-Sent Events: a client opening mid-job
# gets every part so far, then each new part as its commit lands (woken
# through shared memory, no polling), out-of-order parts with their number,
# a durable cursor as the event id; reconnecting with Last-Event-ID (many
# times, mid-stream) or ?after=N loses nothing and repeats nothing; the end
# event carries the size and SHA-256 and closes the stream.  Real curl.
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Digest::SHA qw(sha256_hex);
use IPC::Run;
use Time::HiRes qw(sleep);

my ($node, $base) = http_node('events', "buildlog.aggregate_delay = '1h'\n");
my $tmp = PostgreSQL::Test::Utils::tempdir();

# write(job, number, content, final)
sub write_part
{
	my ($job, $number, $content, $final) = @_;
	$node->safe_psql('postgres', "select buildlog.write_parts('{$job}', '{$number}', array[E'$content'], '{"
		  . ($final ? 't' : 'f') . "}')");
}

# A stream read into a file, and its complete events (BuildlogTest).
sub open_stream { return sse_open(@_) }
sub events { return sse_events(@_) }

sub parts_of { return map { decode_json($_->{data})->{number} } grep { $_->{event} eq 'part' } @_ }

write_part(7, 0, 'zero\n', 0);
write_part(7, 1, 'one\n', 0);
write_part(7, 2, 'two\n', 0);

# opened mid-job: the backlog
my ($s1, $f1) = open_stream("$base/jobs/7/events");
ok(wait_until('the backlog of 3 parts', sub { scalar(parts_of(events($f1))) == 3 }), 'backlog: 3 parts');
my @e = events($f1);
is_deeply([ parts_of(@e) ], [ 0, 1, 2 ], 'in number order');
is_deeply([ map { $_->{id} } @e ], [ '0', '0-1', '0-2' ], 'each id is the cursor of the numbers sent');
is(decode_json($e[1]{data})->{content}, "one\n", 'the content, JSON-decoded');

# live: an out-of-order part, then the missing one
write_part(7, 4, 'four\n', 0);
ok(wait_until('part 4 live', sub { scalar(parts_of(events($f1))) == 4 }), 'a new part arrives live');
@e = events($f1);
is_deeply([ $e[3]{id}, decode_json($e[3]{data})->{number} ], [ '0-2,4', 4 ],
	'an out-of-order part is sent at once with its number; the cursor has the gap');
write_part(7, 3, 'three\n', 0);
ok(wait_until('part 3 live', sub { scalar(parts_of(events($f1))) == 5 }), 'the missing part follows');
is((events($f1))[4]{id}, '0-4', 'the cursor closes the gap');

# reconnect with Last-Event-ID of the gap: only the missing part
# (what else these streams get is checked once they end: whole)
my ($s2, $f2) = open_stream("$base/jobs/7/events", 'Last-Event-ID: 0-2,4');
ok(wait_until('the resumed stream', sub { scalar(parts_of(events($f2))) >= 1 }), 'resumed stream');
is_deeply([ parts_of(events($f2)) ], [3], 'Last-Event-ID 0-2,4: part 3 first');

# ?after=N: the parts above N
my ($s3, $f3) = open_stream("$base/jobs/7/events?after=1");
ok(wait_until('after=1', sub { scalar(parts_of(events($f3))) >= 3 }), '?after=1 stream');
is_deeply([ parts_of(events($f3)) ], [ 2, 3, 4 ], '?after=1: parts 2, 3, 4');

# the final part: every open stream gets it, then the end event, and closes
write_part(7, 5, '', 1);
for my $pair ([ $s1, $f1, 'first' ], [ $s2, $f2, 'resumed' ], [ $s3, $f3, 'after' ])
{
	my ($h, $f, $name) = @$pair;
	ok(wait_until("the end event ($name)", sub { grep { $_->{event} eq 'end' } events($f) }),
		"$name stream: end event");
	ok(wait_until("curl to exit ($name)", sub { !$h->pumpable }),
		"$name stream: closed by the server after the end");
	$h->finish;
}
# the streams ended: what each got is whole, nothing can follow
is_deeply([ parts_of(events($f1)) ], [ 0, 1, 2, 4, 3, 5 ], 'first stream: every part once, as written');
is_deeply([ parts_of(events($f2)) ], [ 3, 5 ], 'Last-Event-ID 0-2,4: exactly part 3, then the final one, nothing twice');
is_deeply([ parts_of(events($f3)) ], [ 2, 3, 4, 5 ], '?after=1: parts 2, 3, 4, then the final one');
my ($end) = grep { $_->{event} eq 'end' } events($f1);
my $meta = decode_json($end->{data});
my $bytes = "zero\none\ntwo\nthree\nfour\n";
is_deeply([ $meta->{size}, $meta->{sha256} ], [ length($bytes), sha256_hex($bytes) ],
	'the end event carries the size and SHA-256 of the log');
is((events($f1))[-2]{id}, '0-5', 'the last part event has the whole cursor');

# a complete log: opened afterwards, the whole log and the end at once
my ($s4, $f4) = open_stream("$base/jobs/7/events");
ok(wait_until('a complete log streamed', sub { !$s4->pumpable }), 'a complete log: the stream ends by itself');
$s4->finish;
is_deeply([ parts_of(events($f4)) ], [ 0 .. 5 ], 'every part');
is(scalar(grep { $_->{event} eq 'end' } events($f4)), 1, 'and one end event');

# many reconnects mid-stream: nothing lost, nothing twice
my $writer = IPC::Run::start([ 'psql', '-X', '-q', '-d', $node->connstr('postgres'), '-c', q{
do $$
begin
  for i in 0..199 loop
    perform buildlog.write_parts('{8}', array[case when i % 10 = 3 then i + 1 when i % 10 = 4 then i - 1 else i end],
                                 array['line ' || i || E'\n'], array[i = 199]);
    commit;
    perform pg_sleep(0.01);
  end loop;
end $$} ]);
my (@seen, $cursor);
my $connections = 0;
my $ended = 0;
while (!$ended && $connections < 200)
{
	my ($h, $f) = open_stream("$base/jobs/8/events", defined $cursor ? ("Last-Event-ID: $cursor") : ());
	sleep(0.05 + rand(0.2));
	$h->kill_kill;    # the connection drops mid-stream
	$connections++;
	for my $ev (events($f))
	{
		if ($ev->{event} eq 'end') { $ended = 1; next; }
		push @seen, decode_json($ev->{data})->{number};
		$cursor = $ev->{id};
	}
}
$writer->finish;
ok($ended, "the end event reached the client after $connections connections");
my %count;
$count{$_}++ for @seen;
is_deeply([ sort { $a <=> $b } keys %count ], [ 0 .. 199 ], 'every part 0..199 received');
is(scalar(grep { $count{$_} > 1 } keys %count), 0, 'none received twice across the reconnects');
cmp_ok($connections, '>', 5, "the stream was really resumed many times ($connections connections)");

# bad cursors
for my $bad ('x', '5-3', '3,2', '1-2,3', '99999999999')
{
	my ($out) = run_command([ 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', "Last-Event-ID: $bad",
			"$base/jobs/7/events" ]);
	is($out, '400', "Last-Event-ID '$bad': 400");
}
my ($out) = run_command([ 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', "$base/jobs/7/events" ]);
is($out, '405', 'POST /events: 405');

unlike(slurp_file($node->logfile), qr/terminated by signal/, 'the HTTP worker never crashed');
$node->stop;
done_testing();
