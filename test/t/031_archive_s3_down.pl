# S3 down: logs waiting for the archive and archived logs waiting for
# verification stay in the database while the workers' attempts fail (the
# attempts are counted, so the "nothing archived or purged" checks are not
# vacuous); once s3rver is back everything is archived, verified and purged.
use strict;
use warnings;
use BuildlogTest;
use BuildlogArchive;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = archive_node('archive_s3_down', 't031/');

# archived, waiting for verification when S3 goes down
set_conf($node, 'buildlog.purge_delay' => '1h');
write_jobs($node, 1, 5, 20);
wait_query($node, 'select count(*) from buildlog.logs where archived_at is not null and purged_at is null',
	'5', 'five logs archived, waiting for verification');
s3_stack('stop');
write_jobs($node, 201, 220, 20);
wait_query($node, 'select count(*) from buildlog.logs where job_id between 201 and 220 and content is not null',
	'20', 's3rver down: 20 more logs aggregated, waiting for the archive');
my $retries = stat_sum($node, 'retries');
set_conf($node, 'buildlog.purge_delay' => '1s');
# each failed attempt (upload or verification) is a retry; 3 more = 3 attempts
wait_query($node, "select sum(retries) >= $retries + 3 from buildlog.archive_stats", 't',
	's3rver down: three more attempts failed and were counted as retries');
is($node->safe_psql('postgres', q(
select count(*) filter (where job_id between 201 and 220 and archived_at is null and content is not null),
       count(*) filter (where job_id between 1 and 5 and purged_at is null and content is not null),
       count(*) filter (where purged_at is not null or verified_at is not null)
  from buildlog.logs)),
	'20|5|0', 's3rver down: nothing archived, verified or purged meanwhile, every content kept');
like($node->safe_psql('postgres', 'select last_error from buildlog.archive_stats'),
	qr/^(archiving|verifying) failed \(retryable\): .*(connect|Couldn't|refused)/i,
	's3rver down: last_error says the endpoint is unreachable');
is(stat_sum($node, 'failures'), '0', 's3rver down: retryable, never counted as a permanent failure');

s3_stack('start');
wait_purged($node, 1, 5, 's3rver back (archived before)');
wait_purged($node, 201, 220, 's3rver back (aggregated while down)');
check_objects($node, 201, 220, 20, 0, 's3rver back');
check_objects($node, 1, 5, 20, 0, 's3rver back, verified');
# a worker counts a purge after its commit
wait_query($node, 'select archived, purged, reuploads from buildlog.archive_stats',
	'25|25|0', 'archive_stats: each log archived once, all purged');
done_testing();
