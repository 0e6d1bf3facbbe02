# Late parts: one arriving within purge_delay (the log archived, not yet
# purged) merges into the content without any S3 request, even with S3 down;
# one arriving after the purge is merged into the log restored from its
# archive; a duplicate of a purged log's part is dropped without a download.
# Each time the full log is archived, verified and purged again.
use strict;
use warnings;
use BuildlogTest;
use BuildlogArchive;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = archive_node('archive_late_parts', 't034/', "buildlog.purge_delay = '1h'\n");

# ---- within purge_delay: merged without a restore
{
	write_jobs($node, 401, 401, 30, 'n = 13');
	wait_query($node, 'select archived_at is not null and content is not null from buildlog.logs where job_id = 401',
		't', 'log without part 13 archived, not purged (purge_delay 1h)');
	# the scheduler waits (aggregate_delay 1h): this session aggregates, so its
	# s3_client_stats() count every S3 request the merge makes
	set_conf($node, 'buildlog.aggregate_delay' => '1h');
	wait_query($node, "select current_setting('buildlog.aggregate_delay')", '1h', 'aggregate_delay 1h');
	$node->safe_psql('postgres', q(select buildlog.write_parts('{401}', '{13}', array[gen(401, 13)], '{f}')));
	# read in aggregate()'s transaction: once it commits, the archive worker
	# may upload the log again at any moment
	my @r = split /\n/, $node->safe_psql('postgres', q(
begin;
select buildlog.aggregate(401);
select requests from buildlog.s3_client_stats();
select md5(content) = md5(expected(401, 30)) and archived_at is null and archive_sha256 is null
       and purged_at is null from buildlog.logs where job_id = 401;
commit;));
	is("$r[0] $r[1]", '1 0', 'late part within purge_delay: aggregate() merged 1 part and sent 0 S3 requests');
	is($r[2], 't', 'the content is the full log in place, the archive facts cleared for a new upload');

	# the same with S3 down and the scheduler merging: a restore would fail
	write_jobs($node, 402, 402, 30, 'n = 7');
	$node->safe_psql('postgres', 'select buildlog.aggregate(402)');
	wait_query($node, 'select count(*) from buildlog.logs where job_id in (401, 402) and archived_at is not null',
		'2', 'both logs archived (again), not purged');
	s3_stack('stop');
	my $failures = $node->safe_psql('postgres', 'select aggregate_failures from buildlog.scheduler_stats');
	set_conf($node, 'buildlog.aggregate_delay' => '1s');
	$node->safe_psql('postgres', q(select buildlog.write_parts('{402}', '{7}', array[gen(402, 7)], '{f}')));
	wait_query($node, 'select md5(content) = md5(expected(402, 30)) from buildlog.logs where job_id = 402', 't',
		'late part within purge_delay, S3 down: the scheduler merged it');
	is($node->safe_psql('postgres', 'select aggregate_failures from buildlog.scheduler_stats'), $failures,
		'S3 down: the merge needed no S3 request (no aggregation failed)');
	s3_stack('start');
	set_conf($node, 'buildlog.purge_delay' => '1s');
	wait_purged($node, 401, 402, 'late parts within purge_delay');
	check_objects($node, 401, 402, 30, 0, 'late parts within purge_delay');
}

# ---- after the purge: restored from S3, merged in place, archived again
{
	write_jobs($node, 403, 403, 30, 'n = 13');
	wait_purged($node, 403, 403, 'log without part 13');
	my $purged = $node->safe_psql('postgres', 'select purged_at from buildlog.logs where job_id = 403');
	set_conf($node, 'buildlog.aggregate_delay' => '1h');
	wait_query($node, "select current_setting('buildlog.aggregate_delay')", '1h', 'aggregate_delay 1h');
	$node->safe_psql('postgres', q(select buildlog.write_parts('{403}', '{13}', array[gen(403, 13)], '{f}')));
	# the same counter as above sees the restore's download here
	is($node->safe_psql('postgres', q(
select buildlog.aggregate(403);
select requests from buildlog.s3_client_stats())), "1\n1",
		'late part after the purge: aggregate() merged 1 part after 1 S3 request (the restore)');
	set_conf($node, 'buildlog.aggregate_delay' => '1s');
	wait_query($node, qq(
select purged_at > '$purged' and content is null and 13 = any(part_numbers)
  from buildlog.logs where job_id = 403), 't',
		'late part after the purge: log restored from S3, merged, archived, verified and purged again');
	check_objects($node, 403, 403, 30, 0, 'late part after the purge');

	# a duplicate of a purged log's part is dropped without a download (S3 down)
	s3_stack('stop');
	my $failures = $node->safe_psql('postgres', 'select aggregate_failures from buildlog.scheduler_stats');
	$node->safe_psql('postgres', q(select buildlog.write_parts('{403}', '{3}', array[gen(403, 3)], '{f}')));
	wait_query($node, 'select count(*) from buildlog.log_parts where job_id = 403', '0',
		'duplicate of a purged part aggregated away while S3 is down');
	is($node->safe_psql('postgres', qq(
select l.purged_at is not null and s.aggregate_failures = $failures
  from buildlog.logs l, buildlog.scheduler_stats s where l.job_id = 403)),
		't', 'the log stays purged and nothing failed');
	s3_stack('start');
}
done_testing();
