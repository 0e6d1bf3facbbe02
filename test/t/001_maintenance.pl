# Partition maintenance under load: run_maintenance() drops expired partitions
# while other sessions keep writing and reading; writers never wait longer than
# buildlog.maintenance_lock_timeout plus a margin, readers get no error, no row
# of a live partition is lost, and an expired partition that still holds parts
# that were never aggregated is kept.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use File::Temp qw(tempdir);

my $lock_timeout_ms = 100;
my $margin_ms = 400;    # writer statement time + scheduling noise on 2 cores

my $node = PostgreSQL::Test::Cluster->new('maint');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'buildlog'
buildlog.maintenance_lock_timeout = '${lock_timeout_ms}ms'
# this test runs maintenance itself and keeps its expired parts pending
buildlog.maintenance_interval = 0
buildlog.aggregate_force_after = '1000d'
max_connections = 20
));
$node->start;
$node->safe_psql('postgres', q(
create schema partman;
create extension pg_partman schema partman;
create extension buildlog;
));

# An expired partition (6 days old, retention is 3 days) full of old parts.
$node->safe_psql('postgres', q(
select partman.create_partition_time('buildlog.log_parts',
                                     array[date_trunc('day', now()) - interval '6 days']);
insert into buildlog.log_parts (job_id, number, content, created_at)
select 1 + g % 50, g, 'expired part ' || g,
       date_trunc('day', now()) - interval '6 days' + interval '1 hour'
  from generate_series(1, 5000) g;
));
my $expired = $node->safe_psql('postgres',
	q(select count(*) from buildlog.log_parts where created_at < now() - interval '3 days'));
is($expired, '5000', 'expired parts are in place before maintenance');
# Those jobs are aggregated (their partition is then empty and may go); an
# older expired partition keeps 10 parts of a job that was never aggregated.
$node->safe_psql('postgres', q(
select sum(buildlog.aggregate(j)) from generate_series(1, 50) j;
select partman.create_partition_time('buildlog.log_parts',
                                     array[date_trunc('day', now()) - interval '7 days']);
insert into buildlog.log_parts (job_id, number, content, created_at)
select 500, g, 'never aggregated ' || g,
       date_trunc('day', now()) - interval '7 days' + interval '1 hour'
  from generate_series(1, 10) g;
));

# Writers (two parts per transaction, job ids >= 1000) and readers, for 6 s.
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
		'pgbench', '-n', '-T', '6', '-c', '3', '-j', '3',
		'-f', "$dir/write.sql\@4", '-f', "$dir/read.sql\@1",
		'-l', '--log-prefix', "$dir/tx",
		'-h', $node->host, '-p', $node->port, 'postgres'
	],
	'>', \$out, '2>', \$err);

# After 1 s a reader holds a lock on log_parts for 1.5 s, so maintenance has
# to queue behind it, give up after the lock timeout and retry.
sleep 1;
my ($hout, $herr) = ('', '');
my $holder = IPC::Run::start(
	[
		'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-h', $node->host, '-p', $node->port,
		'-d', 'postgres', '-c',
		'begin; select count(*) from buildlog.log_parts; select pg_sleep(1.5); commit;'
	],
	'>', \$hout, '2>', \$herr);
select(undef, undef, undef, 0.3);

my $result = $node->safe_psql('postgres',
	q(select cardinality(dropped), cardinality(kept), kept_parts, tries
	    from buildlog.run_maintenance(attempts => 30)));
my ($dropped, $kept, $kept_parts, $tries) = split /\|/, $result;
is($dropped, '1', 'maintenance dropped the expired partition whose parts were aggregated');
is("$kept|$kept_parts", '1|10', 'and kept the one holding 10 parts that were never aggregated');
cmp_ok($tries, '>', 1, "maintenance backed off and retried ($tries attempts)");

ok($holder->finish, 'the lock-holding reader finished without error') or diag($herr);

ok($pgbench->finish, 'writers and readers got no error') or diag($err);
my ($txns) = $out =~ /number of transactions actually processed: (\d+)/;
ok($txns > 0, "pgbench ran $txns transactions");

# Longest write transaction, from pgbench's per-transaction log
# (client, tx, elapsed_us, script, epoch, us).
my ($max_us, $writes) = (0, 0);
for my $log (glob("$dir/tx*")) {
	open(my $l, '<', $log) or die;
	while (<$l>) {
		my @f = split;
		next unless $f[3] == 0;    # script 0 = write.sql
		$writes++;
		$max_us = $f[2] if $f[2] > $max_us;
	}
}
my $max_ms = $max_us / 1000.0;
note(sprintf('%d writes, longest %.1f ms (lock timeout %d ms)', $writes, $max_ms, $lock_timeout_ms));
cmp_ok($max_ms, '<=', $lock_timeout_ms + $margin_ms,
	"longest writer wait ${max_ms} ms <= lock timeout + ${margin_ms} ms margin");

# Every part written by a committed write transaction is still there.
my $live = $node->safe_psql('postgres',
	q(select count(*) from buildlog.log_parts where job_id >= 1000));
is($live, 2 * $writes, "all $writes write transactions' parts are present");
is($node->safe_psql('postgres',
	q(select count(*) from buildlog.log_parts where job_id < 500)), '0',
	'the aggregated expired parts are gone from log_parts');
is($node->safe_psql('postgres',
	q(select sum(cardinality(part_numbers)) from buildlog.logs where job_id < 500)), '5000',
	'and all 5000 are in their logs');
is($node->safe_psql('postgres',
	q(select count(*) from buildlog.log_parts where job_id = 500)), '10',
	'the never-aggregated parts are all still there');

# Two concurrent maintenance calls do not conflict.
my @h;
for my $i (1 .. 2) {
	my ($o, $e) = ('', '');
	push @h, [IPC::Run::start(
		[
			'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-h', $node->host,
			'-p', $node->port, '-d', 'postgres',
			'-c', 'select tries from buildlog.run_maintenance()'
		],
		'>', \$o, '2>', \$e), \$o, \$e];
}
for my $x (@h) {
	ok($x->[0]->finish, 'concurrent maintenance call succeeded')
	  or diag(${ $x->[2] });
}

$node->stop;
done_testing();
