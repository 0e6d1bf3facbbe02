# Drain workers against a real RabbitMQ: every log exact under shuffling,
# duplicates, invalid UTF-8 and base64; malformed deliveries kept aside with
# their exact reasons; sharded queues.  The counters of drain_stats equal
# what the publisher sent.  Aggregation is held back (aggregate_delay 1h) so
# every stored copy, duplicates included, can be counted.
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Temp qw(tempdir);

need_env('BUILDLOG_AMQP_URL', 'BUILDLOG_ROOT');
my $url = amqp_url();
my $node = buildlog_node('drain_exact', qq(
buildlog.amqp_url = '$url'
buildlog.amqp_queues = 'tq.none'
buildlog.drain_workers = 2
buildlog.aggregate_delay = '1h'
));

# drain_stats summed over the workers: deliveries|parts|rejected|replaced
my $counters = q(
select sum(deliveries) || '|' || sum(parts) || '|' || sum(rejected) || '|' || sum(replaced)
  from buildlog.drain_stats);
sub counters
{
	return $node->safe_psql('postgres', $counters);
}

# wait_delivered(N, WHAT): wait until the workers counted N deliveries in all.
# A worker counts a batch after its commit, so then every row of those
# deliveries is stored (wait_parts sees the distinct parts: a duplicate or a
# rejected delivery may still be in flight then).
sub wait_delivered
{
	my ($n, $what) = @_;
	wait_query($node, 'select sum(deliveries) from buildlog.drain_stats', $n,
		"$what: every delivery counted");
}

# U+FFFD in the stored copies of the jobs' parts: all rows | one per number
sub fffd_stored
{
	my ($first, $last) = @_;
	return $node->safe_psql('postgres', qq(
select sum(n) || '|' || sum(n) filter (where first)
  from (select length(content) - length(replace(content, U&'\\FFFD', '')) n,
               row_number() over (partition by job_id, number) = 1 first
          from buildlog.log_parts where job_id between $first and $last) s));
}

subtest 'shuffled, duplicated, invalid UTF-8 and base64: every log exact, counters exact' => sub {
	my $dir = tempdir(CLEANUP => 1);
	fresh_queues($node, 'tq.a', 0);
	use_queues($node, 'tq.a');
	my $p = published(publish('--queue', 'tq.a', '--jobs', 200, '--first-job', 100000,
		'--parts', 500, '--size', 200, '--shuffle', '--dup', '0.05',
		'--invalid-utf8', '0.01', '--base64', '0.1', '--expect-dir', $dir));
	is($p->{messages}, 200 * 501 + $p->{duplicates}, 'publisher: every part, final and duplicate sent');
	wait_parts($node, 100000, 200, 200 * 501, 'shuffled');
	wait_delivered($p->{messages}, 'shuffled');
	check_logs($node, $dir, 100000, 200, 'shuffled');
	# every duplicate is a stored copy of its own; readers collapse them
	is($node->safe_psql('postgres', q(
select count(*) - count(distinct (job_id, number)) from buildlog.log_parts
 where job_id between 100000 and 100199)), $p->{duplicates},
		"the $p->{duplicates} duplicates published were stored as extra copies");
	# every 0xFF the publisher injected became one U+FFFD, counted per delivery
	my $want_fffd = 0;
	for my $job (100000 .. 100199)
	{
		$want_fffd += () = slurp_file("$dir/$job.log") =~ /\xFF/g;
	}
	my ($all, $distinct) = split /\|/, fffd_stored(100000, 100199);
	is($distinct, $want_fffd, "the $want_fffd invalid bytes published are $want_fffd U+FFFD in the logs");
	# one batch's counters are added one after the other: wait for all of them
	wait_query($node, $counters, "$p->{messages}|$p->{messages}|0|$all",
		"drain_stats: $p->{messages} deliveries and parts, none rejected, $all replaced (every copy's U+FFFD)");
	is($node->safe_psql('postgres',
		'select count(*) || bool_and(connected)::text from buildlog.drain_stats'), '2true',
		'drain_stats: two connected workers');
};

