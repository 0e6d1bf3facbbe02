# Logs archived, verified and purged, compression off and on: every object is
# the log byte for byte (gunzipped for gzip), and the archive facts recorded in
# buildlog.logs EQUAL the stored object's length, SHA-256 and ETag (for gzip:
# of the compressed bytes), so verification compares against the real object.
use strict;
use warnings;
use BuildlogTest;
use BuildlogArchive;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = archive_node('archive_objects', 't030/');

write_jobs($node, 1, 60, 20);
wait_purged($node, 1, 60, 'uncompressed');
check_objects($node, 1, 60, 20, 0, 'uncompressed');
is($node->safe_psql('postgres', q(
select count(*) from buildlog.logs where job_id between 1 and 60
   and (verified_at is null or verified_at < archived_at or archive_gzip))),
	'0', 'uncompressed: every log verified after its upload, recorded as not compressed');

set_conf($node, 'buildlog.archive_compression' => 'gzip');
wait_query($node, "select current_setting('buildlog.archive_compression')", 'gzip', 'gzip configured');
write_jobs($node, 101, 140, 20);
wait_purged($node, 101, 140, 'gzip');
check_objects($node, 101, 140, 20, 1, 'gzip');
is($node->safe_psql('postgres', q(
select count(*) from buildlog.logs where job_id between 101 and 140
   and archive_gzip and archive_size < octet_length(expected(job_id, 20)))),
	'40', 'gzip: every log recorded as compressed, its stored size below the text\'s');

# a worker counts an upload or a purge after its commit
wait_query($node, 'select archived, verified, purged, reuploads from buildlog.archive_stats',
	'100|100|100|0', 'archive_stats: 100 archived, verified and purged, none again');
is($node->safe_psql('postgres', 'select streaming, due, aggregated, archived, purged, verified from buildlog.lifecycle'),
	'0|0|0|0|100|100', 'lifecycle: nothing left streaming, due, waiting for the archive or for verification');

$node->stop;
unlike(slurp_file($node->logfile), qr/S3RVER/, 'the S3 keys never appear in the server log');
done_testing();
