# Drain and worker faults: queue names taken verbatim, poison
# deliveries kept aside with their error while good data flows, a failing
# rejected store held unacked with the connection kept alive by heartbeats,
# batches bounded by bytes, lock-table exhaustion split away, durable acks
# under synchronous_commit = off, a hostile database search_path, cancels of
# idle workers, one log line per kind of error, the AMQP password out of
# every monitoring view (password file), and too few worker slots.
#
# Needs BUILDLOG_AMQP_URL, BUILDLOG_ROOT and the STACK_* variables of the
# broker (script/test sets them).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Temp qw(tempdir);
use Time::HiRes qw(time sleep);
use BuildlogTest qw(wait_until wait_query queue_depth);

my $url = $ENV{BUILDLOG_AMQP_URL} or plan skip_all => 'BUILDLOG_AMQP_URL not set';
my $root = $ENV{BUILDLOG_ROOT} or plan skip_all => 'BUILDLOG_ROOT not set';
my $publish = "$root/tools/bin/publish";

# The node connects with a wrong password in the URL: the real one comes
# from buildlog.amqp_password_file.
my ($user, $password, $rest) = $url =~ m{^amqp://([^:@]+):([^@]*)@(.*)$}
  or die "BUILDLOG_AMQP_URL $url has no user:password";
my $fake = 'url-password-not-used';
my $secrets = tempdir(CLEANUP => 1);
open(my $pf, '>', "$secrets/amqp_password") or die $!;
print $pf "  $password\n";
close($pf);
chmod 0600, "$secrets/amqp_password";

my $node = PostgreSQL::Test::Cluster->new('faults');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'buildlog'
buildlog.database = 'postgres'
buildlog.amqp_url = 'amqp://$user:$fake\@$rest'
buildlog.amqp_password_file = '$secrets/amqp_password'
buildlog.amqp_queues = 'tq.none'
buildlog.amqp_heartbeat = '2s'
buildlog.drain_workers = 1
buildlog.archive_workers = 1
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

# Point the workers at other queues, the documented way; when not parked,
# wait until the worker is connected and has counted that reconnect (it sets
# connected first), so reconnects read afterwards is a baseline.
sub use_queues
{
	my ($queues) = @_;
	my $reconnects = $node->safe_psql('postgres', 'select coalesce(sum(reconnects), 0) from buildlog.drain_stats');
	$node->safe_psql('postgres', qq(
alter system set buildlog.amqp_queues = '$queues';
select pg_reload_conf();
));
	$node->safe_psql('postgres', 'select buildlog.restart_workers()');
	(my $shown = $queues) =~ s/,\s+/,/g;
	if ($queues eq 'tq.none') {    # parked: no such queue
		ok($node->poll_query_until('postgres',
			q(select count(*) = 1 from buildlog.drain_stats where queues = 'tq.none')),
			'the worker is parked');
		return;
	}
	ok($node->poll_query_until('postgres', qq(
select count(*) = 1 from buildlog.drain_stats
 where connected and queues = '$shown' and reconnects > $reconnects)),
		"the worker consumes $shown");
}

# Declare a fresh durable queue (delete a leftover first).
sub fresh_queue
{
	my ($queue) = @_;
	system('amqp-delete-queue', "--url=$url", '-q', $queue);
	$node->safe_psql('postgres', "select buildlog.declare_queues('$queue', 0)");
}

# Run the publisher; dies when it fails.
sub publish
{
	my ($in, @args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $publish, '--url', $url, @args ], '<', \$in, '>', \$out, '2>', \$err)
	  or die "publish failed: $err";
	return $out;
}

# Distinct stored parts of jobs first .. last (pending or aggregated).
sub parts_sql
{
	my ($first, $last) = @_;
	return qq(
select count(*) from (select job_id, number from buildlog.log_parts
                       where job_id between $first and $last
                      union
                      select job_id, unnest(part_numbers) from buildlog.logs
                       where job_id between $first and $last) p);
}

# Wait until jobs first .. last have the expected distinct parts.
sub wait_parts
{
	my ($first, $last, $expected, $what) = @_;
	ok($node->poll_query_until('postgres', parts_sql($first, $last), $expected),
		"$what: all $expected parts stored");
}

