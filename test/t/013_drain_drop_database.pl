# DROP DATABASE and DROP EXTENSION while the drain workers write: neither is
# blocked; the workers say once each that the extension is missing, keep
# running, give their deliveries back to the broker and, after CREATE
# EXTENSION, store every part the publisher sent (those stored before the
# drop are kept aside by a trigger and put back).
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Utils;
use Test::More;
use File::Temp qw(tempdir);
use Time::HiRes qw(time);

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
my $pub = IPC::Run::start([ "$root/bench/bin/publish", '--url', $url, '--queue', 'tq.d',
	'--jobs', 20, '--first-job', 600000, '--parts', 500, '--rate', 2000, '--confirm',
	'--expect-dir', $dir ], '>', \my $pout, '2>', \my $perr);
my $mark;

subtest 'DROP DATABASE and DROP EXTENSION are not blocked by writing workers' => sub {
	ok(wait_until('the workers to write', sub {
				my $n = $node->safe_psql('postgres', 'select count(*) from keep');
				($n > 0, $n);
			}), 'the workers are writing') or BAIL_OUT('the workers store nothing');
	$node->safe_psql('postgres', 'create database scratch');
	my $t0 = time;
	$node->safe_psql('postgres', 'drop database scratch');
	my $elapsed = time - $t0;
	cmp_ok($elapsed, '<', 5, sprintf('DROP DATABASE took %.2f s with the workers writing', $elapsed));

	$mark = log_mark($node);
	$t0 = time;
	$node->safe_psql('postgres', 'drop extension buildlog');
	$elapsed = time - $t0;
	cmp_ok($elapsed, '<', 5, sprintf('DROP EXTENSION took %.2f s with the workers writing', $elapsed));
	ok($pub->pumpable, 'the publisher was still sending when the extension was dropped');
};

subtest 'without the extension: said once, still running, deliveries back in the queue' => sub {
	ok(wait_until('drain 1, drain 2, scheduler and archive to notice', sub {
				my %who = map { $_ => 1 } log_since($node, $mark) =~ /$waiting/g;
				(keys %who == 4, join(',', sort keys %who));
			}), 'every worker noticed the missing extension');
	ok($pub->finish, 'the publisher sent everything') or diag($perr);
	wait_until('the drain workers to leave the broker', sub {
			my $c = rabbitmqctl('list_connections', '-q', '--no-table-headers', 'name');
			($c !~ /\S/, $c);
		});
	is(rabbitmqctl('list_connections', '-q', '--no-table-headers', 'name'), '',
		'no worker holds a broker connection (its unacked deliveries returned)');
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
	wait_parts($node, 600000, 20, 20 * 501, 'drop extension');
	check_logs($node, $dir, 600000, 20, 'drop extension');
	wait_until('the queue drained', sub { my $d = queue_depth('tq.d'); ($d eq '0', $d) });
	is(queue_depth('tq.d'), '0', 'nothing left in the queue');
	my %said;
	$said{$_}++ for log_since($node, $mark) =~ /$waiting/g;
	is(join(',', map { "$_=$said{$_}" } sort keys %said),
		'buildlog archive 1=1,buildlog drain 1=1,buildlog drain 2=1,buildlog scheduler=1',
		'each worker said exactly once that the extension was missing');
	is($node->safe_psql('postgres', $workers), $pids, 'still the same two drain workers');
};

done_testing();
