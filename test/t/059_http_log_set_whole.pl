# A log set whole (set_content(), as a platform imports old logs or replaces
# a restarted job's log) is read by every reader of parts as its head, part
# -1, before part 0: parts(), GET /jobs/{id}/parts, /bundle and /events (the
# head, then end with size and SHA-256 at once), with late parts after it,
# and the same answers after the log was archived and purged (read back
# from S3).  An empty text is a cleared log: readers wait for its parts.
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use JSON::PP;
use Digest::SHA qw(sha256_hex);

my ($s3) = need_env('BUILDLOG_S3_ENDPOINT');
my $bucket = $ENV{BUILDLOG_S3_BUCKET} // 'buildlog';
my ($node, $base) = http_node('set_whole', qq(buildlog.aggregate_delay = '1h'
buildlog.purge_delay = '1s'
buildlog.s3_endpoint = '$s3'
buildlog.s3_bucket = '$bucket'
buildlog.s3_access_key = 'S3RVER'
buildlog.s3_secret_key = 'S3RVER'
buildlog.s3_prefix = 't059/'
));
my $tmp = PostgreSQL::Test::Utils::tempdir();

# curl(ARGS...): (status, headers as a hash of lower-case names, body bytes)
sub curl { return http_request(@_) }

# A stream read into a file, and its complete events (BuildlogTest).
sub open_stream { return sse_open(@_) }
sub events { return sse_events(@_) }

# The events of a stream once its end event came (the stream then closes).
sub ended_stream
{
	my ($what, $url, @headers) = @_;
	my ($h, $f) = open_stream($url, @headers);
	ok(wait_until("the end event of $what", sub { grep { $_->{event} eq 'end' } events($f) }),
		"$what: the stream ends");
	ok(wait_until("the stream of $what to close", sub { !$h->pumpable }), "$what: and closes");
	$h->finish;
	return events($f);
}

# The text a reader of the whole log gets (log(), as bytes).
sub log_bytes
{
	my ($job) = @_;
	my $t = $node->safe_psql('postgres', "select encode(convert_to(buildlog.log($job), 'UTF8'), 'hex')");
	return pack('H*', $t);
}

# check_job(JOB, PARTS, WHEN): every reader of parts gives PARTS, a list of
# [number, content (bytes), final], in order, and the stream ends with the
# size and SHA-256 of log().
sub check_job
{
	my ($job, $want, $when) = @_;
	my $whole = join('', map { $_->[1] } @$want);
	is(log_bytes($job), $whole, "$when: log($job) is the parts' text in order");

	my $rows = $node->safe_psql('postgres',
		"select number, encode(convert_to(content, 'UTF8'), 'hex'), final from buildlog.parts($job) order by number");
	is_deeply([ map { my ($n, $c, $f) = split /\|/; [ $n + 0, pack('H*', $c), $f eq 't' ? 1 : 0 ] } split /\n/, $rows ],
		$want, "$when: parts($job): " . join(',', map { $_->[0] } @$want));
	is($node->safe_psql('postgres', "select count(*) from buildlog.parts($job, 0) where number < 1"), '0',
		"$when: parts($job, 0) has neither the head nor part 0");

	my ($st, $h, $body) = curl("$base/jobs/$job/parts");
	is($st, 200, "$when: GET /jobs/$job/parts: 200");
	my $json = decode_json($body);
	is_deeply([ map { my $c = $_->{content}; utf8::encode($c); [ $_->{number}, $c, $_->{final} ? 1 : 0 ] } @{ $json->{log_parts} } ],
		$want, "$when: /parts lists the same parts");
	($st, $h, $body) = curl("$base/jobs/$job/parts?after=-1");
	is(scalar @{ decode_json($body)->{log_parts} }, scalar @$want, "$when: /parts?after=-1 reads from the start");

	($st, $h, $body) = curl("$base/jobs/$job/log");
	is($body, $whole, "$when: GET /jobs/$job/log: the same text");
	is($h->{'x-log-complete'}, (grep { $_->[2] } @$want) ? 'true' : 'false',
		"$when: X-Log-Complete follows the final part");

	($st, $h, $body) = curl("$base/jobs/$job/bundle");
	is($st, 200, "$when: GET /jobs/$job/bundle: 200");
	my ($index, $bytes) = split /\n/, $body, 2;
	my $parts = decode_json($index)->{parts};
	is_deeply([ map { [ $_->[0], $_->[1], $_->[3] ? 1 : 0 ] } @$parts ],
		[ map { [ $_->[0], length($_->[1]), $_->[2] ] } @$want ], "$when: /bundle indexes the same parts");
	is($bytes, $whole, "$when: /bundle carries their bytes");

	my @ev = ended_stream("job $job ($when)", "$base/jobs/$job/events");
	my @got = map { decode_json($_->{data}) } grep { $_->{event} eq 'part' } @ev;
	is_deeply([ map { my $c = $_->{content}; utf8::encode($c); [ $_->{number}, $c, $_->{final} ? 1 : 0 ] } @got ],
		$want, "$when: /events sends the same parts");
	my ($end) = map { decode_json($_->{data}) } grep { $_->{event} eq 'end' } @ev;
	is_deeply($end, { size => length($whole), sha256 => sha256_hex($whole) },
		"$when: its end event has the log's size and SHA-256");
	my $last = $want->[-1][0];
	is($ev[-1]{id}, $want->[0][0] == $last ? "$last" : "$want->[0][0]-$last",
		"$when: the cursor holds the head and the parts");
	return;
}