sub stat1
{
	my ($column) = @_;
	return $node->safe_psql('postgres', "select $column from buildlog.drain_stats");
}

# ---- queue names verbatim (case, > 63 bytes, whitespace trimmed)
{
	my $long = 'tq.Long.' . ('x' x 92);    # 100 bytes
	fresh_queue('Reporting.Jobs.1');
	fresh_queue($long);
	use_queues("Reporting.Jobs.1,  $long");
	is(stat1('queues'), "Reporting.Jobs.1,$long", 'drain_stats shows both names verbatim');
	publish('', '--queue', 'Reporting.Jobs.1', '--jobs', 5, '--first-job', 910000, '--parts', 10);
	publish('', '--queue', $long, '--jobs', 5, '--first-job', 910100, '--parts', 10);
	wait_parts(910000, 910004, 55, 'mixed-case queue');
	wait_parts(910100, 910104, 55, '100-byte queue');

	my ($ret, $out, $err) = $node->psql('postgres',
		q(alter system set buildlog.amqp_queues = 'a, ,b'));
	like($err, qr/must be a comma-separated list of queue names.*\n.*Entry 2 of the list is empty/,
		'an empty entry is refused with its position');
	($ret, $out, $err) = $node->psql('postgres',
		"alter system set buildlog.amqp_queues = 'a," . ('y' x 256) . "'");
	like($err, qr/Entry 2 of the list has 256 bytes; AMQP queue names have at most 255/,
		'a name over 255 bytes is refused');
	is($node->safe_psql('postgres', 'show buildlog.amqp_queues'), "Reporting.Jobs.1,  $long",
		'the refused values changed nothing');
}

# ---- a poison delivery in a batch is kept aside with its error
$node->safe_psql('postgres', q(
create function public.poison() returns trigger language plpgsql as $$
begin
  if new.content = 'POISON' then
    raise exception 'poisoned part of job %', new.job_id using errcode = 'P0001';
  end if;
  return new;
end $$;
create trigger poison before insert on buildlog.log_parts
  for each row execute function public.poison();
));
{
	fresh_queue('tq.p');
	use_queues('tq.none');    # park the worker: one batch holds everything
	publish(qq({"id": 920999, "number": 0, "log": "POISON"}\n), '--queue', 'tq.p', '--stdin');
	publish('', '--queue', 'tq.p', '--jobs', 20, '--first-job', 920000, '--parts', 20);
	use_queues('tq.p');
	wait_parts(920000, 920019, 20 * 21, 'good parts behind a poison delivery');
	ok($node->poll_query_until('postgres',
		q(select count(*) from buildlog.rejected_parts where queue = 'tq.p'), '1'),
		'the poison delivery is in rejected_parts');
	is($node->safe_psql('postgres',
		q(select reason || ' | ' || convert_from(body, 'UTF8') from buildlog.rejected_parts where queue = 'tq.p')),
		'could not be written: P0001: poisoned part of job 920999 | {"id": 920999, "number": 0, "log": "POISON"}',
		'its reason is the SQLSTATE and the error; its body is kept');
	# the counters follow the commit of the rejected row
	wait_query($node, 'select error_rejected, split_retries > 0 from buildlog.drain_stats',
		'1|t', 'drain_stats: one delivery rejected because of an error, after split retries');
}

