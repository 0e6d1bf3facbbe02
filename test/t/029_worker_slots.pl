# Too few background worker slots: with max_worker_processes = 3 for a
# configuration that needs 7 (scheduler, 2 drain, 1 archive, the HTTP worker
# and its 2 readers), the start-up warning names the numbers, what starts
# and the settings to change; the scheduler starts first, and the one drain
# worker that fits consumes every queue.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BuildlogTest;

my ($url) = need_env('BUILDLOG_AMQP_URL', 'BUILDLOG_ROOT');
my $http_port = PostgreSQL::Test::Cluster::get_free_port();
my $small = buildlog_node('slots', qq(
buildlog.amqp_url = '$url'
buildlog.amqp_queues = 'tq.w1,tq.w2'
buildlog.drain_workers = 2
buildlog.archive_workers = 1
max_worker_processes = 3
buildlog.http_listen = '127.0.0.1:$http_port'
));
like(slurp_file($small->logfile),
	qr/WARNING:  buildlog needs 7 background worker slots \(1 scheduler, 2 drain, 1 archive, 1 http, 2 http reader\), but max_worker_processes = 3 leaves 2\n.*DETAIL:  Starting the scheduler, 1 of 2 drain workers, 0 of 1 archive workers and 0 of 3 HTTP workers \(the service and its readers\).\n.*HINT:  Raise max_worker_processes to at least 8 .* or lower buildlog.drain_workers, buildlog.archive_workers or buildlog.http_readers/,
	'the start-up warning names the numbers and the setting');
wait_query($small, 'select count(*) from buildlog.scheduler_stats', '1', 'the scheduler runs');
wait_query($small, q(select string_agg(queues, ' ') from buildlog.drain_stats), 'tq.w1,tq.w2',
	'the one drain worker that fits consumes every queue');
$small->stop;

done_testing();
