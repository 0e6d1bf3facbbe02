# Removing or replacing a log deletes its archive object, proven by a HEAD
# 404: a removed purged log shows a pending deletion at once (lifecycle,
# archive_stats, fetch() NULL), then the object is gone and counted; a
# replaced log is served new at once, its old object deleted before the new
# content is archived.  With S3 down the deletion is retried with back-off,
# its state kept in the row across a restart, and made once S3 is back.  A
# late part after a removal is not stored, sends no S3 request and never
# brings the old text back.
use strict;
use warnings;
use BuildlogTest;
use BuildlogArchive;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = archive_node('archive_removal', 't048/', q(
buildlog.archive_workers = 2
buildlog.aggregate_delay = '1h'
buildlog.s3_timeout = '30s'
));
my $head = sub { $node->safe_psql('postgres', "select outcome from buildlog.s3_head(buildlog.s3_key($_[0]))") };

# ---- a purged log removed: the object goes, proven, counted
write_job($node, 5, 20);
write_job($node, 7, 20);
write_job($node, 8, 20);
wait_purged($node, 5, 5, 'job 5');
wait_purged($node, 7, 7, 'job 7');
wait_purged($node, 8, 8, 'job 8');
is($head->(5), 'ok', 'the archive of job 5 exists');
my @r = split /\n/, $node->safe_psql('postgres', q(
begin;
select buildlog.set_content(5, null, 42);
select deleting from buildlog.lifecycle;
select deletions_pending from buildlog.archive_stats limit 1;
select buildlog.fetch(5) is null;
commit;));
is("@r", '0 1 1 t', 'removal: a pending deletion in lifecycle and archive_stats; fetch() returns NULL at once');
wait_query($node, q(
select archive_delete_since is null and archive_deleted_at is not null and not archive_object
  from buildlog.logs where job_id = 5), 't',
	'the archive workers deleted the object and recorded it');
is($head->(5), 'not_found', 'the object of the removed log is gone (HEAD 404)');
is($node->safe_psql('postgres', 'select deleted, deletions_pending from buildlog.archive_stats limit 1'),
	'1|0', 'archive_stats: 1 deleted, none pending');

# ---- a replaced log (archived, not purged): never served old, old object
# deleted, new archived
set_conf($node, 'buildlog.purge_delay' => '1h');
write_job($node, 6, 20);
wait_query($node, 'select archived_at is not null from buildlog.logs where job_id = 6', 't',
	'job 6 archived');
is($node->safe_psql('postgres', q(
select buildlog.set_content(6, 'replacement text', 7);
select buildlog.fetch(6);)), "0\nreplacement text", 'replaced: fetch() serves the new content at once');
wait_query($node, q(
select archive_deleted_at is not null and archived_at is not null and archive_delete_since is null
  from buildlog.logs where job_id = 6), 't',
	'replaced: the old object was deleted first, then the new content archived');
is($node->safe_psql('postgres', q(select convert_from(buildlog.s3_get(buildlog.s3_key(6)), 'UTF8'))),
	'replacement text', 'replaced: the object holds the new content');
set_conf($node, 'buildlog.purge_delay' => '1s');

# ---- S3 down: retried with back-off, never forgotten, across a restart
s3_stack('stop');
$node->safe_psql('postgres', 'select buildlog.set_content(7, null, 42)');
wait_query($node, q(
select archive_delete_attempts >= 2 and archive_delete_after > now() from buildlog.logs where job_id = 7), 't',
	'S3 down: the deletion failed, is counted in the row and waits for its back-off');
$node->restart;
is($node->safe_psql('postgres', q(
select l.archive_delete_since is not null and v.deleting = 1
  from buildlog.logs l, buildlog.lifecycle v where l.job_id = 7)),
	't', 'after a restart the deletion is still pending (state in the row)');
s3_stack('start');
$node->safe_psql('postgres', 'update buildlog.logs set archive_delete_after = now() where job_id = 7');
wait_query($node,
	'select archive_deleted_at is not null and archive_delete_since is null from buildlog.logs where job_id = 7', 't',
	'S3 back: the deletion was made and proven');
is($head->(7), 'not_found', 'the object of job 7 is gone');

# ---- a late part after removing a purged log: the old archive is never restored
@r = split /\n/, $node->safe_psql('postgres', q(
select buildlog.set_content(8, null, 42);
select buildlog.write_parts('{8}', '{99}', array['late text'], '{f}');
select requests from buildlog.s3_client_stats();
select coalesce(buildlog.aggregate(8), -1);
select requests from buildlog.s3_client_stats();
select position('job 8 part' in coalesce(buildlog.log(8), ''));));
is("$r[1] $r[2] $r[4] $r[5]", "(0,9,0) 0 0 0",
	'late part after removal: not stored, aggregate() sends no S3 request, the removed text does not come back');
wait_query($node,
	'select archive_deleted_at is not null and archive_delete_since is null and archived_at is null from buildlog.logs where job_id = 8', 't',
	'the old object of job 8 was deleted and nothing was archived in its place');
is($head->(8), 'not_found', 'the object of job 8 is gone');

done_testing();
