# The scheduler beside a DBA's aggregate() on the same jobs, and the
# scheduler's own partition maintenance (one file: the first maintenance run
# comes a minute after the scheduler starts, the aggregation checks use that
# minute).
#  1. aggregate() by hand holds 20 due jobs' locks until the scheduler is seen
#     waiting for them: the scheduler then merges nothing, fails nothing.
#  2. late parts in 5 waves (a transaction each) while a manual loop and the scheduler both
#     aggregate: every part merged exactly once (manual + scheduler counts =
#     parts written), every log exact, no error.
#  3. with maintenance_interval = 2s, scheduler_stats.last_maintenance shows
#     run_maintenance()'s result as JSON, and later runs drop a partition that
#     expired meanwhile and delete an old rejected row.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time);
use List::Util qw(shuffle);
use BuildlogTest;

my $jobs = 20;
my $node = buildlog_node('scheduler_manual', q(
buildlog.aggregate_delay = '3s'
buildlog.maintenance_interval = '2s'
buildlog.drain_workers = 0
buildlog.archive_workers = 0
));
my $t_start = time;
my $sql = sub { $node->safe_psql('postgres', $_[0]) };
wait_query($node, 'select count(*) from buildlog.scheduler_stats where pid > 0', '1', 'the scheduler runs');
my $scheduler_pid = $sql->('select pid from buildlog.scheduler_stats');

# 1. Parts 0..49 of 20 jobs (the last one final), shuffled; then, before they
# are due (aggregate_delay 3 s), aggregate() of every job in one open
# transaction, kept open until the scheduler waits for one of its locks.
my ($mout, $merr) = ('', '');
my $manual = IPC::Run::start(
	[
		'psql', '-X', '-Atq', '-v', 'ON_ERROR_STOP=1', '-h', $node->host, '-p', $node->port,
		'-d', 'postgres',
		'-c', qq(select sum((buildlog.write_parts(array[j], array[n], array[format(E'%s:%s\\n', j, n)],
                                                array[n = 49])).parts)
                   from (select j::bigint, n from generate_series(1, $jobs) j, generate_series(0, 49) n
                          order by random()) s),
		# one query string: the commit follows the wait at once, with no round
		# trip to psql (the scheduler's lock_timeout of 1 s runs meanwhile)
		'-c', qq(begin;
select sum(buildlog.aggregate(j)) from generate_series(1, $jobs) j;
do \$\$
begin
  while not exists (select from pg_locks where pid = $scheduler_pid and not granted) loop
    if clock_timestamp() > statement_timestamp() + interval '60 s' then
      raise exception 'waited 60 s for the scheduler to wait for the locks of the manual aggregate()';
    end if;
    perform pg_sleep(0.005);
  end loop;
end \$\$;
commit)
	],
	'>', \$mout, '2>', \$merr);
ok($manual->finish, 'the manual aggregate() held its jobs until the scheduler waited for them')
  or diag($merr);