# ---- storing the rejected row fails too: the deliveries are
# held unacked, the worker backs off without going deaf (2 s heartbeat),
# then stores everything once the fault is gone
$node->safe_psql('postgres', q(
create function public.refuse() returns trigger language plpgsql as $$
begin
  raise exception 'rejected_parts unavailable' using errcode = 'P0001';
end $$;
create trigger refuse before insert on buildlog.rejected_parts
  for each row execute function public.refuse();
));
{
	fresh_queue('tq.b');
	use_queues('tq.none');
	publish(qq({"id": 930999, "number": 0, "log": "POISON"}\n), '--queue', 'tq.b', '--stdin');
	publish('', '--queue', 'tq.b', '--jobs', 10, '--first-job', 930000, '--parts', 20);
	use_queues('tq.b');
	my $reconnects = stat1('reconnects');
	my $t0 = time;
	# back-off 0.5, 1, 2, 4, 8 s: 5 failed rounds take 7.5 s, the last wait
	# alone is four heartbeats
	ok($node->poll_query_until('postgres',
		q(select count(*) > 0 from buildlog.drain_stats
		   where last_error like '%could not store a failed delivery in rejected_parts either%'
		     and failed_batches >= 20)), 'the rejected store keeps failing');
	ok($node->poll_query_until('postgres',
		"select extract(epoch from now()) - $t0 > 13"), 'waited 13 s into the back-off');
	is($node->safe_psql('postgres', "select reconnects = $reconnects and connected from buildlog.drain_stats"),
		't', 'no reconnect during 13 s of back-off with a 2 s heartbeat');
	is($node->safe_psql('postgres',
		q(select count(*) from buildlog.rejected_parts where queue = 'tq.b')), '0',
		'no good delivery was turned into a rejected row');
	$node->safe_psql('postgres', 'drop trigger refuse on buildlog.rejected_parts');
	wait_parts(930000, 930009, 10 * 21, 'after the fault');
	ok($node->poll_query_until('postgres',
		q(select count(*) || ' ' || bool_and(not redelivered) from buildlog.rejected_parts where queue = 'tq.b'),
		'1 true'), 'the poison delivery is stored, never returned to the broker');
	is($node->safe_psql('postgres', "select reconnects = $reconnects from buildlog.drain_stats"),
		't', 'still the same connection');
}
$node->safe_psql('postgres', 'drop trigger poison on buildlog.log_parts');

# ---- a batch is bounded by bytes as well as by count
{
	fresh_queue('tq.bytes');
	$node->safe_psql('postgres', q(
alter system set buildlog.batch_bytes = '64kB';
alter system set buildlog.flush_ms = 1000;
select pg_reload_conf();
));
	use_queues('tq.none');
	publish('', '--queue', 'tq.bytes', '--jobs', 2, '--first-job', 940000, '--parts', 50,
		'--size', 10000, '--no-final');
	$node->restart;    # fresh counters (max_batch)
	use_queues('tq.bytes');
	wait_parts(940000, 940001, 100, '10 kB parts');
	# the counters (max_batch among them) follow each batch's commit
	wait_query($node, 'select deliveries from buildlog.drain_stats', '100',
		'the 100 deliveries are counted');
	my $max = stat1('max_batch');
	ok($max >= 2 && $max <= 7, "batches of 10 kB deliveries stop at 64 kB (largest: $max)");
	$node->safe_psql('postgres', q(
alter system reset buildlog.batch_bytes;
alter system reset buildlog.flush_ms;
select pg_reload_conf();
));
}

# ---- a batch too large for the lock table is split until it fits
{
	fresh_queue('tq.locks');
	my $offset = -s $node->logfile;
	$node->append_conf('postgresql.conf', qq(
max_locks_per_transaction = 10
max_connections = 10
buildlog.batch_size = 5000
buildlog.flush_ms = 2000
));
	use_queues('tq.none');
	publish('', '--queue', 'tq.locks', '--jobs', 3000, '--first-job', 950000, '--parts', 1);
	$node->restart;
	my $t0 = time;
	use_queues('tq.locks');
	wait_parts(950000, 952999, 6000, 'one job lock each, 6,000 deliveries, max_locks_per_transaction = 10');
	note(sprintf('stored in %.1f s', time - $t0));
	wait_query($node, 'select deliveries from buildlog.drain_stats', '6000',
		'the 6,000 deliveries are counted');
	is($node->safe_psql('postgres',
		'select split_retries > 0, error_rejected, max_batch < 5000 from buildlog.drain_stats'),
		't|0|t', 'the batch was split into pieces that fit, nothing rejected');
	like(slurp_file($node->logfile, $offset),
		qr/WARNING:  buildlog drain 1: \d+ deliveries not written, retrying them in smaller pieces: 53200: out of shared memory/,
		'the split was logged with its error');
}

