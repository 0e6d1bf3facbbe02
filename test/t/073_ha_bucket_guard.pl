# Two deployments, one bucket and prefix (a restored copy of production with
# production's S3 settings): each archive object carries its deployment's id
# (x-amz-meta-buildlog-owner, from buildlog.installation); the copy never
# overwrites or deletes production's objects (a warning says why and what to
# do), its own logs that do not collide are archived and purged, and with
# buildlog.s3_adopt_objects = on it takes an object over deliberately.
use strict;
use warnings;
use BuildlogTest;
use BuildlogArchive;
use PostgreSQL::Test::Utils;
use Test::More;

my $prod = archive_node('guard_prod', 't073/');
my $copy = archive_node('guard_copy', 't073/');
my ($prod_id, $copy_id) = map { $_->safe_psql('postgres', 'select id from buildlog.installation') } $prod, $copy;
like($prod_id, qr/^[0-9a-f-]{36}$/, 'production has an installation id');
isnt($copy_id, $prod_id, 'the copy (its own CREATE EXTENSION) has another');
sub owner_of { my ($h) = object_get($_[0], $_[1]); return $h =~ /^x-amz-meta-buildlog-owner:\s*(\S+)/mi ? $1 : 'none'; }

# production archives jobs 1 and 4
write_job($prod, $_, 20) for 1, 4;
wait_purged($prod, 1, 1, 'production job 1');
wait_purged($prod, 4, 4, 'production job 4');
is(owner_of($prod, 1), $prod_id, "production's object carries its id");
my (undef, $before) = object_get($prod, 1);

# the copy writes other text under the same job ids, and a job of its own
my $mark = log_mark($copy);
$copy->safe_psql('postgres', q(select buildlog.set_content(1, 'the copy''s job 1')));
$copy->safe_psql('postgres', q(select buildlog.set_content(2, 'the copy''s own job 2')));
ok(wait_until('the copy to refuse job 1', sub {
			log_since($copy, $mark) =~ /archiving job 1 refused: the object "t073\/jobs\/1\/log\.txt" belongs to another buildlog deployment/ }),
	'archiving over production\'s object is refused, with a warning');
like(log_since($copy, $mark), qr/buildlog\.s3_adopt_objects = on/, 'the warning says how to take the bucket over');
wait_purged($copy, 2, 2, "the copy's own job 2 (not starved by the refused one)");
is(owner_of($copy, 2), $copy_id, "the copy's object carries the copy's id");
my (undef, $after) = object_get($prod, 1);
is($after, $before, "production's object of job 1 is untouched");
is(owner_of($prod, 1), $prod_id, 'and still production\'s');
is($copy->safe_psql('postgres', 'select archived_at is null from buildlog.logs where job_id = 1'), 't',
	'the copy did not record an archive of job 1');

# the copy holds production's purged job 5 as a dump restored it, and removes it
write_job($prod, 5, 20);
wait_purged($prod, 5, 5, 'production job 5');
my $row = $prod->safe_psql('postgres', q(select format('(%s, %L, %L, %s, %L, %L, %L, %L, %L, %L, %L, true)', job_id, part_numbers,
  part_starts, final_number, archived_at, archive_size, archive_sha256, archive_etag, archive_gzip, verified_at, purged_at) from buildlog.logs where job_id = 5));
$copy->safe_psql('postgres', qq(insert into buildlog.logs (job_id, part_numbers, part_starts, final_number, archived_at,
  archive_size, archive_sha256, archive_etag, archive_gzip, verified_at, purged_at, archive_object) values $row));
is($copy->safe_psql('postgres', 'select buildlog.fetch(5) = expected(5, 20)'), 't', 'the copy reads the restored purged log from production\'s object');
$mark = log_mark($copy);
$copy->safe_psql('postgres', q(select buildlog.set_content(5, null, 42)));
wait_query($copy, 'select archive_deleted_at is not null and archive_delete_since is null from buildlog.logs where job_id = 5', 't',
	'the removal is settled in the copy');
like(log_since($copy, $mark), qr/deleting the archive of job 5 refused/, 'deleting production\'s object is refused');
is($prod->safe_psql('postgres', 'select outcome from buildlog.s3_head(buildlog.s3_key(5))'), 'ok', 'production\'s object of job 5 still exists');
is($prod->safe_psql('postgres', 'select buildlog.fetch(5) = expected(5, 20)'), 't', 'and production still reads its log from it');

# adopting, deliberately
my $failures = stat_sum($copy, 'failures');
$copy->safe_psql('postgres', q(select buildlog.set_content(4, 'the copy takes job 4 over')));
# (the warning is said once per five minutes: the count tells)
ok(wait_until('the copy to refuse job 4', sub { my $f = stat_sum($copy, 'failures'); ($f > $failures, $f) }),
	'job 4 refused first (archive_stats.failures)');
is($copy->safe_psql('postgres', 'select archived_at is null from buildlog.logs where job_id = 4'), 't', 'not archived');
set_conf($copy, 'buildlog.s3_adopt_objects' => 'on');
wait_purged($copy, 4, 4, 'with s3_adopt_objects on, job 4');
is(owner_of($copy, 4), $copy_id, 'the object of job 4 is the copy\'s now');

done_testing();
