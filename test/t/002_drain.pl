# Drain workers against a real RabbitMQ: exact logs under shuffling and
# duplicates, malformed deliveries kept aside, sharded queues, a broker
# restart and a postmaster crash mid-stream, DROP DATABASE / DROP EXTENSION
# while the workers run, and prompt SIGTERM.
#
# Needs BUILDLOG_AMQP_URL (a broker script/stack started), BUILDLOG_ROOT (the
# repository, for bench/bin/publish and script/stack) and the STACK_*
# variables of that broker, as script/test sets them.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Digest::MD5 qw(md5_hex);
use File::Temp qw(tempdir);
use Time::HiRes qw(time sleep);

my $url = $ENV{BUILDLOG_AMQP_URL} or plan skip_all => 'BUILDLOG_AMQP_URL not set';
my $root = $ENV{BUILDLOG_ROOT} or plan skip_all => 'BUILDLOG_ROOT not set';
my $publish = "$root/bench/bin/publish";

my $node = PostgreSQL::Test::Cluster->new('drain');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'buildlog'
buildlog.database = 'postgres'
buildlog.amqp_url = '$url'
buildlog.amqp_queues = 'tq.none'
buildlog.drain_workers = 2
buildlog.aggregate_delay = '1s'
max_worker_processes = 16
log_min_messages = info
));
$node->start;
$node->safe_psql('postgres', q(
create schema partman;
create extension pg_partman schema partman;
create extension buildlog;
));

# Point the workers at other queues, the documented way.
sub use_queues
{
	my ($queues) = @_;
	$node->safe_psql('postgres', qq(
alter system set buildlog.amqp_queues = '$queues';
select pg_reload_conf();
));
	$node->safe_psql('postgres', 'select buildlog.restart_workers()');
}

# Declare fresh queues (delete leftovers first) through declare_queues().
sub fresh_queues
{
	my ($queue, $shards, $exchange) = @_;
	my @names = $shards ? map { "$queue.$_" } 1 .. $shards : ($queue);
	for my $q (@names) {
		system('amqp-delete-queue', "--url=$url", '-q', $q) ;
	}
	my $list = $node->safe_psql('postgres',
		"select string_agg(queue_name, ',') from buildlog.declare_queues('$queue', $shards"
		  . ($exchange ? ", '$exchange'" : '') . ')');
	return $list;
}

# Run the publisher; returns its summary line.
sub publish
{
	my @args = @_;
	my ($out, $err) = run_command([ $publish, '--url', $url, @args ]);
	like($out, qr/^published \d+ messages/m, 'publisher: ' . (split /\n/, $out)[-1])
	  or diag($err);
	return $out;
}

# Wait until the jobs' distinct stored parts (pending or already aggregated
# by the scheduler, which runs all along) reach the expected count.
sub wait_parts
{
	my ($first, $jobs, $expected, $what) = @_;
	my $last = $first + $jobs - 1;
	ok( $node->poll_query_until('postgres', qq(
select count(*) from (select job_id, number from buildlog.log_parts
                       where job_id between $first and $last
                      union
                      select job_id, unnest(part_numbers) from buildlog.logs
                       where job_id between $first and $last) p), $expected),
		"$what: all $expected parts stored");
}

