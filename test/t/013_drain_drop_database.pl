# DROP DATABASE and DROP EXTENSION while the drain workers write: neither is
# blocked; the workers say once each that the extension is missing, keep
# running, give their deliveries back to the broker and, after CREATE
# EXTENSION, store every part the publisher sent (those stored before the
# drop are kept aside by a trigger and put back).  The publisher reads its
# messages from this script, which holds the last fifth back until the
# extension is gone: the drop lands mid-stream however fast the machine is.
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Temp qw(tempdir);

my ($url, $root) = need_env('BUILDLOG_AMQP_URL', 'BUILDLOG_ROOT');
my $node = buildlog_node('drain_drop', qq(
buildlog.amqp_url = '$url'
buildlog.amqp_queues = 'tq.none'
buildlog.drain_workers = 2
buildlog.aggregate_delay = '1h'
));
my $dir = tempdir(CLEANUP => 1);
my $workers = q(select string_agg(pid::text, ',' order by pid) from pg_stat_activity
                 where backend_type = 'buildlog drain');
my $waiting = qr/LOG:  (buildlog [a-z]+(?: \d+)?): extension buildlog is not installed in database "postgres"; waiting\n/;

# the messages: parts 0..499 and a final part 500 of 20 jobs, round by
# round; each job's expected log in DIR/<job>.clean (what check_logs reads)
my ($first, $jobs, $parts) = (600000, 20, 500);
my (@lines, %log);
for my $n (0 .. $parts)
{
	for my $j ($first .. $first + $jobs - 1)
	{
		my $text = $n == $parts ? '' : "job $j part $n " . ('x' x (($j + 7 * $n) % 60)) . "\n";
		(my $json = $text) =~ s/\n/\\n/g;
		push @lines, qq({"id": $j, "number": $n, "log": "$json") . ($n == $parts ? ', "final": true' : '') . "}\n";
		$log{$j} .= $text;
	}
}
for my $j (keys %log)
{
	open(my $fh, '>:raw', "$dir/$j.clean") or die $!;
	print $fh $log{$j};
	close($fh);
}
my $held = int(@lines / 5);
my $input = join('', @lines[ 0 .. $#lines - $held ]);
my $tail = join('', @lines[ $#lines - $held + 1 .. $#lines ]);

# the parts stored before the drop outlive it here
$node->safe_psql('postgres', q(
create table keep (like buildlog.log_parts);
create function keep_part() returns trigger language plpgsql
  as 'begin insert into public.keep select new.*; return null; end';
create trigger keep_part after insert on buildlog.log_parts
  for each row execute function keep_part();
));
fresh_queues($node, 'tq.d', 0);
use_queues($node, 'tq.d');
my $pids = $node->safe_psql('postgres', $workers);
my $pub = IPC::Run::start([ "$root/tools/bin/publish", '--url', $url, '--queue', 'tq.d', '--stdin',
	'--rate', 2000, '--confirm' ], '<', \$input, '>', \my $pout, '2>', \my $perr);
# feed the publisher what it has room for (it reads at its rate)
my $feed = sub { $pub->pump_nb if $pub->pumpable };
my $mark;

subtest 'DROP DATABASE and DROP EXTENSION are not blocked by writing workers' => sub {
	ok(wait_until('the workers to write', sub {
				$feed->();
				my $n = $node->safe_psql('postgres', 'select count(*) from keep');
				($n > 0, $n);
			}), 'the workers are writing') or BAIL_OUT('the workers store nothing');
	$node->safe_psql('postgres', 'create database scratch');
	# a bound on a hang (a worker that never absorbs DROP DATABASE's barrier
	# or holds its locks), not a speed
	psql_within($node, 'drop database scratch', 'DROP DATABASE with the workers writing', during => $feed);

	$mark = log_mark($node);
	psql_within($node, 'drop extension buildlog', 'DROP EXTENSION with the workers writing', during => $feed);
	ok(length($tail) > 0 && $pub->pumpable, 'the publisher was still sending when the extension was dropped');
};

subtest 'without the extension: said once, still running, deliveries back in the queue' => sub {
	ok(wait_until('drain 1, drain 2, scheduler and archive to notice', sub {
				$feed->();
				my %who = map { $_ => 1 } log_since($node, $mark) =~ /$waiting/g;
				(keys %who == 4, join(',', sort keys %who));
			}), 'every worker noticed the missing extension');
	$input .= $tail;    # the rest, sent while the extension is missing
	ok($pub->finish, 'the publisher sent everything') or diag($perr);
	like($pout, qr/^published ${\ scalar(@lines)} messages/m, 'publisher: ' . scalar(@lines) . ' messages');
	ok(wait_until('the drain workers to leave the broker', sub {
				my $c = rabbitmqctl('list_connections', '-q', '--no-table-headers', 'name');
				($c !~ /\S/, $c);
			}), 'no worker holds a broker connection (its unacked deliveries returned)');
	my $depth = queue_depth('tq.d');
	cmp_ok($depth, '>', 0, "the broker holds the $depth deliveries not stored");
	is($node->safe_psql('postgres', $workers), $pids, 'the same two drain workers run (no crash, no restart)');
};

subtest 'after CREATE EXTENSION every part sent is stored exactly' => sub {
	$node->safe_psql('postgres', q(
create extension buildlog;
insert into buildlog.log_parts select * from keep;
));
	wait_query($node, 'select count(*) || bool_and(connected)::text from buildlog.drain_stats',
		'2true', 'both drain workers reconnect by themselves after CREATE EXTENSION');
	wait_parts($node, $first, $jobs, $jobs * ($parts + 1), 'drop extension');
	check_logs($node, $dir, $first, $jobs, 'drop extension');
	ok(wait_until('the queue drained', sub { my $d = queue_depth('tq.d'); ($d eq '0', $d) }),
		'nothing left in the queue');
	my %said;
	$said{$_}++ for log_since($node, $mark) =~ /$waiting/g;
	is(join(',', map { "$_=$said{$_}" } sort keys %said),
		'buildlog archive 1=1,buildlog drain 1=1,buildlog drain 2=1,buildlog scheduler=1',
		'each worker said exactly once that the extension was missing');
	is($node->safe_psql('postgres', $workers), $pids, 'still the same two drain workers');
};

done_testing();
