# A log whose assembled size exceeds PostgreSQL's 1 GB limit of a text value:
# aggregate(), log() and fetch() refuse it with SQLSTATE 54000 and the size,
# nothing is lost (the parts stay pending), the server does not crash, and the
# scheduler records the failure in the job's aggregate_error and backs off.
# The parts (257 x 4 MB, lz4-compressed to a few MB on disk) are inserted
# into log_parts directly: write_parts would spend ~20 s on the same bytes.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BuildlogTest;

my $node = buildlog_node('log_over_1gb', q(
buildlog.aggregate_delay = 0
buildlog.drain_workers = 0
buildlog.archive_workers = 0
buildlog.maintenance_interval = 0
default_toast_compression = lz4
));
my $sql = sub { $node->safe_psql('postgres', $_[0]) };
my $started = $sql->('select pg_postmaster_start_time()');

# 257 parts of 4 MiB = 1,077,936,128 bytes, above the limit of 1,073,741,819
$sql->(q(
insert into buildlog.logs (job_id) values (77);
insert into buildlog.log_parts (job_id, number, content)
select 77, n, repeat(chr(97 + n % 26), 4 * 1024 * 1024) from generate_series(0, 256) n;
));
is($sql->('select count(*), sum(octet_length(content)) from buildlog.log_parts where job_id = 77'),
	'257|1077936128', '257 pending parts, 1,077,936,128 bytes in all');

my $refused = qr/^ERROR:  54000: log would exceed the maximum size of a text value\nDETAIL:  The assembled log has 1077936128 bytes\.$/m;
for my $call ('buildlog.aggregate(77)', 'buildlog.log(77)', 'buildlog.fetch(77)')
{
	my ($rc, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nselect $call");
	$err =~ s/^psql:<stdin>:\d+: //mg;
	ok($rc != 0 && $err =~ $refused, "$call: 54000 with the assembled size") or diag($err);
}
is($sql->('select count(*) from buildlog.log_parts where job_id = 77'), '257',
	'the parts are all still pending');
is($sql->('select content is null and aggregated_at is null from buildlog.logs where job_id = 77'), 't',
	'and the log row is untouched');
is($sql->('select count(*), max(length(content)) from buildlog.parts(77, 250)'), '6|4194304',
	'parts() still reads the parts (it assembles nothing)');

# the scheduler: the job becomes due (a final part), the failure is recorded
$sql->(q(insert into buildlog.log_parts (job_id, number, content, final) values (77, 257, '', true)));
wait_query($node, q(select aggregate_failures > 0 and aggregate_error like '%log would exceed the maximum size of a text value%'
                      from buildlog.logs where job_id = 77), 't',
	'the scheduler recorded the 54000 in the job\'s aggregate_error');
# backed off: 1 s after the first failure, doubling; an attempt reads 1 GB,
# so the moment after a failure may have passed when this looks: wait for
# one (each failure starts a longer one)
wait_query($node, q(select aggregate_retry_at > now() from buildlog.logs where job_id = 77), 't', 'and backed the job off');
is($sql->('select pg_postmaster_start_time()'), $started, 'no crash: the server never restarted');

# clean up: the job's parts go, the node with them
is($sql->(q(delete from buildlog.log_parts where job_id = 77; delete from buildlog.logs where job_id = 77;
            select count(*) from buildlog.log_parts)), '0', 'cleaned up');
$node->stop;
$node->clean_node;
done_testing();
