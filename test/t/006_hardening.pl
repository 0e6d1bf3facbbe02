# Hardening of the core with the scheduler running: a hand-edited
# row neither crashes the cluster nor stops the scheduler, failing jobs back
# off and never starve healthy ones, the worker sessions ignore a hostile
# database search_path, a pg_dump / pg_restore round trip keeps numbering
# rejected deliveries, and the SQL surface answers without the preload.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use IPC::Run;
use BuildlogTest qw(wait_until wait_query);

my $node = PostgreSQL::Test::Cluster->new('hardening');
$node->init;
$node->append_conf('postgresql.conf', q(
shared_preload_libraries = 'buildlog'
buildlog.database = 'postgres'
buildlog.drain_workers = 0
buildlog.archive_workers = 0
buildlog.aggregate_delay = '1s'
log_min_messages = info
));
$node->start;
$node->safe_psql('postgres', q(
create schema partman;
create extension pg_partman schema partman;
create extension buildlog;
));

# Poll $sql until it returns $want (BuildlogTest's wait: it fails naming
# what was awaited and what was seen last).
sub wait_for
{
	my ($sql, $want, $what) = @_;
	return wait_query($node, $sql, $want, $what);
}

sub scheduler_pid
{
	return $node->safe_psql('postgres', q(
select pid from pg_stat_activity where backend_type = 'buildlog scheduler'));
}

my $pid;
ok(wait_until('the scheduler in pg_stat_activity', sub { $pid = scheduler_pid(); ($pid =~ /^\d+$/, $pid) }),
	'the scheduler runs');

# ---- 1. a hand-edited row: an error for that job, no crash, no crash loop
$node->safe_psql('postgres', q(
select buildlog.write_parts('{1,1,1}', '{0,1,2}', array[E'a\n', E'b\n', E'c\n'], '{f,f,t}');
select buildlog.aggregate(1);
update buildlog.logs set content = 'x' where job_id = 1;
select buildlog.write_parts('{1}', '{3}', '{late}', '{f}');
));
wait_for(q(select aggregate_failures > 0 from buildlog.logs where job_id = 1), 't',
	'the scheduler tried the corrupt job and recorded the failure');
like($node->safe_psql('postgres', q(select aggregate_error from buildlog.logs where job_id = 1)),
	qr/log of job 1 has inconsistent part bookkeeping/, 'its aggregate_error names the corruption');
is(scheduler_pid(), $pid, 'the scheduler carries on (same process, no crash)');
ok(slurp_file($node->logfile) !~ /terminated by signal/, 'no backend died of a signal');

# ---- 5. 600 failing jobs older than a healthy one: the healthy one is not starved
$node->safe_psql('postgres', q(
insert into buildlog.logs (job_id, content, part_numbers, part_starts, aggregated_at)
select j, 'x', '{0,1}', '{0,99}', now() from generate_series(1000, 1599) j;
insert into buildlog.log_parts (job_id, number, content, final, created_at)
select j, 5, 'p', true, now() - interval '1 hour' from generate_series(1000, 1599) j;
select buildlog.write_parts('{2}', '{0}', '{healthy}', '{t}');
));
my $t0 = time;
wait_for(q(select aggregated_at is not null from buildlog.logs where job_id = 2), 't',
	'a healthy job behind 600 failing ones is aggregated');
note(sprintf('healthy job aggregated %.1f s after it became due', time - $t0 - 1));
wait_for(q(select count(*) from buildlog.logs where job_id between 1000 and 1599 and aggregate_failures > 0),
	'600', 'every failing job was tried and backs off');
# while they back off, they are not retried every second: a job's retries
# come 1, 2, 4 ... s apart (1, 3, 7 ... s after its first failure), so a
# window of W seconds (measured, however long the machine makes it) holds
# at most log2(W + 2) of them per job; without the back-off a job is retried
# at every round
my $failures_now = q(select sum(aggregate_failures) || '|' || extract(epoch from clock_timestamp())
  from buildlog.logs where job_id between 1000 and 1599);
my ($tries, $t_a) = split /\|/, $node->safe_psql('postgres', $failures_now);
sleep 3;    # the window: time must pass to show what does not happen in it
my ($later, $t_b) = split /\|/, $node->safe_psql('postgres', $failures_now);
my $per_job = int(log($t_b - $t_a + 2) / log(2));
cmp_ok($later - $tries, '<=', 600 * $per_job,
	sprintf('failing jobs are retried with back-off (%d, then %d tries in %.1f s: at most %d per job)',
		$tries, $later, $t_b - $t_a, $per_job));
is($node->safe_psql('postgres', q(select count(*) from buildlog.aggregatable(2147483647) a
	join buildlog.logs l using (job_id) where l.aggregate_retry_at > now())), '0',
	'aggregatable() skips jobs that back off');
is(scheduler_pid(), $pid, 'the scheduler still runs');
# the same log line for 600 jobs is not repeated 600 times a second
my $lines = () = slurp_file($node->logfile) =~ /aggregating job \d+ failed/g;
ok($lines >= 1 && $lines <= 5, "600 failing jobs: $lines log lines about them (one kind, rate-limited), not one per job and second");

# repaired rows recover: the failure columns are cleared by the next success
$node->safe_psql('postgres', q(
update buildlog.logs set part_starts = '{0,1}', content = 'xy',
       aggregate_retry_at = now() where job_id between 1000 and 1599;
));
wait_for(q(select count(*) from buildlog.logs where job_id between 1000 and 1599
            and aggregate_failures = 0 and aggregate_error is null and aggregated_at is not null
            and content = 'xyp'), '600',
	'repaired jobs are aggregated and their failure columns cleared');