# ---- durable acks whatever synchronous_commit says; the
# workers' sessions ignore a hostile database search_path
$node->append_conf('postgresql.conf', qq(
max_locks_per_transaction = 64
max_connections = 100
buildlog.batch_size = 500
buildlog.flush_ms = 20
synchronous_commit = off
wal_writer_delay = '10s'
wal_writer_flush_after = '1GB'
));
$node->safe_psql('postgres', q(
alter database postgres set synchronous_commit = off;
create schema evil;
create table public.evil_calls (backend_type text, at timestamptz default pg_catalog.now());
create function evil.now() returns timestamptz language sql as $$
  insert into public.evil_calls (backend_type)
  select backend_type from pg_catalog.pg_stat_activity where pid = pg_catalog.pg_backend_pid()
  returning pg_catalog.now() $$;
grant usage on schema evil to public;
alter database postgres set search_path = evil, pg_catalog;
));
{
	fresh_queue('tq.durable');
	$node->restart;
	use_queues('tq.none');
	publish('', '--queue', 'tq.durable', '--jobs', 20, '--first-job', 960000, '--parts', 99,
		'--confirm');
	use_queues('tq.durable');
	wait_parts(960000, 960019, 2000, 'before the crash');
	# acked = gone from the queue (ready + unacknowledged)
	ok(wait_until('tq.durable to hold no message', sub {
				my $depth = queue_depth('tq.durable');
				(defined $depth && $depth eq '0', $depth);
			}, interval => 0.2), 'every delivery acked');
	$node->kill9;
	# the orphaned children notice the postmaster's death and exit
	ok(poll_start($node), 'restarted after kill -9 of the postmaster');
	is($node->safe_psql('postgres', parts_sql(960000, 960019)), '2000',
		'all 2,000 acked parts survived the crash (synchronous_commit = off for server and database)');

	# the scheduler and the drain ran in the hostile search_path
	ok($node->poll_query_until('postgres',
		q(select count(*) > 0 from buildlog.scheduler_stats
		   where last_round > (select pg_postmaster_start_time() + interval '2 s'))),
		'the scheduler ran rounds since the restart');
	is($node->safe_psql('postgres',
		q(select count(*) from public.evil_calls where backend_type like 'buildlog%')),
		'0', 'no worker ran the planted evil.now()');
	$node->safe_psql('postgres', q(
alter database postgres reset search_path;
alter database postgres reset synchronous_commit;
));
}

# Start a node whose killed postmaster's children may still be exiting.
sub poll_start
{
	my ($n) = @_;
	return wait_until('the node to start after the kill (its old children gone)', sub {
			return 1 if $n->start(fail_ok => 1);
			$n->{_pid} = undef;    # start() read the dead postmaster's pid file
			return (0, 'pg_ctl start failed');
		}, interval => 0.2);
}

# ---- pg_cancel_backend() on idle workers cancels nothing
{
	my %pid = (
		drain => stat1('pid'),
		scheduler => $node->safe_psql('postgres', 'select pid from buildlog.scheduler_stats'),
		archive => $node->safe_psql('postgres', 'select pid from buildlog.archive_stats'));
	my $t0 = $node->safe_psql('postgres', 'select now()');
	for my $kind (sort keys %pid) {
		is($node->safe_psql('postgres', "select pg_cancel_backend($pid{$kind})"), 't',
			"cancel the idle $kind worker");
	}
	# one aggregation round and a stored part later, every worker is the same
	publish('', '--queue', 'tq.durable', '--jobs', 1, '--first-job', 961000, '--parts', 1);
	wait_parts(961000, 961000, 2, 'after the cancels');
	ok($node->poll_query_until('postgres',
		"select count(*) = 1 from buildlog.scheduler_stats where last_round > '$t0'::timestamptz + interval '2 s'"),
		'the scheduler carries on');
	is($node->safe_psql('postgres', qq(
select string_agg(pid::text, ' ' order by pid) from (
  select pid from buildlog.drain_stats union all
  select pid from buildlog.scheduler_stats union all
  select pid from buildlog.archive_stats) p)),
		join(' ', sort { $a <=> $b } values %pid), 'drain, scheduler and archive: same PIDs');
}

