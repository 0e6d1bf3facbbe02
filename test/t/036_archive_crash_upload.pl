# The archive worker killed (kill -9) while its PUT is streaming: the kill is
# proven to land mid-upload (s3rver writes the object file as the bytes
# arrive: it exists and is shorter than the log), the claim dies with the
# worker's transaction, and after the crash restart the log is uploaded again
# in full: object, recorded facts and fetch() carry exactly the text.
use strict;
use warnings;
use BuildlogTest;
use BuildlogArchive;
use Digest::SHA;
use PostgreSQL::Test::Utils;
use Test::More;

my ($stack_dir) = need_env('STACK_DIR');
my $bucket = $ENV{BUILDLOG_S3_BUCKET} // 'buildlog';
my $node = archive_node('archive_crash_upload', 't036/', "buildlog.purge_delay = '1h'\nrestart_after_crash = on\n");
my $file = "$stack_dir/s3/data/$bucket/t036/jobs/700/log.txt._S3rver_object";
my $size = 80 * 1048576;
unlink $file;

$node->safe_psql('postgres', q(
select buildlog.write_parts(array_fill(700::bigint, array[81]), array_agg(n),
                            array_agg(case when n < 80 then repeat(chr(65 + n % 26), 1048576) else '' end),
                            array_agg(n = 80))
  from generate_series(0, 80) n));
my $pid;
ok(wait_until('the archive worker in archive_stats', sub {
			$pid = $node->safe_psql('postgres', 'select pid from buildlog.archive_stats');
			($pid =~ /^\d+$/, $pid);
		}), 'the archive worker runs');
my $partial = 0;
ok(wait_until('s3rver receiving the object of job 700 (file shorter than the log)', sub {
	my $s = -s $file // 0;
	return 0 unless $s > 0 && $s < $size;
	kill 'KILL', $pid;    # at once, while the PUT streams
	$partial = $s;
	return 1;
}, interval => 0.005, timeout => 120), 'the upload of an 80 MB log is streaming');
my $after = -s $file;
ok($partial > 0 && $partial < $size && $after < $size,
	"kill -9 landed mid-upload: s3rver had $partial of $size bytes at the kill, $after after it");

wait_query($node, 'select pid <> ' . $pid . ' from buildlog.archive_stats', 't',
	'the postmaster restarted after the crash, with a new archive worker');
wait_query($node, 'select archived_at is not null and archive_size = ' . $size . ' from buildlog.logs where job_id = 700',
	't', 'after the crash restart the log was archived in full');
my $want = $node->safe_psql('postgres', q(
select encode(sha256(convert_to(string_agg(repeat(chr(65 + n % 26), 1048576), '' order by n), 'UTF8')), 'hex')
  from generate_series(0, 79) n));
is(-s $file, $size, 'the object is complete');
is(Digest::SHA->new(256)->addfile($file)->hexdigest, $want, 'the object has the text\'s SHA-256');
is($node->safe_psql('postgres', 'select archive_sha256 from buildlog.logs where job_id = 700'), $want,
	'the recorded SHA-256 is the text\'s');
set_conf($node, 'buildlog.purge_delay' => '1s');
wait_purged($node, 700, 700, 'crashed upload');
is($node->safe_psql('postgres', "select encode(sha256(convert_to(buildlog.fetch(700), 'UTF8')), 'hex')"), $want,
	'crashed upload: the purged log reads back complete');
done_testing();
