# A slow S3 does not hold up the writers: aggregate() downloads a purged
# log's archive before taking the job's lock, so a writer of the job returns
# while aggregate() still waits on an endpoint that accepts connections and
# never answers; every S3 request gives up at buildlog.s3_request_timeout,
# not the whole s3_timeout.  An archive worker stalled in an upload holds the
# log's row: aggregate() waits for it without holding the job's lock, so
# writers still pass, and merges once the upload gave up.  With S3 back, the
# late parts are merged into the restored archive at their places.
use strict;
use warnings;
use BuildlogTest;
use BuildlogArchive;
use PostgreSQL::Test::Utils;
use Test::More;
use IO::Socket::INET;
use IO::Select;
use IPC::Run;

my ($endpoint) = need_env('BUILDLOG_S3_ENDPOINT', 'BUILDLOG_ROOT');
my $node = archive_node('archive_slow_s3', 't047/', q(
buildlog.archive_workers = 2
buildlog.aggregate_delay = '1h'
buildlog.s3_timeout = '30s'
));

write_job($node, 4, 20);
wait_purged($node, 4, 4, 'job 4');
$node->safe_psql('postgres', q(select buildlog.write_parts('{4}', '{30}', array[gen(4, 30)], '{f}')));

# a listener that accepts connections and never answers
my $hole = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 16, ReuseAddr => 1)
	or die "listen: $!";
my $hole_port = $hole->sockport;
$node->safe_psql('postgres', qq(
alter system set buildlog.s3_endpoint = 'http://127.0.0.1:$hole_port';
alter system set buildlog.s3_request_timeout = '8s';
select pg_reload_conf();));
wait_query($node, "select current_setting('buildlog.s3_request_timeout') = '8s'", 't',
	'endpoint points at a listener that never answers, request timeout 8 s');

my ($out, $err) = ('', '');
my $agg = IPC::Run::start(
	[ 'psql', '-X', '-At', '-v', 'VERBOSITY=verbose', '-d', $node->connstr('postgres'),
	  '-c', 'select buildlog.aggregate(4)' ],
	'>', \$out, '2>', \$err);
# wait for aggregate()'s request to reach the listener
my $sel = IO::Select->new($hole);
my @held;
ok(scalar($sel->can_read(60)), 'aggregate() connected to the stalled endpoint');
push @held, $hole->accept;
wait_query($node, q(
select count(*) = 1 from pg_stat_activity where query = 'select buildlog.aggregate(4)' and state = 'active'), 't',
	'aggregate() is waiting on S3');

my ($ret, $wout, $werr) = $node->psql('postgres', q(
select parts from buildlog.write_parts('{4}', '{31}', array[gen(4, 31)], '{f}')));
is("$ret $wout", '0 1', 'a writer of the same job stores its part while aggregate() waits on S3');
# not a speed: a writer held by aggregate()'s lock could only return once
# aggregate() gave up, and S3 never answers it before its request timeout
is($node->safe_psql('postgres', q(
select count(*) from pg_stat_activity where query = 'select buildlog.aggregate(4)' and state = 'active')),
	'1', 'the writer returned while aggregate() still waits on S3: it was not blocked');

# the request timeout (8 s), not the whole s3_timeout (30 s), ends the wait
ok(wait_until('aggregate() to give up on the silent S3', sub { $agg->pump_nb if $agg->pumpable; !$agg->pumpable }, timeout => 20),
	'aggregate() gives up within 20 s: the 8 s request timeout, not the 30 s s3_timeout');
$agg->finish;
like($err, qr/08006: could not read S3 object .*Operation timed out/s,
	'aggregate() gives up with a timeout error (08006)');

# an archive worker stalled in an upload holds the log's row: aggregate()
# waits for it without holding the job's lock, so writers still pass
write_job($node, 9, 5);
ok(scalar($sel->can_read(60)), 'an archive worker connected to the stalled endpoint to upload job 9');
push @held, $hole->accept;
wait_query($node, 'select count(*) = 1 from buildlog.archive_stats where in_flight = 9', 't',
	'the upload of job 9 is in flight (its row locked)');
$node->safe_psql('postgres', q(select buildlog.write_parts('{9}', '{10}', array[gen(9, 10)], '{f}')));
($out, $err) = ('', '');
$agg = IPC::Run::start(
	[ 'psql', '-X', '-At', '-d', $node->connstr('postgres'), '-c', 'select buildlog.aggregate(9)' ],
	'>', \$out, '2>', \$err);
wait_query($node, q(
select count(*) = 1 from pg_stat_activity
 where query = 'select buildlog.aggregate(9)' and wait_event_type = 'Lock'), 't',
	'aggregate(9) waits for the row the archive worker holds');
($ret, $wout, $werr) = $node->psql('postgres', q(
select parts from buildlog.write_parts('{9}', '{11}', array[gen(9, 11)], '{f}')));
is("$ret $wout", '0 1', 'a writer of job 9 stores its part while aggregate() waits behind the upload');
is($node->safe_psql('postgres', q(
select count(*) from pg_stat_activity
 where query = 'select buildlog.aggregate(9)' and wait_event_type = 'Lock')),
	'1', 'the writer returned while aggregate(9) still waits for the upload: it was not blocked');
ok(wait_until('aggregate(9) to return once the upload gave up', sub { $agg->pump_nb if $agg->pumpable; !$agg->pumpable }),
	'aggregate(9) returned once the upload gave up');
$agg->finish;
is($out, "2\n", 'once the upload gave up, aggregate(9) merged both parts');
close($_) for grep { defined } @held;
close($hole);

$node->safe_psql('postgres', qq(
alter system set buildlog.s3_endpoint = '$endpoint';
alter system reset buildlog.s3_request_timeout;
select pg_reload_conf();));
wait_query($node, "select current_setting('buildlog.s3_endpoint') = '$endpoint'", 't',
	'endpoint back to s3rver');
is($node->safe_psql('postgres', 'select buildlog.aggregate(4)'), '2', 'S3 back: both late parts merged');
is($node->safe_psql('postgres', q(select md5(buildlog.log(4)) = md5(expected(4, 20) || gen(4, 30) || gen(4, 31)))),
	't', 'the log is the restored archive with both late parts at their places');

done_testing();