# ---- many jobs failing at once log one line per kind of error
{
	$node->safe_psql('postgres', q(
create function public.broken() returns trigger language plpgsql as $$
begin
  raise exception 'hand-broken log of job %', new.job_id;
end $$;
create trigger broken before update on buildlog.logs
  for each row when (new.job_id between 970000 and 970199) execute function public.broken();
));
	my $offset = -s $node->logfile;
	my $failures = $node->safe_psql('postgres', 'select aggregate_failures from buildlog.scheduler_stats');
	$node->safe_psql('postgres', q(
select buildlog.write_parts(array_agg(j::bigint), array_agg(0), array_agg('x'::text), array_agg(true))
  from generate_series(970000, 970199) j;
));
	ok($node->poll_query_until('postgres',
		"select aggregate_failures >= $failures + 200 from buildlog.scheduler_stats"),
		'200 jobs failed to aggregate');
	my $log = slurp_file($node->logfile, $offset);
	my $lines = () = $log =~ /aggregating job \d+ failed/g;
	ok($lines >= 1 && $lines <= 2, "one line for 200 failures of one kind ($lines)");
	$node->safe_psql('postgres', 'drop trigger broken on buildlog.logs');
}

# ---- the AMQP password in no monitoring path; the file supplies it
{
	$node->safe_psql('postgres', q(
create role watcher login;
grant pg_read_all_settings, pg_monitor to watcher;
grant usage on schema buildlog to watcher;
grant select on buildlog.drain_stats to watcher;
));
	my $seen = $node->safe_psql('postgres', q(
set role watcher;
select coalesce(string_agg(concat_ws(' ', name, setting, reset_val, boot_val, sourcefile), E'\n'), '')
  from pg_settings where name like 'buildlog.%';
));
	unlike($seen, qr/\Q$fake\E|:\Q$password\E\@/, 'pg_settings (all columns) shows no AMQP password to pg_read_all_settings');
	is($node->safe_psql('postgres', q(set role watcher; select current_setting('buildlog.amqp_url'))),
		"amqp://$user:***\@$rest", 'current_setting() shows the URL masked');
	my $views = $node->safe_psql('postgres', q(
set role watcher;
select concat(string_agg(concat_ws(' ', queues, last_error), ' '),
              (select string_agg(concat_ws(' ', query, application_name), ' ') from pg_stat_activity))
  from buildlog.drain_stats;));
	unlike($views, qr/\Q$fake\E|:\Q$password\E\@/, 'drain_stats and pg_stat_activity show no password');
	is(stat1('connected'), 't', 'connected with the password from buildlog.amqp_password_file');
}

$node->stop;
my $log = slurp_file($node->logfile);
unlike($log, qr/\Q$fake\E/, 'the URL password never appears in the server log');

# ---- too few worker slots: a clear warning, the scheduler first
{
	my $http_port = PostgreSQL::Test::Cluster::get_free_port();
	my $small = PostgreSQL::Test::Cluster->new('slots');
	$small->init;
	$small->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'buildlog'
buildlog.database = 'postgres'
buildlog.amqp_url = '$url'
buildlog.amqp_queues = 'tq.w1,tq.w2'
buildlog.drain_workers = 2
buildlog.archive_workers = 1
max_worker_processes = 3
buildlog.http_listen = '127.0.0.1:$http_port'
));
	$small->start;
	$small->safe_psql('postgres', q(
create schema partman;
create extension pg_partman schema partman;
create extension buildlog;
));
	like(slurp_file($small->logfile),
		qr/WARNING:  buildlog needs 7 background worker slots \(1 scheduler, 2 drain, 1 archive, 1 http, 2 http reader\), but max_worker_processes = 3 leaves 2\n.*DETAIL:  Starting the scheduler, 1 of 2 drain workers, 0 of 1 archive workers and 0 of 3 HTTP workers \(the service and its readers\).\n.*HINT:  Raise max_worker_processes to at least 8 .* or lower buildlog.drain_workers, buildlog.archive_workers or buildlog.http_readers/,
		'the start-up warning names the numbers and the setting');
	ok($small->poll_query_until('postgres', 'select count(*) from buildlog.scheduler_stats', '1'),
		'the scheduler runs');
	ok($small->poll_query_until('postgres', 'select string_agg(queues, \' \') from buildlog.drain_stats',
		'tq.w1,tq.w2'), 'the one drain worker that fits consumes every queue');
	$small->stop;
}

done_testing();