subtest '1,000 malformed deliveries kept aside with their exact reasons' => sub {
	my $dir = tempdir(CLEANUP => 1);
	my ($deliveries, $parts, $rejected, $replaced) = split /\|/, counters();
	fresh_queues($node, 'tq.m', 0);
	use_queues($node, 'tq.m');
	my $p = published(publish('--queue', 'tq.m', '--jobs', 20, '--first-job', 200000,
		'--parts', 500, '--size', 300, '--shuffle', '--malformed', 1000,
		'--malformed-job', 299999, '--expect-dir', $dir));
	wait_parts($node, 200000, 20, 20 * 501, 'malformed mix');
	wait_delivered($deliveries + $p->{messages}, 'malformed mix');
	# 13 kinds of malformed messages, cycled; one kind (76 of the 1,000) is
	# JSON with a raw 0xFF byte: invalid UTF-8 is cleaned, never a rejection
	wait_query($node, q(select count(*) from buildlog.rejected_parts where queue = 'tq.m'), '924',
		'the 924 undecodable deliveries are in rejected_parts');
	is($node->safe_psql('postgres', q(
select count(*) || '|' || sum(length(content) - length(replace(content, U&'\FFFD', '')))
  from buildlog.log_parts where job_id = 299999)), '76|76',
		'the 76 raw 0xFF deliveries were stored, each byte cleaned to one U+FFFD');
	check_logs($node, $dir, 200000, 20, 'malformed mix');
	wait_query($node, $counters, join('|', $deliveries + $p->{messages}, $parts + 20 * 501 + 76,
			$rejected + 924, $replaced + 76),
		"drain_stats: $p->{messages} more deliveries, 10,096 parts, 924 rejected, 76 replaced");
	# the 12 rejected kinds (77 each; "id" and "number" have two kinds each)
	# with their exact reasons (jansson's for the JSON), digits normalised
	is($node->safe_psql('postgres', q(
select count(*) || ' x ' || r
  from (select regexp_replace(reason, '[0-9]+', 'N', 'g') as r
          from buildlog.rejected_parts where queue = 'tq.m') s
 group by r order by r)), join("\n",
		'154 x "id" is not a positive integer',
		'77 x "log" is not a string',
		q(77 x "log" is not valid baseN: unexpected character '!' at offset N),
		'154 x "number" is neither an integer from N to N nor "last"',
		'77 x missing "id"',
		'77 x missing "number"',
		'77 x not a JSON object',
		q(77 x not valid JSON: '[' or '{' expected near 'this' (line N, column N, position N)),
		q(77 x not valid JSON: premature end of input near '"numb' (line N, column N, position N)),
		'77 x part of N bytes exceeds buildlog.max_part_bytes (N)'),
		'the rejected deliveries: every kind published, each with its exact reason and count');
	# each kept with the body, exchange and routing key it was sent with
	is($node->safe_psql('postgres', q(
select count(*) filter (where exchange = '' and routing_key = 'tq.m' and not redelivered)
       || '|' || count(*) filter (where position('299999'::bytea in body) > 0
                                  or position('missing id'::bytea in body) > 0
                                  or position('"abc"'::bytea in body) > 0)
       || '|' || count(*) filter (where length(body) > 1048576)
  from buildlog.rejected_parts where queue = 'tq.m')), '924|924|77',
		'rejected rows keep the exchange, routing key and raw body sent (77 bodies over 1 MB)');

	# an operator fixes one and replays it
	my $id = $node->safe_psql('postgres',
		q(select min(id) from buildlog.rejected_parts where reason like 'not valid JSON%'));
	is($node->safe_psql('postgres', qq(
select buildlog.replay_rejected($id, convert_to('{"id": 299998, "number": 0, "log": "fixed"}', 'UTF8'));
select buildlog.log(299998);)), "299998\nfixed", 'a fixed rejected delivery replays into its log');
	my ($ret, $out, $err) = $node->psql('postgres',
		qq(select buildlog.replay_rejected((select min(id) from buildlog.rejected_parts
		                                    where reason = 'not a JSON object'))));
	like($err, qr/still not a valid log part/, 'replaying an unfixed delivery explains why it fails');
};

subtest 'sharded: x-consistent-hash exchange over 4 queues, 2 workers' => sub {
	my $dir = tempdir(CLEANUP => 1);
	my ($deliveries) = split /\|/, counters();
	my $queues = fresh_queues($node, 'tq.s', 4, 'tq.sharded');
	is($queues, 'tq.s.1,tq.s.2,tq.s.3,tq.s.4', 'declare_queues made four shard queues');
	use_queues($node, $queues);
	is($node->safe_psql('postgres',
		q(select string_agg(queues, ' ' order by worker) from buildlog.drain_stats)),
		'tq.s.1,tq.s.3 tq.s.2,tq.s.4', 'the two workers split the four shard queues');
	my $p = published(publish('--exchange', 'tq.sharded', '--jobs', 100, '--first-job', 300000,
		'--parts', 200, '--shuffle', '--dup', '0.05', '--expect-dir', $dir));
	wait_parts($node, 300000, 100, 100 * 201, 'sharded');
	check_logs($node, $dir, 300000, 100, 'sharded');
	wait_delivered($deliveries + $p->{messages},
		"drain_stats: the $p->{messages} messages routed to the shards were delivered");
};

done_testing();
