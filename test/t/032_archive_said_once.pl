# Problems the archive cannot fix itself are said once, not once per attempt
# or per log: a wrong bucket (a 4xx) is counted in archive_stats and logged
# at most once a minute; S3 not configured (s3_endpoint empty) is said once
# per worker.  Nothing is archived or purged meanwhile, nothing is lost.
use strict;
use warnings;
use BuildlogTest;
use BuildlogArchive;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);

my $node = archive_node('archive_said_once', 't032/', "buildlog.archive_workers = 2\n");
my $bucket = $ENV{BUILDLOG_S3_BUCKET} // 'buildlog';

# ---- a wrong bucket: a permanent failure, counted at every attempt, logged once
{
	my $failures = stat_sum($node, 'failures');
	my $mark = log_mark($node);
	set_conf($node, 'buildlog.s3_bucket' => 'no-such-bucket');
	write_jobs($node, 601, 605, 20);
	wait_query($node, "select sum(failures) >= $failures + 4 from buildlog.archive_stats", 't',
		'wrong bucket: four attempts failed, each counted in failures');
	is($node->safe_psql('postgres', q(
select count(*) from buildlog.logs where job_id between 601 and 605 and content is not null and archived_at is null)),
		'5', 'wrong bucket: the logs stay in the database, unarchived');
	like($node->safe_psql('postgres', q(select string_agg(distinct last_error, ' ') from buildlog.archive_stats
 where last_error is not null)), qr/^archiving failed \(permanent\): .*NoSuchBucket/,
		'wrong bucket: last_error shows the permanent error and the S3 code');
	my $log = log_since($node, $mark);
	my %by;
	$by{$1}++ while $log =~ /WARNING:  buildlog archive (\d): archiving failed \(permanent\)/g;
	my $lines = join(',', map { "$_:$by{$_}" } sort keys %by);
	like($lines, qr/^(1:1|2:1|1:1,2:1)$/,
		"wrong bucket: logged once per worker that failed ($lines) for 4+ attempts, not once per attempt or log");
	is(retries_and_purged($node, 601, 605), '0', 'wrong bucket: nothing purged');
	set_conf($node, 'buildlog.s3_bucket' => $bucket);
	wait_purged($node, 601, 605, 'bucket fixed');
	check_objects($node, 601, 605, 20, 0, 'bucket fixed');
}

# ---- S3 not configured: each worker says so once and waits
{
	set_conf($node, 'buildlog.purge_delay' => '1h');
	write_jobs($node, 701, 703, 20);
	wait_query($node, 'select count(*) from buildlog.logs where job_id between 701 and 703 and archived_at is not null',
		'3', 'three logs archived, waiting for verification');
	my $mark = log_mark($node);
	set_conf($node, 'buildlog.s3_endpoint' => '', 'buildlog.purge_delay' => '1s');
	my $said = qr/LOG:  buildlog archive (\d): buildlog\.s3_endpoint is empty; archiving is off/;
	ok(wait_until('both workers saying S3 is not configured',
			sub { log_count($node, $mark, $said) >= 2 }), 'endpoint emptied: the workers say archiving is off');
	write_jobs($node, 711, 715, 20);
	# every reload makes each worker check the settings again (at once: the
	# reload sets its latch); a worker waiting for an endpoint checks every 5 s
	for (1 .. 3) { $node->safe_psql('postgres', 'select pg_reload_conf()'); sleep 1; }
	wait_query($node, 'select count(*) from buildlog.logs where job_id between 711 and 715 and content is not null',
		'5', 'S3 not configured: five more logs aggregated meanwhile');
	sleep 5.5;    # an observation window of more than one 5 s re-check period
	my %by = ();
	my $log = log_since($node, $mark);
	$by{$1}++ while $log =~ /$said/g;
	is(join(',', map { "$_:$by{$_}" } sort keys %by), '1:1,2:1',
		'S3 not configured: said exactly once by each of the 2 workers through 3 reloads and 8.5 s');
	is($node->safe_psql('postgres', q(
select count(*) filter (where job_id between 701 and 703 and purged_at is null and content is not null),
       count(*) filter (where job_id between 711 and 715 and archived_at is null and content is not null)
  from buildlog.logs)), '3|5', 'S3 not configured: nothing verified, purged or archived');
	set_conf($node, 'buildlog.s3_endpoint' => $ENV{BUILDLOG_S3_ENDPOINT});
	wait_purged($node, 701, 703, 'endpoint set again (archived before)');
	wait_purged($node, 711, 715, 'endpoint set again');
	check_objects($node, 711, 715, 20, 0, 'endpoint set again');
}

# How many logs of jobs FIRST..LAST are purged.
sub retries_and_purged
{
	my ($node, $first, $last) = @_;
	return $node->safe_psql('postgres',
		"select count(*) from buildlog.logs where job_id between $first and $last and purged_at is not null");
}
done_testing();
