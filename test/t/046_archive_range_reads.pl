# parts(job, after) of a purged log reads only the byte range it needs from
# the archive, validated against what was recorded at upload: the same rows
# as before the purge, exactly the bytes of the parts after `after`, no S3
# request when nothing follows; a gzip archive is read whole (documented);
# an object replaced behind buildlog's back is refused (its Content-Range
# total differs from the recorded archive_size).
use strict;
use warnings;
use BuildlogTest;
use BuildlogArchive;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = archive_node('archive_range_reads', 't046/', q(
buildlog.archive_workers = 2
buildlog.aggregate_delay = '1h'
buildlog.s3_timeout = '30s'
));

write_job($node, 2, 50);
my $before = $node->safe_psql('postgres',
	q(select md5(string_agg(number || ':' || content || ':' || final, '|' order by number)) from buildlog.parts(2, 40)));
my $want_bytes = $node->safe_psql('postgres',
	q(select sum(octet_length(gen(2, n))) from generate_series(41, 49) n));
wait_purged($node, 2, 2, 'job 2');
my @r = split /\n/, $node->safe_psql('postgres', q(
select received_bytes from buildlog.s3_client_stats();
select md5(string_agg(number || ':' || content || ':' || final, '|' order by number)) from buildlog.parts(2, 40);
select received_bytes from buildlog.s3_client_stats();
select requests from buildlog.s3_client_stats();
select count(*) from buildlog.parts(2, 49);
select requests from buildlog.s3_client_stats();
select archive_size from buildlog.logs where job_id = 2));
is($r[1], $before, 'parts(job, 40) of a purged log returns the rows it returned before the purge');
is($r[2] - $r[0], $want_bytes,
	"parts(job, 40) read only the $want_bytes bytes of parts 41..49 (archive: $r[6] bytes)");
is("$r[4] $r[5]", "0 $r[3]", 'parts(job, last) of a purged log sends no S3 request');

# gzip archives are read whole, with the same rows
set_conf($node, 'buildlog.archive_compression' => 'gzip');
write_job($node, 3, 50);
$before = $node->safe_psql('postgres',
	q(select md5(string_agg(number || ':' || content, '|' order by number)) from buildlog.parts(3, 40)));
wait_purged($node, 3, 3, 'job 3');
@r = split /\n/, $node->safe_psql('postgres', q(
select received_bytes from buildlog.s3_client_stats();
select md5(string_agg(number || ':' || content, '|' order by number)) from buildlog.parts(3, 40);
select received_bytes from buildlog.s3_client_stats();
select archive_size from buildlog.logs where job_id = 3));
is($r[1], $before, 'gzip archive: parts(job, 40) returns the same rows');
is($r[2] - $r[0], $r[3], 'gzip archive: the whole object is read (documented)');
set_conf($node, 'buildlog.archive_compression' => 'none');

# an object replaced behind our back: the range is not trusted
$node->safe_psql('postgres', q(select buildlog.s3_put_text(buildlog.s3_key(2), repeat('y', 5000))));
my ($ret, $out, $err) = $node->psql('postgres', '\\set VERBOSITY verbose
select count(*) from buildlog.parts(2, 40)');
like($err, qr/XX001: the archive of job 2 does not match what was recorded at upload.*Content-Range total is 5000, the recorded size/s,
	'replaced object: the range read is refused (Content-Range total differs from archive_size)');

done_testing();
