# The upload reads the log twice (a digest pass: size, SHA-256, MD5 signed
# before the first byte; then the put pass).  If the bytes differ between the
# passes the upload is aborted before its last byte and retried, and never is
# an object verified that differs from what was recorded.  The bytes are made
# to differ the only way they can under the worker's snapshot and row lock:
# the TOAST page holding them is changed on disk after the digest pass read it
# (shared_buffers of 1 MB: it was evicted) and before the put pass reaches it.
# The worker uploads through a proxy that holds the PUT once its request line
# passed (the digest pass is over then; the put pass can only fill the socket
# buffers, far short of the page) until the page is changed: no race.
use strict;
use warnings;
use BuildlogTest;
use BuildlogArchive;
use Digest::SHA;
use PostgreSQL::Test::Utils;
use Test::More;

my ($stack_dir) = need_env('STACK_DIR');
my $bucket = $ENV{BUILDLOG_S3_BUCKET} // 'buildlog';
my $node = archive_node('archive_two_passes', 't039/', qq(
shared_buffers = '1MB'
buildlog.s3_endpoint = ''
buildlog.purge_delay = '1h'
));
my $object = "$stack_dir/s3/data/$bucket/t039/jobs/900/log.txt._S3rver_object";
unlink $object;
my $ctl = PostgreSQL::Test::Utils::tempdir();
my ($proxy, $proxy_pid) = holding_proxy(qr{^PUT \S*/t039/jobs/900/log\.txt }m, $ctl);
my $marker = 'MARKER-' . int(rand(1e9)) . '-END';
(my $changed = $marker) =~ s/^M/X/;

# 64 parts of 1 MB, the marker in part 60 (near the end: far from the put pass's start)
$node->safe_psql('postgres', qq(
select buildlog.write_parts(array_fill(900::bigint, array[64]), array_agg(n),
         array_agg(case when n = 60 then overlay(repeat('q', 1048576) placing '$marker' from 1000)
                        else repeat(chr(97 + n % 26), 1048576) end), array_agg(n = 63))
  from generate_series(0, 63) n));
wait_query($node, 'select content is not null from buildlog.logs where job_id = 900', 't', 'the 64 MB log aggregated');
# read it once (hint bits set) and write every page out: the pages stay clean
$node->safe_psql('postgres', 'select md5(content) from buildlog.logs where job_id = 900; checkpoint');
my $toast = $node->data_dir . '/' . $node->safe_psql('postgres',
	q(select pg_relation_filepath(reltoastrelid) from pg_class where oid = 'buildlog.logs'::regclass));
my $data = slurp_file($toast);
my $at = index($data, $marker);
ok($at >= 0 && index($data, $marker, $at + 1) < 0, "the marker is once in the TOAST file, at byte $at");
undef $data;

my $mark = log_mark($node);
set_conf($node, 'buildlog.s3_endpoint' => $proxy);
ok(wait_until('the PUT of job 900 held by the proxy', sub { -e "$ctl/held" }),
	'digest pass done, the put pass started and is held');
my $held = slurp_file("$ctl/held");
open(my $fh, '+<', $toast) or die "open $toast: $!";
binmode $fh;
sysseek($fh, $at, 0) or die "seek: $!";
syswrite($fh, $changed) == length($changed) or die "write: $!";
close $fh;
cmp_ok($held, '<', 60 * 1048576, "the marker changed on disk while the put pass was held after $held bytes, short of it");
PostgreSQL::Test::Utils::append_to_file("$ctl/go", '');

wait_query($node, 'select archived_at is not null from buildlog.logs where job_id = 900', 't', 'the log archived');
like(log_since($node, $mark), qr/WARNING:  buildlog archive 1: archiving failed \(bad_data\): The source changed between the digest and the upload/,
	'the first upload was aborted: the source changed between the passes');
# the worker counts an upload after its commit
wait_query($node, 'select coalesce(sum(archived), 0) from buildlog.archive_stats', '1', 'one upload completed (the retry)');
my $content = $node->safe_psql('postgres', qq(
select position('$changed' in content) > 0, encode(sha256(convert_to(content, 'UTF8')), 'hex'),
       archive_sha256, archive_size from buildlog.logs where job_id = 900));
my ($has_changed, $content_sha, $recorded, $size) = split /\|/, $content;
is($has_changed, 't', 'the database now reads the changed bytes (both passes of the retry did)');
is(-s $object, $size, 'the object has the recorded size');
my $object_sha = Digest::SHA->new(256)->addfile($object)->hexdigest;
is("$object_sha $recorded", "$content_sha $content_sha",
	'object, recorded SHA-256 and content agree: no object differing from its record was stored');
set_conf($node, 'buildlog.purge_delay' => '1s');
wait_purged($node, 900, 900, 'the re-uploaded log');
is($node->safe_psql('postgres', "select encode(sha256(convert_to(buildlog.fetch(900), 'UTF8')), 'hex')"),
	$content_sha, 'fetch() of the purged log reads the archived text (it matches its record)');
kill('TERM', $proxy_pid);
waitpid($proxy_pid, 0);
done_testing();
