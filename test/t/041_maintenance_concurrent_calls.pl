# Two run_maintenance() calls at once, with expired partitions to drop: the
# second call waits for the first (its advisory lock) instead of racing it;
# each expired partition is dropped exactly once, by one of them, neither
# fails, and no part of a live partition is lost.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use BuildlogTest;

my $node = buildlog_node('maint_concurrent', q(
buildlog.maintenance_lock_timeout = '100ms'
buildlog.maintenance_interval = 0
buildlog.aggregate_force_after = '1000d'
buildlog.drain_workers = 0
buildlog.archive_workers = 0
));
install_maintenance_watch($node);

# Two expired, empty partitions (6 and 7 days old; retention is 3 days) and
# 100 live parts in today's partition.
$node->safe_psql('postgres', q(
select partman.create_partition_time('buildlog.log_parts',
         array[date_trunc('day', now()) - interval '6 days', date_trunc('day', now()) - interval '7 days']);
select buildlog.write_parts(array_agg(g % 10 + 1)::bigint[], array_agg(g), array_agg('live ' || g),
                            array_agg(false))
  from generate_series(1, 100) g;
));
my $expired = $node->safe_psql('postgres', q(
select string_agg(p, ',' order by p) from (
  select s.partition_schemaname || '.' || s.partition_tablename as p
    from partman.show_partitions('buildlog.log_parts') s,
         partman.show_partition_info(s.partition_schemaname || '.' || s.partition_tablename,
                                     p_parent_table := 'buildlog.log_parts') i
   where i.child_end_time < now() - interval '3 days') e));
like($expired, qr/^buildlog\.log_parts_p\d{4}_\d\d_\d\d,buildlog\.log_parts_p\d{4}_\d\d_\d\d$/,
	"two expired partitions to drop: $expired");

# A reader holds a lock on log_parts, so the first call stays inside
# run_maintenance (queued for ACCESS EXCLUSIVE, retrying) until the second
# call is seen waiting for the first one's advisory lock.
my ($holder, $hout, $herr) = start_lock_holder($node,
	q(do $$
begin
  perform from public.watch_maintenance(2);    -- the first call queued, gave up, queued again
  while not exists (select from pg_locks w join pg_stat_get_activity(null) a using (pid)
                     where w.locktype = 'advisory' and w.objsubid = 1 and not w.granted
                       and a.application_name = 'second') loop
    if clock_timestamp() > statement_timestamp() + interval '60 s' then
      raise exception 'waited 60 s for the second run_maintenance() to wait for the first';
    end if;
    perform pg_sleep(0.005);
    perform pg_stat_clear_snapshot();    -- see sessions that started since
  end loop;
  raise notice 'both calls are inside run_maintenance';
end $$));

my %call;
for my $name ('first', 'second')
{
	my ($o, $e) = ('', '');
	$call{$name} = [ IPC::Run::start(
		[
			'psql', '-X', '-Atq', '-v', 'ON_ERROR_STOP=1', '-h', $node->host,
			'-p', $node->port, '-d', 'postgres', '-c', "set application_name = $name",
			'-c', q(select array_to_string(dropped, ','), tries from buildlog.run_maintenance(attempts => 50))
		],
		'>', \$o, '2>', \$e), \$o, \$e ];
	# the second starts only once the first is inside, queued for the lock
	ok(wait_until('the first call queued for ACCESS EXCLUSIVE on log_parts', sub {
		$node->safe_psql('postgres', q(
select count(*) from pg_locks l join pg_stat_activity a using (pid)
 where a.application_name = 'first' and l.relation = 'buildlog.log_parts'::regclass
   and l.mode = 'AccessExclusiveLock' and not l.granted)) eq '1' }),
		'the first call is inside run_maintenance, waiting for the lock') if $name eq 'first';
}

ok($holder->finish, 'the holder saw both calls inside run_maintenance at once') or diag($$herr);
like($$herr, qr/NOTICE:  both calls are inside run_maintenance/, 'the second waited for the first');
my %got;
for my $name ('first', 'second')
{
	ok($call{$name}[0]->finish, "the $name call succeeded") or diag(${ $call{$name}[2] });
	($got{$name}{dropped}, $got{$name}{tries}) = split /\|/, ${ $call{$name}[1] } =~ s/\n//r;
}
is($got{first}{dropped}, $expired, 'the first call dropped both expired partitions');
cmp_ok($got{first}{tries}, '>=', 2, "after retrying ($got{first}{tries} attempts)");
is("$got{second}{dropped}|$got{second}{tries}", '|1',
	'the second, once the first was done, found nothing to drop, at its first attempt');
is($node->safe_psql('postgres', qq(
select count(*) from unnest(string_to_array('$expired', ',')) p where to_regclass(p) is not null)),
	'0', 'the expired partitions are gone');
is($node->safe_psql('postgres', q(select count(*) from buildlog.log_parts)), '100',
	'all 100 live parts are still there');

$node->stop;
done_testing();
