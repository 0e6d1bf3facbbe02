# Verification before the purge: an object deleted, replaced by a fragment, or
# altered with its size and x-amz-meta-sha256 kept (only the stored bytes'
# hash tells) is detected, archived again and not purged.  After the purge, a
# corrupt archive is refused with XX001 by fetch() and by the restore a late
# part needs, never served or merged.
use strict;
use warnings;
use BuildlogTest;
use BuildlogArchive;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = archive_node('archive_verify', 't033/');

# The same bytes with one byte changed (same size), and its recorded SHA-256.
sub altered
{
	my ($j) = @_;
	my ($headers, $body) = object_get($node, $j);
	substr($body, 10, 1) = substr($body, 10, 1) eq 'Z' ? 'Y' : 'Z';
	my $sha = $node->safe_psql('postgres', "select archive_sha256 from buildlog.logs where job_id = $j");
	return ($body, $sha);
}

# ---- damaged before verification: re-archived, never purged meanwhile
{
	set_conf($node, 'buildlog.purge_delay' => '1h');
	write_jobs($node, 301, 303, 20);
	wait_query($node, 'select count(*) from buildlog.logs where job_id between 301 and 303 and archived_at is not null',
		'3', 'three logs archived, waiting for verification');
	s3_curl('-X', 'DELETE', object_url($node, 301));
	s3_curl('-X', 'PUT', '--data-binary', 'a fragment', object_url($node, 302));
	my ($body, $sha) = altered(303);
	s3_curl('-X', 'PUT', '-H', "x-amz-meta-sha256: $sha", '--data-binary', $body, object_url($node, 303));
	my $head = s3_curl('-I', object_url($node, 303));
	like($head, qr/^x-amz-meta-sha256: $sha\r?$/mi, 'object 303 altered, same size, its x-amz-meta-sha256 kept');
	my $mark = log_mark($node);
	set_conf($node, 'buildlog.purge_delay' => '1s');
	wait_purged($node, 301, 303, 'deleted / fragment / same-size altered objects');
	is(stat_sum($node, 'reuploads'), '3', 'all three damaged archives detected and archived again');
	is(stat_sum($node, 'archived'), '6', 'six uploads: three first ones, three again');
	check_objects($node, 301, 303, 20, 0, 'damaged objects, archived again');
	my $log = log_since($node, $mark);
	is(join(' ', $log =~ /LOG:  buildlog archive 1: the archive of job (\d+) is missing; archiving it again, not purging/g),
		'301', 'the missing archive was logged');
	is(join(' ', sort $log =~ /LOG:  buildlog archive 1: the archive of job (\d+) is different from what was uploaded; archiving it again, not purging/g),
		'302 303', 'the fragment and the same-size alteration were logged as different');
}

# ---- corrupt after the purge: XX001, never served, never merged
{
	my ($body, $sha) = altered(303);
	s3_curl('-X', 'PUT', '-H', "x-amz-meta-sha256: $sha", '--data-binary', $body, object_url($node, 303));
	my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nselect md5(buildlog.fetch(303))");
	like($err, qr/ERROR:  XX001: the archive of job 303 does not match what was recorded at upload\nDETAIL:  Object t033\/jobs\/303\/log.txt: SHA-256 [0-9a-f]{64}, expected $sha\./,
		'fetch() of a purged log whose object is corrupt: XX001 naming the object and both hashes');
	is($out, '', 'fetch(): no text served from the corrupt object');

	my $failures = $node->safe_psql('postgres', 'select aggregate_failures from buildlog.scheduler_stats');
	$node->safe_psql('postgres', q(select buildlog.write_parts('{303}', '{25}', array[gen(303, 25)], '{f}')));
	wait_query($node, "select aggregate_failures > $failures from buildlog.scheduler_stats", 't',
		'a late part needing the corrupt archive: the scheduler\'s restore failed');
	# the scheduler counts the failure, then records it in the job's row
	wait_query($node, q(select aggregate_error ~ 'the archive of job 303 does not match what was recorded at upload'
                       and aggregate_retry_at is not null from buildlog.logs where job_id = 303), 't',
		'the job records the XX001 error and is backed off');
	is($node->safe_psql('postgres', q(
select l.purged_at is not null and l.content is null and 25 <> all(l.part_numbers)
       and exists (select 1 from buildlog.log_parts p where p.job_id = 303 and p.number = 25)
  from buildlog.logs l where l.job_id = 303)), 't',
		'the log stays purged with its archive facts, the late part stays pending (nothing merged into a fragment)');
}
done_testing();
