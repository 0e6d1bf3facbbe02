# A 200 MB log: archived with the archive worker's own memory bounded, and
# the stored object, the recorded facts and fetch() all carry exactly the
# generated text (SHA-256 compared, not only the size).
use strict;
use warnings;
use BuildlogTest;
use BuildlogArchive;
use Digest::SHA;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = archive_node('archive_big_log', 't035/', "buildlog.purge_delay = '1h'\n");
my $text = q((select string_agg(repeat(chr(97 + n % 26), 1048576), '' order by n) from generate_series(0, 199) n));

my $pid;
ok(wait_until('the archive worker in archive_stats', sub {
			$pid = $node->safe_psql('postgres', 'select pid from buildlog.archive_stats');
			($pid =~ /^\d+$/, $pid);
		}), 'the archive worker runs');
my $anon = sub {
	open(my $fh, '<', "/proc/$pid/status") or return 0;
	my ($kb) = join('', <$fh>) =~ /^RssAnon:\s+(\d+)/m;
	return $kb // 0;
};
my $base = $anon->();
ok($base > 0, "archive worker $pid: RssAnon $base kB before");
for my $chunk (0 .. 19) {    # 200 parts of 1 MB, 10 per statement
	$node->safe_psql('postgres', qq(
select buildlog.write_parts(array_fill(500::bigint, array[10]), array_agg(n),
                            array_agg(repeat(chr(97 + n % 26), 1048576)), array_agg(n = 199))
  from generate_series($chunk * 10, $chunk * 10 + 9) n));
}
my $peak = $base;
ok(wait_until('the 200 MB log archived', sub {
	my $now = $anon->();
	$peak = $now if $now > $peak;
	return $node->safe_psql('postgres', 'select archived_at is not null from buildlog.logs where job_id = 500') eq 't';
}, interval => 0.05, timeout => 180), 'the 200 MB log was archived');
cmp_ok($peak - $base, '<', 32 * 1024,
	sprintf('archive worker RssAnon grew by %.1f MB while uploading 200 MB', ($peak - $base) / 1024));

my $want = $node->safe_psql('postgres', "select encode(sha256(convert_to($text, 'UTF8')), 'hex')");
is($node->safe_psql('postgres', 'select archive_size, archive_sha256 from buildlog.logs where job_id = 500'),
	200 * 1048576 . "|$want", 'recorded: 200 MB and the SHA-256 of the generated text');
my $file = $node->basedir . '/object500';
s3_curl('-o', $file, object_url($node, 500));
is(-s $file, 200 * 1048576, 'the stored object is 200 MB');
is(Digest::SHA->new(256)->addfile($file)->hexdigest, $want, 'the stored object has the generated text\'s SHA-256');
unlink $file;

set_conf($node, 'buildlog.purge_delay' => '1s');
wait_purged($node, 500, 500, '200 MB log');
is($node->safe_psql('postgres', "select encode(sha256(convert_to(buildlog.fetch(500), 'UTF8')), 'hex')"),
	$want, 'fetch() of the purged 200 MB log returns exactly the generated text');
done_testing();
