# Several archive workers (archive_workers = 3) never take the same log: held
# mid-upload by an endpoint that never answers, the three are seen uploading
# three different logs at once, and every log is uploaded exactly once.  The
# row a worker holds during its upload makes the scheduler's aggregation of a
# late part for that log time out: counted as `deferred` (not a failure),
# other jobs aggregated meanwhile, the part merged once the upload ends.
use strict;
use warnings;
use BuildlogTest;
use BuildlogArchive;
use IO::Socket::INET;
use PostgreSQL::Test::Utils;
use Test::More;

# a listener that accepts connections (the kernel's backlog) and never answers
my $hole = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 32, ReuseAddr => 1)
  or die "listen: $!";
my $hole_port = $hole->sockport;
my $node = archive_node('archive_claims', 't038/', qq(
buildlog.archive_workers = 3
buildlog.purge_delay = '1h'
buildlog.s3_endpoint = 'http://127.0.0.1:$hole_port'
buildlog.s3_timeout = '60s'
buildlog.s3_request_timeout = '60s'
));

write_jobs($node, 1, 12, 20);
wait_query($node, q(select count(*) filter (where in_flight <> 0), count(distinct in_flight) filter (where in_flight <> 0)
  from buildlog.archive_stats), '3|3', 'three workers uploading at once, each a different log');
my @busy = split /\n/, $node->safe_psql('postgres', 'select in_flight from buildlog.archive_stats order by worker');
# ---- deferred: a late part for a log being uploaded
my ($deferred, $failures) = split /\|/,
  $node->safe_psql('postgres', 'select deferred, aggregate_failures from buildlog.scheduler_stats');
$node->safe_psql('postgres', qq(select buildlog.write_parts('{$busy[0]}', '{20}', array[gen($busy[0], 20)], '{f}')));
write_jobs($node, 50, 50, 20);
wait_query($node, "select deferred > $deferred from buildlog.scheduler_stats", 't',
	"late part of job $busy[0] while a worker uploads its log: the aggregation counted as deferred");
wait_query($node, 'select content is not null from buildlog.logs where job_id = 50', 't',
	'another job aggregated meanwhile');
is($node->safe_psql('postgres', qq(
select s.aggregate_failures = $failures and l.aggregate_error is null and l.aggregate_failures = 0
       and not (20 = any(l.part_numbers))
  from buildlog.scheduler_stats s, buildlog.logs l where l.job_id = $busy[0])), 't',
	'deferred is no failure: no error recorded, no back-off, the part still pending');
is(stat_sum($node, 'archived'), '0', 'nothing archived yet (the endpoint never answers)');

# the listener closes: the uploads fail (the claims are released), the late part merges
close($hole);
wait_query($node, qq(select 20 = any(part_numbers) from buildlog.logs where job_id = $busy[0]), 't',
	'upload ended: the deferred late part merged the next round');
# the workers retry (each attempt shows in_flight for a moment): wait for a
# moment without any
wait_query($node, 'select count(*) from buildlog.archive_stats where in_flight <> 0', '0',
	'no upload in flight while the endpoint refuses connections');

set_conf($node, 'buildlog.s3_endpoint' => $ENV{BUILDLOG_S3_ENDPOINT});
wait_query($node, 'select count(*) from buildlog.logs where archived_at is not null', '13',
	'endpoint back: all 13 logs archived');
# a worker counts an upload after its commit
wait_query($node, 'select sum(archived), sum(reuploads) from buildlog.archive_stats', '13|0',
	'13 logs, 13 uploads: no log was uploaded twice');
set_conf($node, 'buildlog.purge_delay' => '1s');
wait_query($node, 'select count(*) from buildlog.logs where purged_at is not null', '13', 'all 13 logs purged');
check_objects($node, $busy[0], $busy[0], 21, 0, 'the log with the deferred late part');
check_objects($node, $_, $_, 20, 0, "job $_") for grep { $_ != $busy[0] } 1 .. 12, 50;
is($node->safe_psql('postgres', 'select sum(archived) from buildlog.archive_stats'), '13',
	'verification found every object as uploaded (no second upload)');
done_testing();
