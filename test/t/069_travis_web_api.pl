# travis-logs' web API against buildlog, as travis-api calls it: GET
# /logs/{job} (the row in travis-logs' shape, the content from the read
# path), GET /logs/{job}/id, PUT /logs/{job} (a restart's new content, a
# removal with removed_by), POST /logs/multi (an import of old logs in one
# transaction), GET /log-parts/{job}?after=N (&content=false), all with the
# service token of buildlog.travis_token_file: unset 500, missing or wrong
# 403, as travis-logs answers; it is read again on reload and never
# logged.  Bad input: malformed JSON, a bad job id or removed_by (400),
# unknown jobs (404), a body over the limit (413).  The logs end exact.
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;

my $secrets = PostgreSQL::Test::Utils::tempdir();
my $service = 'svc-' . join('', map { sprintf('%02x', int(rand(256))) } 1 .. 16);
open(my $fh, '>', "$secrets/travis.token") or die $!;
print $fh "$service\n";
close($fh);
chmod 0600, "$secrets/travis.token";

my ($node, $base) = http_node('travis_web', qq(
buildlog.http_max_body = '256kB'
buildlog.aggregate_delay = '1h'
));
my $mark = log_mark($node);
my $tmp = PostgreSQL::Test::Utils::tempdir();

# api(METHOD, PATH, BODY, AUTH): (status, decoded JSON or the raw body, headers)
sub api
{
	my ($method, $path, $body, $auth) = @_;
	my @data;
	if (defined $body)
	{
		open(my $b, '>:raw', "$tmp/body") or die $!;
		print $b $body;
		close($b);
		@data = ('-H', 'Content-Type: application/octet-stream', '--data-binary', "\@$tmp/body");
	}
	my ($st, $h, $out) = http_request('-X', $method, (defined $auth ? ('-H', "Authorization: $auth") : ()),
		@data, "$base$path");
	my $json = eval { decode_json($out) };
	return ($st, $json // $out, $h);
}

my $auth = "token $service";
$node->safe_psql('postgres', "select buildlog.write_parts('{4000,4000,4000}', '{0,1,2}', array['one\n', 'two\n', 'three\n'], '{f,f,t}')");

# ---- the service token ----
my ($st, $j) = api('GET', '/logs/4000', undef, $auth);
is($st, 500, 'no buildlog.travis_token_file: 500, as travis-logs without AUTH_TOKEN');
like($j->{detail}, qr/authentication token is not set/, 'saying the token is not set');
$node->safe_psql('postgres', "alter system set buildlog.travis_token_file = '$secrets/travis.token'");
$node->reload;
ok(wait_until('the HTTP worker to read the service token', sub { (api('GET', '/logs/4000', undef, $auth))[0] == 200 }),
	'after a reload the service token is read');
($st) = api('GET', '/logs/4000');
is($st, 403, 'no Authorization: 403');
($st) = api('GET', '/logs/4000', undef, "token wrong$service");
is($st, 403, 'a wrong token: 403');
($st) = api('GET', '/logs/4000', undef, "Bearer $service");
is($st, 403, 'the token under another scheme: 403');
($st) = api('PUT', '/logs/4000', "x", "token x");
is($st, 403, 'PUT with a wrong token: 403');
($st) = api('GET', '/log-parts/4000', undef, "token x");
is($st, 403, 'GET /log-parts with a wrong token: 403');
is($node->safe_psql('postgres', "select buildlog.log(4000) = E'one\\ntwo\\nthree\\n'"), 't', 'nothing changed');

# ---- reads ----
($st, $j) = api('GET', '/logs/4000', undef, $auth);
is($st, 200, 'GET /logs/4000: 200');
is($j->{'@type'}, 'log', 'of @type log');
is($j->{content}, "one\ntwo\nthree\n", 'its content: the pending parts, from the read path');
is($j->{job_id} . '/' . $j->{id}, '4000/4000', 'id and job_id (a log\'s id is its job\'s)');
ok(exists $j->{removed_by_id} && !defined $j->{removed_by_id} && !defined $j->{removed_at}, 'not removed');
ok(defined $j->{created_at} && exists $j->{aggregated_at} && exists $j->{archived_at} && exists $j->{purged_at},
	'with the timestamps travis-api reads');
($st, $j) = api('GET', '/logs/4000?by=id', undef, $auth);
is($st . $j->{content}, "200one\ntwo\nthree\n", '?by=id: the same log');
($st, $j) = api('GET', '/logs/4000/id', undef, $auth);
is_deeply([ $st, $j ], [ 200, { id => 4000, '@type' => 'log' } ], 'GET /logs/4000/id');
($st) = api('GET', '/logs/4999', undef, $auth);
is($st, 404, 'an unknown job: 404');
($st) = api('GET', '/logs/4999/id', undef, $auth);
is($st, 404, 'its id: 404');
($st) = api('GET', '/logs/abc', undef, $auth);
is($st, 404, 'a path that is not a job: 404');

($st, $j) = api('GET', '/log-parts/4000?after=0', undef, $auth);
is($st, 200, 'GET /log-parts/4000?after=0: 200');
is($j->{'@type'} . '/' . $j->{job_id}, 'log_parts/4000', 'of @type log_parts, for the job');
is_deeply([ map { [ $_->{number}, $_->{content}, $_->{final} ? 1 : 0 ] } @{ $j->{log_parts} } ],
	[ [ 1, "two\n", 0 ], [ 2, "three\n", 1 ] ], 'the parts after 0, in order');
($st, $j) = api('GET', '/log-parts/4000?content=false', undef, $auth);
ok(!grep({ exists $_->{content} } @{ $j->{log_parts} }) && @{ $j->{log_parts} } == 3, '?content=false: the numbers without contents');
($st) = api('GET', '/log-parts/4000?after=x', undef, $auth);
is($st, 400, 'after not a number: 400');
($st) = api('GET', '/log-parts/4000?part_numbers=1,2', undef, $auth);
is($st, 400, 'part_numbers (not supported): 400 saying so');
($st) = api('GET', '/log-parts/4999', undef, $auth);
is($st, 404, 'the parts of an unknown job: 404');
$node->safe_psql('postgres', 'select buildlog.aggregate(4000)');
($st, $j) = api('GET', '/log-parts/4000?after=1', undef, $auth);
is_deeply([ map { $_->{content} } @{ $j->{log_parts} } ], [ "three\n" ],
	'after aggregation the parts are still read (sliced from the content)');

# ---- sets ----
($st, $j) = api('PUT', '/logs/4000', "restarted\n", $auth);
is($st, 200, 'PUT /logs/4000 (a restart with new content): 200');
is($j->{content} . '|' . $j->{'@type'}, "restarted\n|log", 'the row back, with the new content');
is($node->safe_psql('postgres', "select buildlog.log(4000) = E'restarted\\n'"), 't', 'set_content() replaced the log');
($st, $j) = api('PUT', '/logs/4000', '', $auth);
is($st . '|' . ($j->{content} // 'null'), '200|null', 'PUT with an empty body: the log cleared (content null)');
$node->safe_psql('postgres', "select buildlog.write_parts('{4000}', '{0}', array['second run\n'], '{t}')");
($st, $j) = api('GET', '/logs/4000', undef, $auth);
is($j->{content}, "second run\n", 'the next run\'s parts follow');
($st, $j) = api('PUT', '/logs/4000?removed_by=77', '', $auth);
is($st, 200, 'PUT ?removed_by=77: 200');
is(($j->{removed_by} // '') . '|' . (defined $j->{removed_at} ? 'at' : '') . '|' . ($j->{content} // 'null'), '77|at|null',
	'the log removed by user 77');
($st, $j) = api('GET', '/logs/4000', undef, $auth);
is(($j->{removed_by_id} // '') . '|' . ($j->{content} // 'null'), '77|null', 'GET says removed_by_id 77, no content');
$node->safe_psql('postgres', "select buildlog.write_parts('{4000}', '{1}', array['late\n'], '{f}')");
is($node->safe_psql('postgres', "select coalesce(buildlog.log(4000), 'null')"), 'null', 'a part after the removal is not stored');
($st) = api('PUT', '/logs/4000?removed_by=x', '', $auth);
is($st, 400, 'removed_by not an id: 400');
($st) = api('PUT', '/logs/4000', 'z' x 300000, $auth);
is($st, 413, 'a body over buildlog.http_max_body: 413');
($st, $j) = api('PUT', '/logs/4001', "imported \xff\n", $auth);
is($st . '|' . $j->{content}, "200|imported \x{fffd}\n", 'PUT of an unknown job creates its log (bytes cleaned to UTF-8)')
	or diag(explain($j));

# POST /logs/multi: an import of old logs, all or nothing
my @import = map { { job_id => 4100 + $_, content => "old log $_\n" . ('line ' x $_) } } 0 .. 9;
($st) = api('POST', '/logs/multi', encode_json(\@import), $auth);
is($st, 204, 'POST /logs/multi of 10 old logs: 204');
is($node->safe_psql('postgres', "select count(*) from buildlog.logs where job_id between 4100 and 4109 and content = 'old log ' || (job_id - 4100) || E'\\n' || repeat('line ', (job_id - 4100)::int)"),
	'10', 'every imported log exact');
($st) = api('POST', '/logs/multi', '[{"job_id":4200,"content":"a"},{"job_id":"x"}]', $auth);
is($st, 400, 'an item with a bad job id: 400');
is($node->safe_psql('postgres', 'select count(*) from buildlog.logs where job_id = 4200'), '0', 'and nothing of the batch stored');
($st) = api('POST', '/logs/multi', '[{"job_id":4200,', $auth);
is($st, 400, 'malformed JSON: 400');
($st) = api('POST', '/logs/multi', '[{"job_id":4201,"removed_by":5}]', $auth);
is($st . '|' . $node->safe_psql('postgres', 'select removed_by from buildlog.logs where job_id = 4201'), '204|5',
	'an item with removed_by: the log removed');
($st) = api('POST', '/logs/multi', '[]', "token x");
is($st, 403, 'POST /logs/multi with a wrong token: 403');
($st, $j, my $h) = api('DELETE', '/logs/4000', undef, $auth);
is($st . '|' . ($h->{allow} // ''), '405|GET, HEAD, PUT', 'DELETE /logs/{job}: 405 with Allow');

is(index(log_since($node, $mark), $service), -1, 'the service token never reaches the server log');
$node->stop;
done_testing();
