# Queue names are taken verbatim from buildlog.amqp_queues: mixed case, a
# name over 63 bytes (100), whitespace around the commas trimmed; both queues
# are consumed and every part stored.  A list with an empty entry or a name
# over AMQP's 255 bytes is refused with the entry's position and changes
# nothing.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use BuildlogTest;

need_env('BUILDLOG_AMQP_URL', 'BUILDLOG_ROOT');
my $node = drain_node('drain_queue_names');

my $long = 'tq.Long.' . ('x' x 92);    # 100 bytes
fresh_queues($node, 'Reporting.Jobs.1', 0);
fresh_queues($node, $long, 0);
use_queues($node, "Reporting.Jobs.1,  $long");
is(drain_stat($node, 'queues'), "Reporting.Jobs.1,$long", 'drain_stats shows both names verbatim');
publish_input('', '--queue', 'Reporting.Jobs.1', '--jobs', 5, '--first-job', 910000, '--parts', 10);
publish_input('', '--queue', $long, '--jobs', 5, '--first-job', 910100, '--parts', 10);
wait_parts($node, 910000, 5, 55, 'mixed-case queue');
wait_parts($node, 910100, 5, 55, '100-byte queue');

my ($ret, $out, $err) = $node->psql('postgres',
	q(alter system set buildlog.amqp_queues = 'a, ,b'));
like($err, qr/must be a comma-separated list of queue names.*\n.*Entry 2 of the list is empty/,
	'an empty entry is refused with its position');
($ret, $out, $err) = $node->psql('postgres',
	"alter system set buildlog.amqp_queues = 'a," . ('y' x 256) . "'");
like($err, qr/Entry 2 of the list has 256 bytes; AMQP queue names have at most 255/,
	'a name over 255 bytes is refused');
is($node->safe_psql('postgres', 'show buildlog.amqp_queues'), "Reporting.Jobs.1,  $long",
	'the refused values changed nothing');

done_testing();
