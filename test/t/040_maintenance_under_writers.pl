# Partition maintenance under load: run_maintenance() drops an expired
# partition while 3 sessions write and read.  A reader holds a lock on
# log_parts until maintenance has queued for its ACCESS EXCLUSIVE lock, given
# up after the lock timeout and queued again; writers are seen queued behind
# it, and none of them still waits once the attempt it queued behind gave up
# (seen in pg_locks, not by a clock: the slowest writes are only noted).  No
# row of a live partition is lost; an expired partition that still holds
# parts that were never aggregated is kept.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use File::Temp qw(tempdir);
use BuildlogTest;

my $lock_timeout_ms = 100;

my $node = buildlog_node('maint_writers', qq(
buildlog.maintenance_lock_timeout = '${lock_timeout_ms}ms'
buildlog.maintenance_interval = 0
buildlog.aggregate_force_after = '1000d'
buildlog.drain_workers = 0
buildlog.archive_workers = 0
max_connections = 20
));
install_maintenance_watch($node);

# An expired partition (6 days old, retention is 3 days) whose 5000 parts are
# aggregated (the partition is then empty and may go); an older expired
# partition keeps 10 parts of a job that was never aggregated.
$node->safe_psql('postgres', q(
select partman.create_partition_time('buildlog.log_parts',
                                     array[date_trunc('day', now()) - interval '6 days']);
insert into buildlog.log_parts (job_id, number, content, created_at)
select 1 + g % 50, g, 'expired part ' || g,
       date_trunc('day', now()) - interval '6 days' + interval '1 hour'
  from generate_series(1, 5000) g;
));
is($node->safe_psql('postgres',
	q(select count(*) from buildlog.log_parts where created_at < now() - interval '3 days')),
	'5000', 'expired parts are in place before maintenance');
is($node->safe_psql('postgres', q(
select sum(buildlog.aggregate(j)) from generate_series(1, 50) j;
select partman.create_partition_time('buildlog.log_parts',
                                     array[date_trunc('day', now()) - interval '7 days']);
insert into buildlog.log_parts (job_id, number, content, created_at)
select 500, g, 'never aggregated ' || g,
       date_trunc('day', now()) - interval '7 days' + interval '1 hour'
  from generate_series(1, 10) g;
)), "5000\nt", 'the 5000 expired parts were aggregated');

# Writers (two parts per transaction, job ids >= 1000) and readers, for 8 s.
my $dir = tempdir(CLEANUP => 1);
open(my $fh, '>', "$dir/write.sql") or die;
print $fh q(\set job random(1000, 1999)
\set n random(0, 1000000)
select buildlog.write_parts(array[:job, :job]::bigint[], array[:n, :n + 1],
                            array['$ make test', 'ok'], array[false, false]);
);
close $fh;
open($fh, '>', "$dir/read.sql") or die;
print $fh q(\set job random(1000, 1999)
select length(buildlog.log(:job));
select count(*) from buildlog.parts(:job);
);
close $fh;
my ($out, $err) = ('', '');
my $pgbench = IPC::Run::start(
	[
		'pgbench', '-n', '-T', '8', '-c', '3', '-j', '3',
		'-f', "$dir/write.sql\@4", '-f', "$dir/read.sql\@1",
		'-l', '--log-prefix', "$dir/tx",
		'-h', $node->host, '-p', $node->port, 'postgres'
	],
	'>', \$out, '2>', \$err);
ok(wait_until('pgbench writing', sub {
	$node->safe_psql('postgres', q(select count(*) > 0 from buildlog.log_parts where job_id >= 1000)) eq 't' }),
	'the writers are writing');

# A reader takes a lock on log_parts and keeps it until maintenance has
# queued for ACCESS EXCLUSIVE, given up (lock timeout) and queued again.
my ($holder, $hout, $herr) = start_lock_holder($node,
	'select episodes, writer_waits, held_over from public.watch_maintenance(2)');

my $result = $node->safe_psql('postgres',
	q(select cardinality(dropped), cardinality(kept), kept_parts, tries
	    from buildlog.run_maintenance(attempts => 30)));
my ($dropped, $kept, $kept_parts, $tries) = split /\|/, $result;
is($dropped, '1', 'maintenance dropped the expired partition whose parts were aggregated');
is("$kept|$kept_parts", '1|10', 'and kept the one holding 10 parts that were never aggregated');
cmp_ok($tries, '>=', 2, "maintenance gave up after the lock timeout and retried ($tries attempts)");

ok($holder->finish, 'the lock-holding reader finished without error') or diag($$herr);
my ($episodes, $writer_waits, $held_over) = $$hout =~ /^(\d+)\|(\d+)\|(\d+)$/m;
is($episodes, '2', 'the holder saw maintenance queue for ACCESS EXCLUSIVE twice before it let go');
cmp_ok($writer_waits, '>', 0,
	"writers were seen queued behind maintenance's lock request ($writer_waits samples)");
is($held_over, '0', 'no writer queued behind the first attempt still waited in the second: '
	  . 'each wait ended when the attempt gave up at its lock timeout');

ok($pgbench->finish, 'writers and readers got no error') or diag($err);

# The write transactions, from pgbench's per-transaction log
# (client, tx, elapsed_us, script, epoch, us); their latency is a speed (a
# benchmark's business): only noted.
my ($max_us, $writes) = (0, 0);
my @lat;
for my $log (glob("$dir/tx*"))
{
	open(my $l, '<', $log) or die;
	while (<$l>)
	{
		my @f = split;
		next unless $f[3] == 0;    # script 0 = write.sql
		$writes++;
		$max_us = $f[2] if $f[2] > $max_us;
		push @lat, $f[2];
	}
}
@lat = sort { $b <=> $a } @lat;
note('slowest writes (ms): ' . join(' ', map { sprintf('%.1f', $_ / 1000) } grep { defined } @lat[0 .. 9])
	  . sprintf(' (longest %.1f ms; lock timeout %d ms)', $max_us / 1000, $lock_timeout_ms));
cmp_ok($writes, '>', 0, "pgbench ran $writes write transactions");

# Every part written by a committed write transaction is still there.
is($node->safe_psql('postgres', q(select count(*) from buildlog.log_parts where job_id >= 1000)),
	2 * $writes, "all $writes write transactions' parts are present");
is($node->safe_psql('postgres', q(select count(*) from buildlog.log_parts where job_id < 500)),
	'0', 'the aggregated expired parts are gone from log_parts');
is($node->safe_psql('postgres',
	q(select sum(cardinality(part_numbers)) from buildlog.logs where job_id < 500)),
	'5000', 'and all 5000 are in their logs');
is($node->safe_psql('postgres', q(select count(*) from buildlog.log_parts where job_id = 500)),
	'10', 'the never-aggregated parts are all still there');

$node->stop;
done_testing();