is($mout =~ s/\n\z//r, $jobs * 50 . "\n" . $jobs * 50, "it wrote and merged all ${\($jobs * 50)} parts");
wait_query($node, 'select aggregated from buildlog.scheduler_stats', $jobs,
	"the scheduler went through the $jobs jobs it had found due");
is($sql->('select parts_merged, aggregate_failures, deferred, last_error is null from buildlog.scheduler_stats'),
	'0|0|0|t', 'the scheduler merged nothing of them, and nothing failed or was deferred');

# 2. Late parts 50..99 in 5 waves (the last final again); a manual loop
# aggregates every job about three times a second while the scheduler aggregates
# whatever is due (aggregate_delay 0 now).
$sql->(q(alter system set buildlog.aggregate_delay = 0; select pg_reload_conf();
create table public.manual_merges (job_id bigint, merged int);
create table public.stop_manual ();));
my ($lout, $lerr) = ('', '');
my $loop = IPC::Run::start(
	[
		'psql', '-X', '-Atq', '-v', 'ON_ERROR_STOP=1', '-h', $node->host, '-p', $node->port,
		'-d', 'postgres', '-c', qq(do \$\$
declare
  m int;
begin
  while not exists (select from public.stop_manual) loop
    for j in 1 .. $jobs loop
      m := buildlog.aggregate(j);
      if m > 0 then
        insert into public.manual_merges values (j, m);
      end if;
      commit;
    end loop;
    perform pg_sleep(0.3);    -- pacing: leave the scheduler some of the work
  end loop;
end \$\$)
	],
	'>', \$lout, '2>', \$lerr);
for my $wave (0 .. 4)
{
	# one transaction per part, shuffled: commits trickle in while both aggregate
	my ($from, $to) = (50 + 10 * $wave, 59 + 10 * $wave);
	my @parts = map { my $j = $_; map { [ $j, $_ ] } $from .. $to } 1 .. $jobs;
	my $writes = join("\n", map {
		my ($j, $n) = @$_;
		sprintf(q{select (buildlog.write_parts('{%d}', '{%d}', array[E'%d:%d\\n'], '{%s}')).parts;},
			$j, $n, $j, $n, $n == 99 ? 't' : 'f')
	} shuffle(@parts));
	is(eval { my @r = split /\n/, $sql->($writes); scalar(grep { $_ eq '1' } @r) }, $jobs * 10,
		"wave $wave: parts $from..$to written, one transaction each");
	wait_query($node, qq(select count(*) from buildlog.log_parts where job_id <= $jobs), '0',
		"wave $wave: all merged");
}
$sql->('insert into public.stop_manual default values');
ok($loop->finish, 'the manual aggregate() loop got no error') or diag($lerr);
# the scheduler counts its merges after their commit: wait for the sum
my ($manual_merged, $scheduler_merged);
ok(wait_until('manual and scheduler merges to add up', sub {
			($manual_merged, $scheduler_merged) = split /\|/, $sql->(q(
select (select coalesce(sum(merged), 0) from public.manual_merges), parts_merged from buildlog.scheduler_stats));
			($manual_merged + $scheduler_merged == $jobs * 50, "$manual_merged by hand + $scheduler_merged by the scheduler");
		}), 'every late part merged exactly once, by one of them');
note("late parts merged by hand: $manual_merged, by the scheduler: $scheduler_merged");
is($sql->(qq(
select count(*) from buildlog.logs l
 where l.job_id <= $jobs
   and l.content = (select string_agg(format(E'%s:%s\\n', l.job_id, n), '' order by n) from generate_series(0, 99) n)
   and l.part_numbers = (select array_agg(n order by n) from generate_series(0, 99) n)
   and l.final_number = 99)), $jobs, "all $jobs logs exact: parts 0..99 once each, in order");
is($sql->('select aggregate_failures, deferred, last_error is null from buildlog.scheduler_stats'),
	'0|0|t', 'the scheduler recorded no failure');

# 3. Maintenance on its schedule (the first run a minute after the start).
wait_query($node, q(select maintenance_runs > 0 from buildlog.scheduler_stats), 't',
	'the scheduler ran maintenance', timeout => 90);
note(sprintf('first maintenance %.0f s after the node started', time - $t_start));
is($sql->(q(select string_agg(k, ',' order by k) from buildlog.scheduler_stats,
                   jsonb_object_keys(last_maintenance::jsonb) k)),
	'created,dropped,kept,kept_parts,rejected_deleted,tries',
	'last_maintenance is run_maintenance() as JSON');
my $expired = $sql->(q(
begin;
select partman.create_partition_time('buildlog.log_parts', array[date_trunc('day', now()) - interval '6 days']);
insert into buildlog.rejected_parts (received_at, reason, body) values (now() - interval '15 days', 'old', '\x00');
commit;
select partition_schema || '.' || partition_table
  from partman.show_partition_name('buildlog.log_parts', (date_trunc('day', now()) - interval '6 days')::text)));
$expired = (split /\n/, $expired)[-1];
wait_query($node, q(select last_maintenance::jsonb -> 'dropped' || (last_maintenance::jsonb -> 'rejected_deleted')
                      from buildlog.scheduler_stats),
	qq(["$expired", 1]), 'a later run dropped the partition that expired meanwhile and the old rejected row');
is($sql->(q(select count(*) from buildlog.rejected_parts)), '0', 'the rejected row is gone');
# consecutive runs are one interval apart, not one scheduler tick (a lower
# bound: a slower machine only spaces them more); their times, not the run
# counter (counted just before the time is stamped)
my $at = $sql->(q(select last_maintenance_at from buildlog.scheduler_stats));
wait_query($node, qq(select last_maintenance_at > '$at' from buildlog.scheduler_stats), 't', 'the next run');
cmp_ok($sql->(qq(select extract(epoch from last_maintenance_at - '$at') from buildlog.scheduler_stats)),
	'>=', 1.5, 'two consecutive runs are about maintenance_interval (2 s) apart');

$node->stop;
done_testing();