$node->safe_psql('postgres', q(delete from buildlog.logs where job_id = 1));

# ---- 15. pg_dump / pg_restore round trip: data kept, rejected ids go on
$node->safe_psql('postgres', q(
insert into buildlog.rejected_parts (reason, body) select 'r' || i, '\x00' from generate_series(1, 5) i;
select buildlog.write_parts('{3,3}', '{0,1}', '{x,y}', '{f,t}');
));
my $dump = $node->basedir . '/buildlog.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('postgres'), '-f', $dump ],
	'pg_dump of a database holding buildlog data');
$node->safe_psql('postgres', 'create database restored');
# CREATE EXTENSION (replayed by the restore) makes today's partitions and
# pg_partman's config row again: those objects "already exist"; nothing else
# may fail
my ($rret, $rout, $rerr) = ('', '', '');
IPC::Run::run([ 'pg_restore', '-d', $node->connstr('restored'), $dump ], '>', \$rout, '2>', \$rerr);
my @errors = grep { /ERROR:/ } split /\n/, $rerr;
my @unexpected = grep { !/already exists|is already a partition|duplicate key value violates unique constraint "part_config_parent_table_pkey"/ } @errors;
is(scalar(@unexpected), 0, 'pg_restore: only objects that CREATE EXTENSION re-made already exist')
  or diag(join("\n", @unexpected));
is($node->safe_psql('restored', q(select count(*) from buildlog.rejected_parts)), '5',
	'restored: the rejected deliveries');
is($node->safe_psql('restored', q(select buildlog.log(2) || '|' || buildlog.log(3))), 'healthy|xy',
	'restored: aggregated and pending logs read the same');
is($node->safe_psql('restored', q(select count(*) from buildlog.log_parts where job_id = 3)), '2',
	'restored: the pending parts (they were skipped as extension members before)');
is($node->safe_psql('restored', q(
insert into buildlog.rejected_parts (reason, body) values ('after restore', '\x01')
returning id > 5)), 't', 'restored: the next rejected delivery gets a new id');

# ---- 11. a database owner's search_path never reaches the workers' sessions
$node->safe_psql('postgres', q(
create schema evil;
create sequence evil.calls;
create function evil.now() returns timestamptz language plpgsql volatile
  as $$ begin perform pg_catalog.nextval('evil.calls'); return pg_catalog.now(); end $$;
create function evil.int8eq(bigint, bigint) returns boolean language plpgsql volatile
  as $$ begin perform pg_catalog.nextval('evil.calls'); return $1 operator(pg_catalog.=) $2; end $$;
create operator evil.= (leftarg = bigint, rightarg = bigint, function = evil.int8eq);
create function evil.texteq(text, text) returns boolean language plpgsql volatile
  as $$ begin perform pg_catalog.nextval('evil.calls'); return $1 operator(pg_catalog.=) $2; end $$;
create operator evil.= (leftarg = text, rightarg = text, function = evil.texteq);
alter database postgres set search_path = evil, pg_catalog;
));
$node->restart;
my $safe = 'set search_path = pg_catalog, public; ';
$node->safe_psql('postgres', $safe . q(
select buildlog.write_parts('{4,4}', '{0,1}', '{a,b}', '{f,t}');
insert into buildlog.logs (job_id, content, part_numbers, part_starts, aggregated_at)
values (5, 'x', '{0}', '{7}', pg_catalog.now());
insert into buildlog.log_parts (job_id, number, content, final) values (5, 1, 'y', true);
));
wait_for($safe . q(
select (select aggregated_at is not null from buildlog.logs where job_id = 4)
    || '|' || (select aggregate_failures > 0 from buildlog.logs where job_id = 5)), 'true|true',
	'the scheduler aggregated a job and backed off a failing one under the hostile search_path');
$node->safe_psql('postgres', $safe . q(
update buildlog.logs set part_starts = '{0}', aggregate_retry_at = pg_catalog.now() where job_id = 5));
wait_for($safe . q(
select aggregate_failures operator(pg_catalog.=) 0 from buildlog.logs where job_id operator(pg_catalog.=) 5), 't',
	'the repaired job recovered (the recovery statement ran too)');
is($node->safe_psql('postgres', $safe . q(select is_called from evil.calls)), 'f',
	'no planted function or operator ran in a worker session');
$node->safe_psql('postgres', $safe . q(alter database postgres reset search_path; drop schema evil cascade;));

# ---- 21. without shared_preload_libraries the SQL surface answers
$node->append_conf('postgresql.conf', q(shared_preload_libraries = ''));
$node->restart;
my ($ret, $out, $err) = $node->psql('postgres', q(
select count(*) from buildlog.drain_stats;
select count(*) from buildlog.scheduler_stats;
select count(*) from buildlog.archive_stats;
select buildlog.restart_workers();
select buildlog.log(2);
));
is($ret, 0, 'without the preload: stats views and restart_workers() do not fail');
is($out, "0\n0\n0\n0\nhealthy", 'without the preload: empty stats, no worker told, logs readable');
like($err, qr/buildlog is not loaded through shared_preload_libraries/,
	'without the preload: a notice says why the stats are empty');

$node->stop;
done_testing();
