# run_maintenance() gives up with SQLSTATE 55P03 after its attempts when a
# lock on log_parts is held the whole time: exactly `attempts` tries, each
# queued at most the lock timeout, a clear message, nothing dropped; the next
# run, once the lock is gone, drops the partition.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use BuildlogTest;

my $node = buildlog_node('maint_gives_up', q(
buildlog.maintenance_lock_timeout = '100ms'
buildlog.maintenance_interval = 0
buildlog.drain_workers = 0
buildlog.archive_workers = 0
));
install_maintenance_watch($node);
$node->safe_psql('postgres', q(
select partman.create_partition_time('buildlog.log_parts',
                                     array[date_trunc('day', now()) - interval '6 days'])));
my $expired = $node->safe_psql('postgres', q(
select partition_schema || '.' || partition_table
  from partman.show_partition_name('buildlog.log_parts',
                                   (date_trunc('day', now()) - interval '6 days')::text)));
like($expired, qr/^buildlog\.log_parts_p\d{4}_\d\d_\d\d$/, "an expired, empty partition: $expired");

# A reader holds a lock on log_parts from before the call until after it,
# counting the times run_maintenance queues for ACCESS EXCLUSIVE.
my ($holder, $hout, $herr) = start_lock_holder($node,
	'select episodes from public.watch_maintenance(null)');

my ($rc, $out, $err) = $node->psql('postgres',
	'\set VERBOSITY verbose' . "\n" . 'select * from buildlog.run_maintenance(attempts => 4)');
isnt($rc, 0, 'run_maintenance(attempts => 4) failed');
like($err, qr/^psql:<stdin>:2: ERROR:  55P03: partition maintenance of buildlog\.log_parts gave up after 4 attempts$/m,
	'with SQLSTATE 55P03 and the number of attempts');
like($err, qr/^DETAIL:  Each attempt waited at most 100ms for its locks\.$/m, 'the detail names the lock timeout');
like($err, qr/^HINT:  A long transaction holds a lock on buildlog\.log_parts \(see pg_locks\); the next run retries\.$/m,
	'the hint says what to look for');
ok($holder->finish, 'the holder kept its lock until the call ended') or diag($$herr);
like($$hout, qr/^4$/m, 'run_maintenance queued for the lock exactly 4 times');
is($node->safe_psql('postgres', "select to_regclass('$expired') is not null"), 't',
	'nothing was dropped');

# with the lock gone, the next run drops it at its first attempt
is($node->safe_psql('postgres', q(select array_to_string(dropped, ','), tries from buildlog.run_maintenance())),
	"$expired|1", 'the next run, without the lock held, drops the partition');

$node->stop;
done_testing();
