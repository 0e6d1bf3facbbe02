# The life of a log after its job, against a real s3rver: the scheduler
# aggregates, the archive worker uploads, verifies and purges; fetch() reads
# purged logs back.  Objects compared byte for byte with compression off and
# on; s3rver stopped mid-way; objects deleted or altered before verification;
# a 200 MB log with bounded worker memory; a late part after the purge.
#
# Needs BUILDLOG_S3_ENDPOINT and BUILDLOG_ROOT (script/test sets them, with
# the STACK_* variables so script/stack can stop and start s3rver).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Digest::MD5 qw(md5_hex);
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use IPC::Run;
use Time::HiRes qw(time sleep);

my $endpoint = $ENV{BUILDLOG_S3_ENDPOINT} or plan skip_all => 'BUILDLOG_S3_ENDPOINT not set';
my $root = $ENV{BUILDLOG_ROOT} or plan skip_all => 'BUILDLOG_ROOT not set';
my $bucket = $ENV{BUILDLOG_S3_BUCKET} // 'buildlog';
my $prefix = 't003/';

my $node = PostgreSQL::Test::Cluster->new('archive');
$node->init;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'buildlog'
buildlog.database = 'postgres'
buildlog.drain_workers = 0
buildlog.archive_workers = 1
buildlog.aggregate_delay = '1s'
buildlog.purge_delay = '1s'
buildlog.s3_endpoint = '$endpoint'
buildlog.s3_bucket = '$bucket'
buildlog.s3_access_key = 'S3RVER'
buildlog.s3_secret_key = 'S3RVER'
buildlog.s3_prefix = '$prefix'
buildlog.s3_timeout = '5s'
max_worker_processes = 16
restart_after_crash = on
));
$node->start;
$node->safe_psql('postgres', q(
create schema partman;
create extension pg_partman schema partman;
create extension buildlog;
-- part n of job j: UTF-8, ANSI colours, CRLF, a \r progress line, varied sizes
create function gen(j bigint, n int) returns text language sql immutable as $$
  select format(E'job %s part %s: \u00e9\u4e2d\U0001F600 \x1b[32mok\x1b[0m 10%%\r50%%\r\n', j, n)
         || repeat('x', ((j * 7 + n) % 300)::int) || E'\n' $$;
create function expected(j bigint, parts int) returns text language sql immutable as $$
  select string_agg(gen(j, n), '' order by n) from generate_series(0, parts - 1) n $$;
));

# Write jobs first..last with parts 0..parts-1 (the last one final), except skip.
sub write_jobs
{
	my ($first, $last, $parts, $skip) = @_;
	$skip //= 'false';
	$node->safe_psql('postgres', qq(
select buildlog.write_parts(array_agg(j), array_agg(n), array_agg(gen(j, n)), array_agg(n = $parts - 1))
  from generate_series(${first}::bigint, $last) j, generate_series(0, $parts - 1) n
 where not ($skip)));
}

# Wait until jobs first..last are all purged.
sub wait_purged
{
	my ($first, $last, $what) = @_;
	my $n = $last - $first + 1;
	ok( $node->poll_query_until('postgres', qq(
select count(*) = $n from buildlog.logs
 where job_id between $first and $last and purged_at is not null and content is null)),
		"$what: $n logs aggregated, archived, verified and purged");
}

# curl against s3rver, signed like any client (s3rver does not check it).
sub s3_curl
{
	my (@args) = @_;
	my ($out, $err);
	IPC::Run::run([ 'curl', '-sS', '--aws-sigv4', 'aws:amz:us-east-1:s3', '--user', 'S3RVER:S3RVER',
		'-H', 'x-amz-content-sha256: UNSIGNED-PAYLOAD', @args ], '>', \$out, '2>', \$err);
	return $out;
}

sub object_url { return "$endpoint/$bucket/${prefix}jobs/$_[0]/log.txt"; }

