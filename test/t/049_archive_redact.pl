# redact() of a purged log: the log is restored, redacted, archived again
# over the old object at the same key, verified and purged; afterwards the
# object and parts() of the purged log hold the redacted text, never the
# secret.
use strict;
use warnings;
use BuildlogTest;
use BuildlogArchive;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = archive_node('archive_redact', 't049/', q(
buildlog.archive_workers = 2
buildlog.aggregate_delay = '1h'
buildlog.s3_timeout = '30s'
));

$node->safe_psql('postgres', q(
select buildlog.write_parts('{20,20,20}', '{0,1,2}',
  array[E'$ export TOKEN=hunter2\n', E'ok\n', E'echo hunter2\n'], '{f,f,t}');
select buildlog.aggregate(20);));
wait_purged($node, 20, 20, 'job 20');
# seen in redact()'s own transaction: once it commits, the archive worker
# may archive the log again at any moment
my @r = split /\n/, $node->safe_psql('postgres', q(
begin;
select buildlog.redact(20, 'hunter2', '[REDACTED]');
select content is not null and purged_at is null and archived_at is null from buildlog.logs where job_id = 20;
commit;));
is($r[0], '2', 'redact() of a purged log: two parts changed');
is($r[1], 't', 'redact(): the redacted text is back in the database, to be archived again');
wait_purged($node, 20, 20, 'job 20 redacted');
is($node->safe_psql('postgres', q(select convert_from(buildlog.s3_get(buildlog.s3_key(20)), 'UTF8'))),
	"\$ export TOKEN=[REDACTED]\nok\necho [REDACTED]\n",
	'redact(): the object at the same key now holds the redacted log');
is($node->safe_psql('postgres', q(select string_agg(content, '' order by number) from buildlog.parts(20))),
	"\$ export TOKEN=[REDACTED]\nok\necho [REDACTED]\n",
	'redact(): parts() of the purged log reads the redacted parts');

done_testing();