# Compare every job's log with the publisher's expected (cleaned) text.
sub check_logs
{
	my ($dir, $first, $jobs, $what) = @_;
	my $last = $first + $jobs - 1;
	my %got = map { split /\|/ } split /\n/, $node->safe_psql('postgres', qq(
select job_id || '|' || coalesce(md5(buildlog.log(job_id)), 'none')
  from generate_series($first, $last) job_id));
	my @bad;
	for my $job ($first .. $last) {
		open(my $fh, '<:raw', "$dir/$job.clean") or die "$dir/$job.clean: $!";
		local $/;
		my $want = md5_hex(<$fh>);
		push @bad, $job if ($got{$job} // '') ne $want;
	}
	is(scalar(@bad), 0, "$what: every log equals its expected text exactly")
	  or diag("mismatched jobs: @bad[0 .. ($#bad < 9 ? $#bad : 9)]");
}

# ---- 200 jobs x 500 parts, shuffled, 5% duplicated
{
	my $dir = tempdir(CLEANUP => 1);
	fresh_queues('tq.a', 0);
	use_queues('tq.a');
	publish('--queue', 'tq.a', '--jobs', 200, '--first-job', 100000, '--parts', 500,
		'--size', 200, '--shuffle', '--dup', '0.05', '--invalid-utf8', '0.01',
		'--base64', '0.1', '--expect-dir', $dir);
	wait_parts(100000, 200, 200 * 501, 'shuffled');
	check_logs($dir, 100000, 200, 'shuffled');
	my $stats = $node->safe_psql('postgres',
		q(select count(*), sum(deliveries) > 0, bool_and(connected), sum(replaced) > 0
		    from buildlog.drain_stats));
	is($stats, '2|t|t|t', 'drain_stats: two connected workers counted deliveries and replacements');
}

# ---- 1,000 malformed deliveries mixed into good traffic
{
	my $dir = tempdir(CLEANUP => 1);
	fresh_queues('tq.m', 0);
	use_queues('tq.m');
	publish('--queue', 'tq.m', '--jobs', 20, '--first-job', 200000, '--parts', 500,
		'--size', 300, '--shuffle', '--malformed', 1000, '--malformed-job', 299999,
		'--expect-dir', $dir);
	wait_parts(200000, 20, 20 * 501, 'malformed mix');
	# 13 kinds of malformed messages, cycled; one kind (76 of the 1,000) is
	# JSON with a raw 0xFF byte: invalid UTF-8 is cleaned, never a rejection
	ok($node->poll_query_until('postgres',
		q(select count(*) from buildlog.rejected_parts where queue = 'tq.m'), '924'),
		'the 924 undecodable deliveries are in rejected_parts');
	is($node->safe_psql('postgres',
		q(select position(U&'\FFFD' in buildlog.log(299999)) > 0)), 't',
		'the raw 0xFF deliveries were stored, cleaned to U+FFFD');
	check_logs($dir, 200000, 20, 'malformed mix');
	# the 12 rejected kinds (77 each; "id" and "number" have two kinds each)
	# with their exact reasons, digits normalised
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
		q(77 x not valid JSON: unexpected character 't' at offset N),
		'77 x not valid JSON: unterminated string starting at offset N',
		'77 x part of N bytes exceeds buildlog.max_part_bytes (N)'),
		'the rejected deliveries: every kind published, each with its exact reason and count');
	# each kept with the body, exchange and routing key it was sent with
	is($node->safe_psql('postgres', q(
select count(*) filter (where exchange = '' and routing_key = 'tq.m' and not redelivered)
       || '|' || count(*) filter (where position('299999' in convert_from(body, 'SQL_ASCII')) > 0
                                  or position('missing id' in convert_from(body, 'SQL_ASCII')) > 0
                                  or position('"abc"' in convert_from(body, 'SQL_ASCII')) > 0)
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
}

# ---- sharded: x-consistent-hash exchange over 4 queues, 2 workers
{
	my $dir = tempdir(CLEANUP => 1);
	my $queues = fresh_queues('tq.s', 4, 'tq.sharded');
	is($queues, 'tq.s.1,tq.s.2,tq.s.3,tq.s.4', 'declare_queues made four shard queues');
	use_queues($queues);
	publish('--exchange', 'tq.sharded', '--jobs', 100, '--first-job', 300000,
		'--parts', 200, '--shuffle', '--dup', '0.05', '--expect-dir', $dir);
	wait_parts(300000, 100, 100 * 201, 'sharded');
	check_logs($dir, 300000, 100, 'sharded');
	is($node->safe_psql('postgres',
		q(select string_agg(queues, ' ' order by worker) from buildlog.drain_stats)),
		'tq.s.1,tq.s.3 tq.s.2,tq.s.4', 'the two workers split the four shard queues');
}

# ---- the broker is fully restarted mid-stream
{
	my $dir = tempdir(CLEANUP => 1);
	fresh_queues('tq.r', 0);
	use_queues('tq.none');    # park the workers while the backlog is published
	publish('--queue', 'tq.r', '--jobs', 100, '--first-job', 400000, '--parts', 1000,
		'--size', 200, '--shuffle', '--dup', '0.05', '--confirm', '--expect-dir', $dir);
	my $before = $node->safe_psql('postgres', 'select coalesce(sum(reconnects), 0) from buildlog.drain_stats');
	use_queues('tq.r');
	$node->poll_query_until('postgres', q(
select count(*) > 5000 from buildlog.log_parts where job_id between 400000 and 400099));
	my $mid = $node->safe_psql('postgres',
		q(select count(*) from buildlog.log_parts where job_id between 400000 and 400099));
	cmp_ok($mid, '<', 100 * 1001, "broker restarted mid-stream ($mid parts stored)");
	system("$root/script/stack", 'restart', 'rabbitmq') == 0 or die 'broker restart failed';
	wait_parts(400000, 100, 100 * 1001, 'broker restart');
	check_logs($dir, 400000, 100, 'broker restart');
	cmp_ok($node->safe_psql('postgres', 'select sum(reconnects) from buildlog.drain_stats'),
		'>', $before, 'the workers reconnected by themselves');
}

# ---- the postmaster is killed mid-stream and restarted
{
	my $dir = tempdir(CLEANUP => 1);
	fresh_queues('tq.k', 0);
	use_queues('tq.none');
	publish('--queue', 'tq.k', '--jobs', 100, '--first-job', 500000, '--parts', 1000,
		'--size', 200, '--shuffle', '--confirm', '--expect-dir', $dir);
	use_queues('tq.k');
	$node->poll_query_until('postgres', q(
select count(*) > 5000 from buildlog.log_parts where job_id between 500000 and 500099));
	$node->stop('immediate');
	$node->start;
	wait_parts(500000, 100, 100 * 1001, 'postmaster crash');
	check_logs($dir, 500000, 100, 'postmaster crash');
}

# ---- the scheduler aggregated every finished job, exactly, while parts streamed
{
	ok($node->poll_query_until('postgres', q(
select count(*) = 0 from buildlog.log_parts where job_id between 100000 and 100199)),
		'scheduler: every part of the finished jobs was aggregated');
	my $agg = $node->safe_psql('postgres', q(
select count(*) filter (where aggregated_at is not null and final_number is not null)
  from buildlog.logs where job_id between 100000 and 100199));
	is($agg, '200', 'scheduler: all 200 shuffled jobs aggregated with their final part');
	my $stats = $node->safe_psql('postgres',
		q(select aggregated > 0, parts_merged > 0, aggregate_failures from buildlog.scheduler_stats));
	is($stats, 't|t|0', 'scheduler_stats (since the crash restart): jobs and parts counted, no failure');
}

# ---- DROP DATABASE and DROP EXTENSION do not hang while the workers run
{
	my $dir = tempdir(CLEANUP => 1);
	fresh_queues('tq.d', 0);
	use_queues('tq.d');
	my $pub = IPC::Run::start([ $publish, '--url', $url, '--queue', 'tq.d', '--jobs', 20,
		'--first-job', 600000, '--parts', 500, '--rate', 5000, '--expect-dir', $dir ],
		'>', \my $pout, '2>', \my $perr);
	sleep 0.5;
	$node->safe_psql('postgres', 'create database scratch');
	my $t0 = time;
	$node->safe_psql('postgres', 'drop database scratch');
	my $elapsed = time - $t0;
	cmp_ok($elapsed, '<', 5, sprintf('DROP DATABASE took %.2f s with the workers running', $elapsed));

	$t0 = time;
	$node->safe_psql('postgres', 'drop extension buildlog');
	$elapsed = time - $t0;
	cmp_ok($elapsed, '<', 5, sprintf('DROP EXTENSION took %.2f s with the workers running', $elapsed));
	ok($node->poll_query_until('postgres',
		q(select count(*) = 0 from pg_stat_activity where backend_type in ('buildlog drain', 'buildlog scheduler')
		    and state = 'active'), 't'), 'workers idle without the extension');
	$pub->finish;
	$node->safe_psql('postgres', 'create extension buildlog');
	use_queues('tq.d');
	# deliveries nacked while the extension was gone come back; all of them
	# after the re-creation are stored
	ok($node->poll_query_until('postgres',
		q(select count(*) = 0 from buildlog.drain_stats where not connected), 't'),
		'workers reconnect after CREATE EXTENSION');
	like(slurp_file($node->logfile), qr/extension buildlog is not installed in database "postgres"; waiting/,
		'the workers said once that the extension is missing');
}

# ---- heartbeats are served while idle: a 2 s heartbeat survives 9 idle seconds
{
	$node->safe_psql('postgres', q(
alter system set buildlog.amqp_heartbeat = '2s';
select pg_reload_conf();
));
	$node->safe_psql('postgres', 'select buildlog.restart_workers()');
	ok($node->poll_query_until('postgres',
		q(select count(*) = 2 from buildlog.drain_stats where connected)), 'reconnected with a 2 s heartbeat');
	my $before = $node->safe_psql('postgres', 'select sum(reconnects) from buildlog.drain_stats');
	sleep 9;    # the broker closes a connection after two missed heartbeats (4 s)
	is($node->safe_psql('postgres',
		"select sum(reconnects) = $before and bool_and(connected) from buildlog.drain_stats"),
		't', 'idle for 9 s with a 2 s heartbeat: still connected, no reconnect');
}

# ---- SIGTERM stops a worker within a second
{
	my $pid = $node->safe_psql('postgres', 'select min(pid) from buildlog.drain_stats');
	my $t0 = time;
	$node->safe_psql('postgres', "select pg_terminate_backend($pid)");
	while (kill(0, $pid) && time - $t0 < 5) { sleep 0.02; }
	my $elapsed = time - $t0;
	cmp_ok($elapsed, '<', 1, sprintf('a drain worker exited %.3f s after SIGTERM', $elapsed));

	$pid = $node->safe_psql('postgres', 'select pid from buildlog.scheduler_stats');
	$t0 = time;
	$node->safe_psql('postgres', "select pg_terminate_backend($pid)");
	while (kill(0, $pid) && time - $t0 < 5) { sleep 0.02; }
	$elapsed = time - $t0;
	cmp_ok($elapsed, '<', 1, sprintf('the scheduler exited %.3f s after SIGTERM', $elapsed));
}

$node->stop;
my $log = slurp_file($node->logfile);
my $floods = () = $log =~ /could not consume queue "tq.none"/g;
cmp_ok($floods, '<=', 2 * 8, "no log flood: $floods lines about the parked queue");
unlike($log, qr/guest:guest/, 'the AMQP password never appears in the server log');
done_testing();
