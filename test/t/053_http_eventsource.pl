# A real EventSource client (the npm eventsource package, as browsers
# behave) follows a running job over /jobs/{id}/events; the HTTP worker is
# killed mid-stream, the client reconnects by itself with its Last-Event-ID
# once the worker is back, and ends up with every part exactly once, in the
# order they were sent, including the parts written while it was away.
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my ($root) = need_env('BUILDLOG_ROOT');
my $module = "$root/.tools/node_modules/eventsource";
-d $module or BAIL_OUT("$module missing: run script/bootstrap");
my ($node, $base) = http_node('eventsource', "buildlog.aggregate_delay = '1h'\n");
my $tmp = PostgreSQL::Test::Utils::tempdir();

# the client: prints "open", "part <number> <id>", "end <data>", then exits
open(my $js, '>', "$tmp/client.js") or die $!;
print $js <<'JS';
const EventSource = require(process.argv[2]);
const es = new EventSource(process.argv[3]);
es.onopen = () => console.log('open');
es.addEventListener('part', (e) => console.log('part ' + JSON.parse(e.data).number + ' ' + e.lastEventId));
es.addEventListener('end', (e) => { console.log('end ' + e.data); es.close(); process.exit(0); });
setTimeout(() => { console.log('timeout'); process.exit(1); }, 90000);
JS
close($js);

# write_parts(NUMBERS, FINAL): the parts of job 30 numbered NUMBERS, FINAL final
sub write_parts
{
	my ($numbers, $final) = @_;
	my $n = @$numbers;
	$node->safe_psql('postgres', sprintf(
			"select buildlog.write_parts(array_fill(30::bigint, array[%d]), '{%s}',"
			  . " array(select 'line ' || x || E'\\n' from unnest('{%s}'::int[]) x),"
			  . " array(select x = %d from unnest('{%s}'::int[]) x))",
			$n, join(',', @$numbers), join(',', @$numbers), $final, join(',', @$numbers)));
}

my $out = '';
my $client = IPC::Run::start([ 'node', "$tmp/client.js", $module, "$base/jobs/30/events" ], '>', \$out, '2>', \my $err);
write_parts([ 0 .. 9, 11, 10, 12 .. 49 ], -1);
# (a client that exits early ends the wait: its output says why)
ok(wait_until('the client to receive 50 parts', sub {
			$client->pump_nb if $client->pumpable;
			((() = $out =~ /^part /mg) == 50 || !$client->pumpable, $out =~ tr/\n// . ' lines');
		}) && (() = $out =~ /^part /mg) == 50,
	'the EventSource client received the first 50 parts live') or diag("$out\n$err");

# the worker goes away mid-stream; parts keep arriving meanwhile
my $pid = $node->safe_psql('postgres', "select pid from pg_stat_activity where backend_type = 'buildlog http'");
$node->safe_psql('postgres', "select pg_terminate_backend($pid)");
ok(wait_until('the HTTP worker to exit', sub {
			$node->safe_psql('postgres', "select count(*) from pg_stat_activity where pid = $pid") eq '0' }),
	'the HTTP worker was terminated under the open stream');
write_parts([ 50 .. 59, 61, 60, 62 .. 99 ], -1);
write_parts([100], 100);
ok(wait_until('the client to get the end event', sub {
			$client->pump_nb if $client->pumpable;
			($out =~ /^end /m || !$client->pumpable, $out =~ tr/\n// . ' lines');
		}) && $out =~ /^end /m,
	'after the worker came back the client resumed by itself and got the end event') or diag("$out\n$err");
$client->finish;

my @numbers = $out =~ /^part (\d+) /mg;
my %count;
$count{$_}++ for @numbers;
is_deeply([ sort { $a <=> $b } keys %count ], [ 0 .. 100 ], 'every part 0..100 received');
is(scalar(grep { $count{$_} > 1 } keys %count), 0, 'none twice');
cmp_ok(scalar(() = $out =~ /^open$/mg), '>=', 2, 'the client opened the stream again after the drop');
my ($last_id) = $out =~ /^part 100 (\S+)$/m;
is($last_id, '0-100', 'its last event id is the whole cursor');
my ($end) = $out =~ /^end (.*)$/m;
like($end, qr/^\{"size":\d+,"sha256":"[0-9a-f]{64}"\}$/, 'the end event carries size and SHA-256');
$node->stop;
done_testing();
