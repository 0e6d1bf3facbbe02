# travis-worker's HTTP log part sink against buildlog: POST /log-parts/multi.
# A client written from travis-worker's http_log_part_sink.go (one buffer
# shared by every job's writer, flushed as a JSON array of log_part objects
# with base64 content, "Authorization: token sig:<hex SHA-1 of the tok
# values joined>", the whole batch sent again with back-off until it gets
# 204, then put back in the buffer) streams a fleet of jobs whose "tok" is a
# buildlog write token; the HTTP worker is killed half-way, the token key
# goes missing for a while (503: the batch sent again with back-off until
# 204), and some batches are sent twice as when an answer is lost; every
# log ends exact, no part is stored twice.  Bad input: wrong or missing signature (403), not JSON, not
# an array, a bad field (400), a huge body (413): nothing stored; a
# forged, expired, revoked, foreign or read-only token, a job mixing
# tokens, bad base64, parts after the job's final part: those parts kept
# aside in rejected_parts with their reason (the token left out), the good
# ones stored, 204 (travis-worker would otherwise resend the batch for
# ever); no token reaches the server log.
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use MIME::Base64;
use Digest::SHA qw(sha1_hex);
use HTTP::Tiny;
use Time::HiRes qw(sleep);

my $secrets = PostgreSQL::Test::Utils::tempdir();
my $key = 'k3y-' . join('', map { sprintf('%02x', int(rand(256))) } 1 .. 24);
open(my $fh, '>', "$secrets/token.key") or die $!;
print $fh "$key\n";
close($fh);
chmod 0600, "$secrets/token.key";

my ($node, $base) = http_node('travis_sink', qq(
buildlog.http_token_key_file = '$secrets/token.key'
buildlog.http_max_body = '256kB'
buildlog.aggregate_delay = '1h'
));
my $mark = log_mark($node);
my $http = HTTP::Tiny->new(timeout => 30, keep_alive => 1);

