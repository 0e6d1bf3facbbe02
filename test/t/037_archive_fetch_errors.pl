# fetch() of a purged log whose archive is gone or unreachable: clear errors
# with their SQLSTATE, the object key and a hint; fetch works again once S3
# is back.
use strict;
use warnings;
use BuildlogTest;
use BuildlogArchive;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = archive_node('archive_fetch_errors', 't037/');
write_jobs($node, 1, 3, 20);
wait_purged($node, 1, 3, 'three logs');

my ($ret, $out, $err) = $node->psql('postgres', 'select md5(buildlog.fetch(2)) = md5(expected(2, 20))');
is("$ret $out", '0 t', 'fetch of a purged log works while its object exists');
s3_curl('-X', 'DELETE', object_url($node, 2));
($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nselect buildlog.fetch(2)");
like($err, qr/ERROR:  42704: could not read S3 object "t037\/jobs\/2\/log.txt".*HINT:  The bucket has no object/s,
	'fetch of a purged log whose object is missing: 42704 with the key and a hint');
s3_stack('stop');
($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nselect buildlog.fetch(3)");
like($err, qr/ERROR:  08006: could not read S3 object "t037\/jobs\/3\/log.txt".*HINT:  The S3 endpoint is unreachable/s,
	'fetch while S3 is down: 08006 with a hint');
s3_stack('start');
is($node->safe_psql('postgres', 'select md5(buildlog.fetch(3)) = md5(expected(3, 20))'), 't',
	'fetch works again once S3 is back');
done_testing();