my $head = "imported \xc3\xa9 line 1\nline 2\n";
$node->safe_psql('postgres', "select buildlog.set_content(11, convert_from('\\x" . unpack('H*', $head) . "', 'UTF8'))");
$node->safe_psql('postgres', q{select buildlog.set_content(12, E'replaced\n')});
$node->safe_psql('postgres', q{select buildlog.write_parts('{12,12}', '{0,1}', array[E'late 0\n', E'late 1\n'], '{f,t}')});
my @job11 = ([ -1, $head, 1 ]);
my @job12 = ([ -1, "replaced\n", 0 ], [ 0, "late 0\n", 0 ], [ 1, "late 1\n", 1 ]);

check_job(11, \@job11, 'set whole');
check_job(12, \@job12, 'set whole, late parts');

# resumed streams: the head already had, a bad cursor refused
my @ev = ended_stream('job 11 resumed after the head', "$base/jobs/11/events", 'Last-Event-ID: -1');
is(scalar(grep { $_->{event} eq 'part' } @ev), 0, 'Last-Event-ID -1: no part again, only the end');
@ev = ended_stream('job 12 resumed after the head', "$base/jobs/12/events", 'Last-Event-ID: -1');
is_deeply([ map { decode_json($_->{data})->{number} } grep { $_->{event} eq 'part' } @ev ], [ 0, 1 ],
	'Last-Event-ID -1: the parts after the head');
@ev = ended_stream('job 12 after=0', "$base/jobs/12/events?after=0");
is_deeply([ map { decode_json($_->{data})->{number} } grep { $_->{event} eq 'part' } @ev ], [1],
	'?after=0: only part 1 (the head goes with reads from the start)');
for my $bad ('-2', '3,-1', '-1,0', '--1', '-10')
{
	my ($st) = curl('-H', "Last-Event-ID: $bad", "$base/jobs/11/events");
	is($st, 400, "Last-Event-ID '$bad' is refused with 400");
}

# live: a log set whole and given a part, watched while its final part comes
$node->safe_psql('postgres', q{select buildlog.set_content(13, E'head 13\n')});
$node->safe_psql('postgres', q{select buildlog.write_parts('{13}', '{0}', array[E'zero\n'], '{f}')});
my ($h13, $f13) = open_stream("$base/jobs/13/events");
ok(wait_until('the head and part 0 of job 13', sub { scalar(grep { $_->{event} eq 'part' } events($f13)) == 2 }),
	'a stream of a log set whole gets the head and part 0');
ok(!(grep { $_->{event} eq 'end' } events($f13)), 'and does not end: the head is not final when parts follow');
$node->safe_psql('postgres', q{select buildlog.write_parts('{13}', '{1}', array[E'one\n'], '{t}')});
ok(wait_until('the end of job 13', sub { grep { $_->{event} eq 'end' } events($f13) }), 'the final part ends it');
is_deeply([ map { decode_json($_->{data})->{number} } grep { $_->{event} eq 'part' } events($f13) ], [ -1, 0, 1 ],
	'every part once, in order');
$h13->finish;

# an empty text is a cleared log (a restart): no head, readers wait for parts
$node->safe_psql('postgres', q{select buildlog.set_content(14, '')});
is($node->safe_psql('postgres', 'select count(*) from buildlog.parts(14)'), '0', 'a cleared log has no part');
my ($st, $h, $body) = curl("$base/jobs/14/log");
is($h->{'x-log-complete'}, 'false', 'and is not complete');
my ($h14, $f14) = open_stream("$base/jobs/14/events");
ok(wait_until('the stream of job 14 to open', sub { -s $f14 }), 'a stream of a cleared log opens');
$node->safe_psql('postgres', q{select buildlog.write_parts('{14,14}', '{0,1}', array[E'run 2\n', ''], '{f,t}')});
ok(wait_until('the end of job 14', sub { grep { $_->{event} eq 'end' } events($f14) }),
	'and ends with the new run\'s final part');
is_deeply([ map { decode_json($_->{data})->{number} } grep { $_->{event} eq 'part' } events($f14) ], [ 0, 1 ],
	'the new run\'s parts, no head');
$h14->finish;

# archived and purged: the same answers, read back from S3
$node->append_conf('postgresql.conf', "buildlog.archive_workers = 1\nbuildlog.aggregate_delay = '1s'\n");
$node->restart;
ok(wait_until('the HTTP worker after the restart', sub {
			my ($out) = run_command([ 'curl', '-s', "$base/healthz" ]); $out eq 'ok' }), 'the HTTP service is back');
wait_query($node, 'select count(*) from buildlog.logs where job_id in (11, 12) and purged_at is not null and content is null',
	'2', 'jobs 11 and 12 archived and purged', timeout => 120);
check_job(11, \@job11, 'purged');
check_job(12, \@job12, 'purged, late parts aggregated');

# a late part after the purge: the head stays first
$node->safe_psql('postgres', q{select buildlog.write_parts('{11}', '{0}', array[E'after purge\n'], '{f}')});
my $rows = $node->safe_psql('postgres', 'select number, final from buildlog.parts(11) order by number');
is($rows, "-1|f\n0|f", 'purged, then a late part: the head, no longer final, then part 0');

done_testing();
