# declare_queues() is idempotent (called twice: the same names, no error,
# the queues keep their messages, the exchange keeps one binding per shard)
# and says 08006 with a hint, and without the password, when the broker is
# unreachable or refuses the login.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BuildlogTest;

my ($url, $root) = need_env('BUILDLOG_AMQP_URL', 'BUILDLOG_ROOT');
my ($hostport) = $url =~ m{@([^/]+)} or die "no host:port in $url";
my $node = buildlog_node('declare', qq(
buildlog.amqp_url = '$url'
buildlog.drain_workers = 0
));
# names of our own: exchanges cannot be deleted with the tools at hand
my ($queue, $shard, $exchange) = map { "$_.$$" } qw(tq.decl tq.decls tq.declx);

# broker_ctl(ARGS...): its output, without table headers
sub broker_ctl
{
	my ($out) = run_command([ "$root/script/stack", 'rabbitmqctl', '-q', @_ ]);
	return $out;
}
# ours(LINES): the lines about our names, sorted
sub ours { return join("\n", sort grep { /\.\Q$$\E/ } split /\n/, $_[0]); }
# bindings(): our exchange's bindings (destination, routing key)
sub bindings
{
	my $all = broker_ctl('list_bindings', '--no-table-headers', 'source_name', 'destination_name', 'routing_key');
	return join("\n", grep { /^\Q$exchange\E\t/ } split /\n/, ours($all));
}
sub queues { return ours(broker_ctl('list_queues', '--no-table-headers', 'name', 'durable', 'messages')); }

# ---- one queue, declared twice, keeps its messages
is($node->safe_psql('postgres', "select * from buildlog.declare_queues('$queue')"), $queue,
	'declare_queues returns the queue');
publish('--queue', $queue, '--jobs', 1, '--parts', 5, '--no-final');
# the broker counts a message once its queue process took it
ok(wait_until('the queue to count the 5 messages', sub { my $q = queues(); ($q eq "$queue\ttrue\t5", $q) }),
	'a durable queue holding the 5 messages published');
my ($rc, $out, $err) = $node->psql('postgres', "select * from buildlog.declare_queues('$queue')");
is("$rc|$out|$err", "0|$queue|", 'declared again: the same name, no error, no warning');
is(queues(), "$queue\ttrue\t5", 'the queue still holds its 5 messages');

# ---- sharded, declared twice: the same exchange, queues and bindings
my $names = join(',', map { "$shard.$_" } 1 .. 3);
my $declare = "select string_agg(queue_name, ',') from buildlog.declare_queues('$shard', 3, '$exchange')";
is($node->safe_psql('postgres', $declare), $names, 'declare_queues returns the 3 shard queues');
publish('--exchange', $exchange, '--jobs', 30, '--parts', 1, '--no-final');
my $before;
my $total = 0;
ok(wait_until('the shard queues to count the 30 messages', sub {
			$before = queues();
			$total = 0;
			$total += $_ for $before =~ /^\Q$shard\E\.\d\ttrue\t(\d+)$/mg;
			($total == 30, $before);
		}), 'the 30 messages routed through the exchange are all there');
my $bindings = join("\n", map { "$exchange\t$shard.$_\t1" } 1 .. 3);
is(bindings(), $bindings, 'the exchange is bound to each shard queue once, with weight 1');
($rc, $out, $err) = $node->psql('postgres', $declare);
is("$rc|$out|$err", "0|$names|", 'declared again: the same names, no error');
is(queues(), $before, 'every shard queue keeps its messages');
is(bindings(), $bindings, 'still one binding per shard queue');
is(ours(broker_ctl('list_exchanges', '--no-table-headers', 'name', 'type', 'durable')),
	"$exchange\tx-modulus-hash\ttrue", 'one durable x-modulus-hash exchange, as travis-worker declares it');

# ---- an exchange that exists with another type keeps it (declared by an
# older buildlog as x-consistent-hash: the binding key "1" is the weight)
my ($mgmt) = need_env('BUILDLOG_RABBITMQ_MGMT');
my $old = "tq.declc.$$";
my ($st) = http_request('-u', 'guest:guest', '-X', 'PUT', '-H', 'Content-Type: application/json',
	'--data', '{"type":"x-consistent-hash","durable":true}', "$mgmt/api/exchanges/%2F/$old");
like($st, qr/^20[14]$/, 'an x-consistent-hash exchange made through the management API');
is($node->safe_psql('postgres', "select string_agg(queue_name, ',') from buildlog.declare_queues('tq.declcs.$$', 2, '$old')"),
	"tq.declcs.$$.1,tq.declcs.$$.2", 'declare_queues on it: its 2 shard queues');
is(join("\n", grep { /^\Q$old\E\t/ } split /\n/, ours(broker_ctl('list_exchanges', '--no-table-headers', 'name', 'type', 'durable'))),
	"$old\tx-consistent-hash\ttrue", 'the exchange kept its type');
is(join("\n", grep { /^\Q$old\E\t/ } split /\n/, ours(broker_ctl('list_bindings', '--no-table-headers', 'source_name', 'destination_name', 'routing_key'))),
	"$old\ttq.declcs.$$.1\t1\n$old\ttq.declcs.$$.2\t1", 'each shard queue bound with weight 1');

# ---- the broker unreachable, or refusing the login: 08006
my $secret = 'pw025-not-in-errors';
for my $case ([ 'port closed', "127.0.0.1:1", qr{could not connect to 127\.0\.0\.1:1/: .+} ],
	[ 'login refused', $hostport, qr{could not log in to \Q$hostport\E/: connection closed by broker: 403 ACCESS_REFUSED.*} ])
{
	my ($what, $where, $detail) = @$case;
	$node->safe_psql('postgres', "alter system set buildlog.amqp_url = 'amqp://guest:$secret\@$where'; select pg_reload_conf()");
	wait_query($node, 'show buildlog.amqp_url', "amqp://guest:***\@$where", "$what: URL reloaded");
	($rc, $out, $err) = $node->psql('postgres', "select buildlog.declare_queues('$queue')",
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($err, qr{^psql:\S+ ERROR:  08006: could not declare the buildlog queues\nDETAIL:  $detail \(buildlog\.amqp_url is amqp://guest:\*\*\*\@\Q$where\E\)\nHINT:  Check that RabbitMQ runs and buildlog\.amqp_url is right}m,
		"$what: 08006, what failed, the URL masked, a hint");
	unlike($err, qr/\Q$secret\E/, "$what: the error holds no password");
	($rc, $out, $err) = $node->psql('postgres', qq(
do \$\$ begin perform buildlog.declare_queues('$queue');
exception when connection_failure then raise notice 'caught %', sqlstate; end \$\$;));
	like("$rc|$err", qr/^0\|.*NOTICE:  caught 08006$/s, "$what: caught as connection_failure");
}

system('amqp-delete-queue', "--url=$url", '-q', $_) for ($queue, split /,/, $names);
$node->stop;
done_testing();