sub token { return $node->safe_psql('postgres', "select buildlog.issue_token($_[0], '$_[1]', '" . ($_[2] // '1 hour') . "')"); }

# ---- the client: travis-worker's httpLogPartSink, in Perl ----
# parts: { job_id, number, content (bytes), final, tok }; one buffer for all jobs.
my @buffer;
my %sent = (batches => 0, attempts => 0, non204 => 0, resent => 0);

# The signature of a payload: hex SHA-1 of the tok values joined (generatePayloadSignature).
sub signature { return sha1_hex(join('', map { $_->{tok} } @_)); }

# The JSON body of a payload (httpLogPartEncodedPayload).
sub payload
{
	return encode_json([ map { {
		content => encode_base64($_->{content}, ''), encoding => 'base64',
		final => $_->{final} ? JSON::PP::true : JSON::PP::false,
		job_id => $_->{job_id} + 0, number => $_->{number} + 0, tok => $_->{tok}, '@type' => 'log_part' } } @_ ]);
}

# One POST of a payload: the response (status 599 when the connection failed).
sub post_parts
{
	my ($body, $auth) = @_;
	return $http->request('POST', "$base/log-parts/multi?source=worker",
		{ headers => { 'Content-Type' => 'application/json', (defined $auth ? ('Authorization' => $auth) : ()) },
		  content => $body });
}

# A hook of the test's, run after each answer other than 204.
my $on_failure;

# publishLogParts: retry the same body with exponential back-off until 204
# (at most max_elapsed seconds); the last response.
sub publish
{
	my ($parts, $max_elapsed) = @_;
	my $body = payload(@$parts);
	my $auth = 'token sig:' . signature(@$parts);
	my ($interval, $t0) = (0.05, time);
	while (1)
	{
		$sent{attempts}++;
		my $res = post_parts($body, $auth);
		return $res if $res->{status} == 204;
		$sent{non204}++;
		$on_failure->($res) if $on_failure;
		return $res if time - $t0 > $max_elapsed;
		sleep($interval);
		$interval = $interval * 1.5 > 1 ? 1 : $interval * 1.5;
	}
}

# flush: take the whole buffer, publish it; on failure put its parts back (sink.flush).
sub flush
{
	return unless @buffer;
	my @sample = @buffer;
	@buffer = ();
	$sent{batches}++;
	my $res = publish(\@sample, 60);
	push @buffer, @sample if $res->{status} != 204;
	return $res;
}

# ---- a fleet of jobs through the sink ----
my $jobs = 24;
my $first = 1000;
my (%tok, %text, %next);
for my $j ($first .. $first + $jobs - 1)
{
	$tok{$j} = token($j, 'write');
	($text{$j}, $next{$j}) = ('', 0);
}
my @alive = ($first .. $first + $jobs - 1);
my ($tick, $killed, $resent_ok) = (0, 0, 1);
srand(66);
while (@alive)
{
	# every writer writes a chunk or two (or closes: the final part, empty), then the tick flushes
	for my $j (@alive)
	{
		for (1 .. 1 + int(rand(2)))
		{
			my $chunk = "job $j line $next{$j} " . ('x' x int(rand(200))) . " \x{e9}t\x{e9}\r\n";
			utf8::encode($chunk);
			push @buffer, { job_id => $j, number => $next{$j}, content => $chunk, final => 0, tok => $tok{$j} };
			$text{$j} .= $chunk;
			$next{$j}++;
		}
		if ($next{$j} > 20 + ($j % 7) && rand() < 0.3)
		{
			push @buffer, { job_id => $j, number => $next{$j}, content => '', final => 1, tok => $tok{$j} };
			$next{$j} = -1;
		}
	}
	@alive = grep { $next{$_} >= 0 } @alive;
	$tick++;
	my @batch = @buffer;
	if ($tick == 5 && !$killed)
	{
		# the HTTP worker dies: new connections wait in the postmaster's
		# listen socket, a request cut off is retried, until it is back
		my $pid = $node->safe_psql('postgres', "select pid from pg_stat_activity where backend_type = 'buildlog http'");
		ok($pid =~ /^\d+$/, 'the HTTP worker runs (pid found)');
		$node->safe_psql('postgres', "select pg_terminate_backend($pid)");
		$killed = 1;
	}
	my $fault = 0;
	if ($tick == 8)
	{
		# the token key unreadable: 503 for the whole batch; the client
		# sends it again with back-off; the key back, 204
		my $probe = [ { job_id => 9999, number => 0, content => "probe\n", final => 0, tok => token(9999, 'write') } ];
		$node->safe_psql('postgres', "alter system set buildlog.http_token_key_file = '$secrets/missing.key'");
		$node->reload;
		ok(wait_until('the HTTP worker to lose its token key', sub { post_parts(payload(@$probe), 'token sig:' . signature(@$probe))->{status} == 503 }),
			'the token key gone: a batch answers 503');
		$on_failure = sub {
			return if $fault++;
			$node->safe_psql('postgres', 'alter system reset buildlog.http_token_key_file');
			$node->reload;
		};
	}
	my $non204 = $sent{non204};
	my $res = flush();
	if ($tick == 8)
	{
		ok($sent{non204} > $non204, 'the batch sent while the key was gone got non-204 answers (' . ($sent{non204} - $non204) . ') and was sent again');
		$on_failure = undef;
	}
	is($res->{status}, 204, "tick $tick: the batch of " . scalar(@batch) . ' parts is answered 204') or diag($res->{content});
	if ($tick % 4 == 0 && @batch)
	{
		# the answer was lost: travis-worker sends the same batch again; nothing is stored twice
		$sent{resent}++;
		my $again = publish(\@batch, 30);
		$resent_ok &&= $again->{status} == 204 && ($again->{headers}{'x-buildlog-parts-skipped'} // -1) == scalar(@batch);
	}
}
ok($resent_ok, "$sent{resent} batches sent twice: each second copy answered 204 with every part skipped");
note("batches $sent{batches}, attempts $sent{attempts}, non-204 $sent{non204}");

is($node->safe_psql('postgres', "select count(*) - count(distinct (job_id, number)) from buildlog.log_parts where job_id between $first and " . ($first + $jobs - 1)),
	'0', 'no part of the fleet is stored twice');
my $exact = 0;
for my $j ($first .. $first + $jobs - 1)
{
	my $hex = $node->safe_psql('postgres', "select encode(convert_to(buildlog.log($j), 'UTF8'), 'hex')");
	$exact++ if pack('H*', $hex) eq $text{$j};
}
is($exact, $jobs, "every one of the $jobs logs is exact");
is($node->safe_psql('postgres', "select count(*) from buildlog.logs where job_id between $first and " . ($first + $jobs - 1) . " and final_number is null and not exists (select from buildlog.log_parts p where p.job_id = logs.job_id and p.final)"),
	'0', 'every job has its final part');

# ---- refusals of the whole batch: nothing stored ----
my $job = 2000;
my $t = token($job, 'write');
my @one = ({ job_id => $job, number => 0, content => "zero\n", final => 0, tok => $t });
my $res = post_parts(payload(@one), 'token sig:' . ('0' x 40));
is($res->{status}, 403, 'a wrong signature: 403');
$res = post_parts(payload(@one), undef);
is($res->{status}, 403, 'no Authorization: 403');
$res = post_parts(payload(@one), "Bearer $t");
is($res->{status}, 403, 'a Bearer token (travis-logs\' JWT) instead of the signature: 403');
$res = post_parts('[{"@type":"log_part",', 'token sig:' . signature());
is($res->{status}, 400, 'not JSON: 400');
like($res->{content}, qr/not JSON/, 'and the answer says so');
$res = post_parts('{"@type":"log_part"}', 'token sig:' . signature());
is($res->{status}, 400, 'an object, not an array: 400');
my $bad = decode_json(payload(@one));
$bad->[0]{encoding} = 'utf-8';
$res = post_parts(encode_json($bad), 'token sig:' . signature(@one));
is($res->{status}, 400, 'an encoding other than base64: 400');
$bad->[0]{encoding} = 'base64';
$bad->[0]{number} = 'first';
$res = post_parts(encode_json($bad), 'token sig:' . signature(@one));
is($res->{status}, 400, 'a number neither an integer nor "last": 400');
like($res->{content}, qr/part 0: \\"number\\"/, 'naming the part and the field');
my $huge = payload(map { { job_id => $job, number => $_, content => 'y' x 4000, final => 0, tok => $t } } 0 .. 99);
my $tmp = PostgreSQL::Test::Utils::tempdir();
open(my $hb, '>', "$tmp/huge") or die $!;
print $hb $huge;
close($hb);
my ($st) = http_request('-X', 'POST', '-H', 'Content-Type: application/json',
	'-H', 'Authorization: token sig:' . signature(map { { tok => $t } } 0 .. 99),
	'--data-binary', "\@$tmp/huge", "$base/log-parts/multi");
is($st, 413, 'a body over buildlog.http_max_body: 413 (before it is read)');
($st) = http_request('-X', 'POST', '-H', 'Content-Type: application/json', '-H', 'Transfer-Encoding: chunked',
	'-H', 'Authorization: token sig:' . signature(map { { tok => $t } } 0 .. 99),
	'--data-binary', "\@$tmp/huge", "$base/log-parts/multi");
is($st, 413, 'the same body chunked (no length announced): 413 at its end');
is($node->safe_psql('postgres', "select count(*) from buildlog.log_parts where job_id = $job"), '0',
	'none of those stored anything');

# ---- refusals part by part: kept aside, the good parts stored, 204 ----
my $other = 2001;
my $expired = token($job, 'write', '1 second');
my $read = token($job, 'read');
my $foreign = token($other, 'write');
my $revoked_job = 2002;
my $revoked = token($revoked_job, 'write');
$node->safe_psql('postgres', "select buildlog.revoke_tokens($revoked_job)");
ok(wait_until('the 1-second token to expire', sub { time() > (split /\./, $expired)[4] }), 'a token expired');
my $rejected0 = $node->safe_psql('postgres', 'select count(*) from buildlog.rejected_parts');
my @mixed = (
	{ job_id => $job, number => 0, content => "zero\n", final => 0, tok => $t },
	{ job_id => $job, number => 1, content => "forged\n", final => 0, tok => "bl2.$job.write.1.9999999999.AAAA" },
	{ job_id => $job, number => 2, content => "expired\n", final => 0, tok => $expired },
	{ job_id => $job, number => 3, content => "read only\n", final => 0, tok => $read },
	{ job_id => $job, number => 4, content => "foreign\n", final => 0, tok => $foreign },
	{ job_id => $revoked_job, number => 0, content => "revoked\n", final => 0, tok => $revoked },
	{ job_id => $job, number => 5, content => "one\n", final => 0, tok => $t },
	{ job_id => $other, number => 0, content => "other zero\n", final => 0, tok => $foreign },
	{ job_id => $job, number => 'last', content => "", final => 1, tok => $t },
);
my $body = decode_json(payload(map { { %$_, number => ($_->{number} eq 'last' ? 0 : $_->{number}) } } @mixed));
$body->[8]{number} = 'last';
$res = post_parts(encode_json($body), 'token sig:' . signature(@mixed));
is($res->{status}, 204, 'a batch mixing jobs and tokens, some refused: 204');
is($res->{headers}{'x-buildlog-parts-stored'}, 4, 'its four good parts stored');
is($res->{headers}{'x-buildlog-parts-rejected'}, 5, 'its five refused parts kept aside');
is($node->safe_psql('postgres', "select buildlog.log($job) = E'zero\\none\\n'"), 't', "job $job: only the parts of its own live write token");
is($node->safe_psql('postgres', "select buildlog.log($other) = E'other zero\\n'"), 't', "job $other: its part with its token");
is($node->safe_psql('postgres', "select count(*) from buildlog.log_parts where job_id = $revoked_job"), '0',
	'the revoked token\'s part: not stored');
my $reasons = $node->safe_psql('postgres',
	"select string_agg(routing_key || '/' || delivery_tag || ': ' || reason, E'\\n' order by id) from buildlog.rejected_parts where id > (select coalesce(max(id), 0) - 5 from buildlog.rejected_parts)");
like($reasons, qr{^2000/1: the part's token was refused \(401\)}m, 'the forged token: its reason (401)');
like($reasons, qr{^2000/2: .*expired}m, 'the expired token: its reason');
like($reasons, qr{^2000/3: .*\(403\).*scope is read}m, 'the read token: its reason (403, scope)');
like($reasons, qr{^2000/4: .*another job}m, 'the foreign token: its reason');
like($reasons, qr{^2002/0: .*revoked}m, 'the revoked token: its reason');
is($node->safe_psql('postgres', "select count(*) from buildlog.rejected_parts where convert_from(body, 'UTF8') like '%bl2.%' or convert_from(body, 'UTF8') like '%\"tok\"%'"),
	'0', 'no rejected body keeps a token');
my $rid = $node->safe_psql('postgres', "select id from buildlog.rejected_parts where routing_key = '$job' and delivery_tag = 4");
is($node->safe_psql('postgres', "select convert_from(decode(convert_from(body, 'UTF8')::json->>'log', 'base64'), 'UTF8') from buildlog.rejected_parts where id = $rid"),
	"foreign\n", 'a rejected part keeps its content, as travis-worker\'s AMQP message');
$node->safe_psql('postgres', "select buildlog.replay_rejected($rid)");
is($node->safe_psql('postgres', "select buildlog.log($job) = E'zero\\nforeign\\none\\n'"), 't',
	'replay_rejected() stores it, the operator having checked it');

# parts after the final part: kept aside; the batch sent again: skipped
my @late = ({ job_id => $job, number => 5, content => "one\n", final => 0, tok => $t },
	{ job_id => $job, number => 6, content => "late\n", final => 0, tok => $t });
$res = post_parts(payload(@late), 'token sig:' . signature(@late));
is($res->{status}, 204, 'parts after the final part: 204');
is($res->{headers}{'x-buildlog-parts-skipped'} . '/' . $res->{headers}{'x-buildlog-parts-rejected'}, '1/1',
	'the part stored already skipped, the new one kept aside');
like($node->safe_psql('postgres', "select reason from buildlog.rejected_parts where routing_key = '$job' and delivery_tag = 6"),
	qr/final part is stored/, 'with its reason');

# bad base64: kept aside, the rest stored
my $b64job = 2003;
my $bt = token($b64job, 'write');
my @b64 = ({ job_id => $b64job, number => 0, content => "good\n", final => 0, tok => $bt },
	{ job_id => $b64job, number => 1, content => "bad\n", final => 0, tok => $bt });
$body = decode_json(payload(@b64));
$body->[1]{content} = 'not base64!';
$res = post_parts(encode_json($body), 'token sig:' . signature(@b64));
is($res->{status}, 204, 'a part whose content is not base64: 204');
is($node->safe_psql('postgres', "select buildlog.log($b64job)"), "good\n", 'the good part stored');
like($node->safe_psql('postgres', "select reason from buildlog.rejected_parts where routing_key = '$b64job'"),
	qr/"content" is not valid base64/, 'the bad one kept aside with the base64 reason');

# an empty batch is a no-op
$res = post_parts('[]', 'token sig:' . sha1_hex(''));
is($res->{status}, 204, 'an empty array: 204');

my $serverlog = log_since($node, $mark);
my @macs = map { (split /\./, $_)[5] } ($t, $expired, $read, $foreign, $revoked, values %tok);
is(scalar(grep { index($serverlog, $_) >= 0 } @macs), 0, 'no token reaches the server log');

$node->stop;
done_testing();