# Every object equals the expected text byte for byte (gunzipped if gzip).
sub check_objects
{
	my ($first, $last, $parts, $gzip, $what) = @_;
	my %want = map { split /\|/ } split /\n/, $node->safe_psql('postgres', qq(
select j || '|' || md5(expected(j, $parts)) from generate_series($first, $last) j));
	my %fetched = map { split /\|/ } split /\n/, $node->safe_psql('postgres', qq(
select j || '|' || md5(buildlog.fetch(j)) from generate_series($first, $last) j));
	my (@bad_object, @bad_fetch, @bad_encoding);
	for my $j ($first .. $last) {
		my $headers = s3_curl('-D', '-', '-o', '/dev/null', object_url($j));
		my $body = s3_curl(object_url($j));
		my $gz = $headers =~ /^content-encoding:\s*gzip/mi;
		push @bad_encoding, $j if ($gz ? 1 : 0) != ($gzip ? 1 : 0);
		if ($gz) {
			my $plain;
			gunzip(\$body => \$plain) or die "gunzip: $GunzipError";
			$body = $plain;
		}
		push @bad_object, $j if md5_hex($body) ne $want{$j};
		push @bad_fetch, $j if ($fetched{$j} // '') ne $want{$j};
	}
	is("@bad_object", '', "$what: every object equals its log byte for byte");
	is("@bad_encoding", '', "$what: Content-Encoding " . ($gzip ? 'gzip' : 'none') . ' on every object');
	is("@bad_fetch", '', "$what: fetch() of every purged log equals its text");
}

sub set_conf
{
	my ($name, $value) = @_;
	$node->safe_psql('postgres', "alter system set $name = '$value'; select pg_reload_conf();");
}

# ---- many logs, compression off
write_jobs(1, 100, 20);
wait_purged(1, 100, 'uncompressed');
check_objects(1, 100, 20, 0, 'uncompressed');
is($node->safe_psql('postgres', q(
select count(*) from buildlog.logs where job_id between 1 and 100
   and (archive_size is null or archive_sha256 !~ '^[0-9a-f]{64}$' or archive_etag = '' or verified_at is null))),
	'0', 'size, SHA-256, ETag and verification time recorded for every log');

# ---- compression on
set_conf('buildlog.archive_compression', 'gzip');
write_jobs(101, 150, 20);
wait_purged(101, 150, 'gzip');
check_objects(101, 150, 20, 1, 'gzip');
is($node->safe_psql('postgres', q(
select count(*) from buildlog.logs where job_id between 101 and 150
   and archive_size >= octet_length(expected(job_id, 20)))),
	'0', 'gzip: the recorded size is of the stored (compressed) bytes');
set_conf('buildlog.archive_compression', 'none');

# ---- s3rver stopped while logs wait for the archive: nothing purged meanwhile
{
	system("$root/script/stack", 'stop', 's3') == 0 or die 'stopping s3rver failed';
	write_jobs(201, 220, 20);
	sleep 6;
	is($node->safe_psql('postgres', q(
select count(*) from buildlog.logs where job_id between 201 and 220
   and content is not null and purged_at is null and archived_at is null)),
		'20', 's3rver down: all 20 logs kept in the database, none archived or purged');
	is($node->safe_psql('postgres', 'select retries > 0 and last_error is not null from buildlog.archive_stats'),
		't', 's3rver down: retries and the last error shown in archive_stats');
	system("$root/script/stack", 'start', 's3') == 0 or die 'starting s3rver failed';
	wait_purged(201, 220, 's3rver back');
	check_objects(201, 220, 20, 0, 's3rver back');
}

# ---- object deleted or altered before verification: re-archived, not purged
{
	set_conf('buildlog.purge_delay', '1h');
	write_jobs(301, 302, 20);
	ok($node->poll_query_until('postgres', q(
select count(*) = 2 from buildlog.logs where job_id between 301 and 302 and archived_at is not null)),
		'two logs archived, waiting for verification');
	s3_curl('-X', 'DELETE', object_url(301));
	s3_curl('-X', 'PUT', '--data-binary', 'a fragment', object_url(302));
	my $before = $node->safe_psql('postgres', 'select reuploads from buildlog.archive_stats');
	set_conf('buildlog.purge_delay', '1s');
	wait_purged(301, 302, 'deleted / altered objects');
	is($node->safe_psql('postgres', 'select reuploads from buildlog.archive_stats') - $before,
		2, 'both damaged archives detected and archived again');
	check_objects(301, 302, 20, 0, 'deleted / altered objects');
	like(slurp_file($node->logfile), qr/archive of job 301 is missing; archiving it again, not purging/,
		'the missing archive was logged');
}

# ---- a late part after the purge lands at its place, in the archive too
{
	write_jobs(401, 401, 30, 'n = 13');
	wait_purged(401, 401, 'log without part 13');
	$node->safe_psql('postgres', q(
select buildlog.write_parts('{401}', '{13}', array[gen(401, 13)], '{f}')));
	ok($node->poll_query_until('postgres', q(
select purged_at is not null and purged_at > aggregated_at and content is null
  from buildlog.logs where job_id = 401 and 13 = any(part_numbers))),
		'late part merged (log restored from S3), archived, verified and purged again');
	check_objects(401, 401, 30, 0, 'late part');

	# a duplicate of a purged log's part is dropped without a download (S3 is down)
	system("$root/script/stack", 'stop', 's3') == 0 or die 'stopping s3rver failed';
	my $failures = $node->safe_psql('postgres', 'select aggregate_failures from buildlog.scheduler_stats');
	$node->safe_psql('postgres', q(
select buildlog.write_parts('{401}', '{3}', array[gen(401, 3)], '{f}')));
	ok($node->poll_query_until('postgres', q(
select count(*) = 0 from buildlog.log_parts where job_id = 401)),
		'duplicate of a purged part aggregated away while S3 is down');
	is($node->safe_psql('postgres', qq(
select l.purged_at is not null and s.aggregate_failures = $failures
  from buildlog.logs l, buildlog.scheduler_stats s where l.job_id = 401)),
		't', 'the log stays purged and nothing failed');
	system("$root/script/stack", 'start', 's3') == 0 or die 'starting s3rver failed';
}

# ---- a 200 MB log: the archive worker's own memory stays bounded
{
	my $pid = $node->safe_psql('postgres', 'select pid from buildlog.archive_stats');
	my $anon = sub {
		open(my $fh, '<', "/proc/$pid/status") or return 0;
		my ($kb) = join('', <$fh>) =~ /^RssAnon:\s+(\d+)/m;
		return $kb // 0;
	};
	my $base = $anon->();
	set_conf('buildlog.purge_delay', '1h');
	for my $chunk (0 .. 19) {    # 200 parts of 1 MB, 10 per statement
		$node->safe_psql('postgres', qq(
select buildlog.write_parts(array_fill(500::bigint, array[10]), array_agg(n),
                            array_agg(repeat(chr(97 + n % 26), 1048576)), array_agg(n = 199))
  from generate_series($chunk * 10, $chunk * 10 + 9) n));
	}
	my $peak = $base;
	my $t0 = time;
	while (time - $t0 < 180) {
		my $now = $anon->();
		$peak = $now if $now > $peak;
		last if $node->safe_psql('postgres',
			'select archived_at is not null from buildlog.logs where job_id = 500') eq 't';
		sleep 0.05;
	}
	is($node->safe_psql('postgres', 'select archive_size from buildlog.logs where job_id = 500'),
		200 * 1048576, 'the 200 MB log was archived');
	cmp_ok($peak - $base, '<', 32 * 1024,
		sprintf('archive worker RssAnon grew by %.1f MB while uploading 200 MB', ($peak - $base) / 1024));
	set_conf('buildlog.purge_delay', '1s');
	wait_purged(500, 500, '200 MB log');
}

# ---- a wrong bucket (4xx): counted and shown, logged at most once a minute, nothing lost
{
	my $before = $node->safe_psql('postgres', 'select failures from buildlog.archive_stats');
	my $log_offset = -s $node->logfile;
	set_conf('buildlog.s3_bucket', 'no-such-bucket');
	write_jobs(601, 605, 20);
	sleep 8;
	is($node->safe_psql('postgres', q(
select count(*) from buildlog.logs where job_id between 601 and 605 and content is not null and archived_at is null)),
		'5', 'wrong bucket: the logs stay in the database, unarchived');
	is($node->safe_psql('postgres', qq(
select failures > $before and last_error ~ 'permanent' from buildlog.archive_stats)),
		't', 'wrong bucket: failures counted, last_error shows the permanent error');
	my $lines = () = substr(slurp_file($node->logfile), $log_offset) =~ /archiving failed \(permanent\)/g;
	cmp_ok($lines, '<=', 1, "wrong bucket: logged $lines time(s) in 8 s, not once per attempt or log");
	set_conf('buildlog.s3_bucket', $bucket);
	wait_purged(601, 605, 'bucket fixed');
	check_objects(601, 605, 20, 0, 'bucket fixed');
}

# ---- the archive worker killed mid-upload: the restart finishes the job
{
	set_conf('buildlog.purge_delay', '1h');
	$node->safe_psql('postgres', q(
select buildlog.write_parts(array_fill(700::bigint, array[61]), array_agg(n),
                            array_agg(case when n < 60 then repeat(chr(65 + n % 26), 1048576) else '' end),
                            array_agg(n = 60))
  from generate_series(0, 60) n));
	ok($node->poll_query_until('postgres', 'select in_flight = 700 from buildlog.archive_stats'),
		'a 60 MB upload is in flight');
	my $pid = $node->safe_psql('postgres', 'select pid from buildlog.archive_stats');
	kill 'KILL', $pid;
	# the postmaster reinitialises after a crashed worker; wait until it answers
	sleep 1;
	for (1 .. 120) {
		last if system('pg_isready', '-q', '-h', $node->host, '-p', $node->port) == 0;
		sleep 0.5;
	}
	ok($node->poll_query_until('postgres', q(
select archived_at is not null and archive_size = 60 * 1048576 from buildlog.logs where job_id = 700)),
		'after the crash restart the log was archived in full');
	set_conf('buildlog.purge_delay', '1s');
	wait_purged(700, 700, 'crashed upload');
	is($node->safe_psql('postgres', q(select md5(buildlog.fetch(700)) =
  md5(string_agg(repeat(chr(65 + n % 26), 1048576), '' order by n)) from generate_series(0, 59) n)),
		't', 'crashed upload: the purged log reads back complete');
}

# ---- fetch() of a purged log whose archive is gone or unreachable: clear errors
{
	my ($ret, $out, $err) = $node->psql('postgres', '\\set VERBOSITY verbose
select buildlog.fetch(2)');
	is($ret, 0, 'fetch of a purged log works while its object exists');
	s3_curl('-X', 'DELETE', object_url(2));
	($ret, $out, $err) = $node->psql('postgres', '\\set VERBOSITY verbose
select buildlog.fetch(2)');
	like($err, qr/ERROR:  42704: could not read S3 object "t003\/jobs\/2\/log.txt".*HINT:  The bucket has no object/s,
		'fetch of a purged log whose object is missing: 42704 with the key and a hint');
	system("$root/script/stack", 'stop', 's3') == 0 or die 'stopping s3rver failed';
	($ret, $out, $err) = $node->psql('postgres', '\\set VERBOSITY verbose
select buildlog.fetch(3)');
	like($err, qr/ERROR:  08006: could not read S3 object "t003\/jobs\/3\/log.txt".*HINT:  The S3 endpoint is unreachable/s,
		'fetch while S3 is down: 08006 with a hint');
	system("$root/script/stack", 'start', 's3') == 0 or die 'starting s3rver failed';
	is($node->safe_psql('postgres', 'select md5(buildlog.fetch(3)) = md5(expected(3, 20))'), 't',
		'fetch works again once S3 is back');
}

# ---- views
is($node->safe_psql('postgres', 'select streaming, due, aggregated, archived from buildlog.lifecycle'),
	'0|0|0|0', 'lifecycle: nothing left streaming, due, waiting for the archive or for verification');
is($node->safe_psql('postgres', 'select purged = 180 and verified = 180 from buildlog.lifecycle'),
	't', 'lifecycle: every log verified and purged');

$node->stop;
unlike(slurp_file($node->logfile), qr/S3RVER/, 'the S3 keys never appear in the server log');
done_testing();
