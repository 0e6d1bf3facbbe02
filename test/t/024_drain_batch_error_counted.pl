# A batch that fails with an ERROR is counted and never acked unwritten:
# an ERROR about the system (here disk_full, raised by a trigger that counts
# its calls in a sequence) keeps the deliveries unacked, retries them after
# 0.5 s, 1 s, 2 s ..., counts each failed attempt in failed_batches, and
# stores everything exactly once when the fault is gone; an ERROR about the
# data (a poison part) splits the batch in halves with exact counters.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BuildlogTest;

my ($url, $root) = need_env('BUILDLOG_AMQP_URL', 'BUILDLOG_ROOT');
my $queue = 'tq.batcherr';
system('amqp-delete-queue', "--url=$url", '-q', $queue);
my $node = buildlog_node('batcherr', qq(
buildlog.amqp_url = '$url'
buildlog.amqp_queues = '$queue'
buildlog.drain_workers = 1
buildlog.flush_ms = '1s'
));
$node->safe_psql('postgres', "select buildlog.declare_queues('$queue', queue_type => 'classic')");  # counts read at once
wait_query($node, 'select connected from buildlog.drain_stats', 't', 'the worker consumes');

# depth(): "ready unacknowledged" messages of the queue, as the broker says
sub depth { return queue_counts($queue); }
my @counters = qw(failed_batches split_retries error_rejected rejected batches deliveries);
# counters(): the worker's counters, by name
sub counters
{
	my %c;
	@c{@counters} = split /\|/, $node->safe_psql('postgres',
		'select ' . join(', ', @counters) . ' from buildlog.drain_stats');
	return \%c;
}

# ---- a systemic ERROR: 30 deliveries held unacked, retried with back-off
$node->safe_psql('postgres', q(
create sequence public.attempts;
create function public.no_space() returns trigger language plpgsql as $$
begin
  perform nextval('public.attempts');    -- not rolled back with the batch
  raise exception 'no space left for log_parts (simulated)' using errcode = 'disk_full';
end $$;
create trigger no_space before insert on buildlog.log_parts
  for each row execute function public.no_space();
create function public.attempt_times(upto int, seconds float8) returns setof float8
language plpgsql as $$
declare
  t0 timestamptz := clock_timestamp();
  seen bigint := 0;
  n bigint;
begin
  -- sequences are not transactional: each attempt shows at once
  while seen < upto and clock_timestamp() < t0 + seconds * interval '1 s' loop
    select case when is_called then last_value else 0 end into n from public.attempts;
    if n > seen then
      seen := n;
      return next extract(epoch from clock_timestamp() - t0);
    end if;
    perform pg_sleep(0.01);
  end loop;
end $$;
));
my $before = counters();
my ($times, $err) = ('', '');
my $sampler = IPC::Run::start([ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c',
	'select * from public.attempt_times(4, 20)' ], '>', \$times, '2>', \$err);
# the sampler must be watching before the first attempt, or it takes that
# attempt's time for its own start
wait_query($node, q(select count(*) from pg_stat_activity
 where query = 'select * from public.attempt_times(4, 20)' and state = 'active'), '1',
	'the sampler watches the attempts');
publish('--queue', $queue, '--jobs', 1, '--first-job', 240000, '--parts', 30, '--no-final');
$sampler->finish;
my @at = split /\n/, $times;
my @gaps = map { sprintf('%.2f', $at[$_] - $at[ $_ - 1 ]) } 1 .. $#at;
note("attempts 1 .. 4 of the failing batch: gaps @gaps s");
is(scalar(@at), 4, 'the failing batch was attempted 4 times within 20 s') or diag($err);
# never sooner than the back-off (a loaded machine only makes a gap
# longer); and no later than half a step more (at least 0.5 s), which still
# tells each step from the next (a back-off starting at 1 s, or not doubling)
my @want = (0.5, 1, 2);
my @off = grep {
	my $slack = $want[$_] / 2 < 0.5 ? 0.5 : $want[$_] / 2;
	!defined $gaps[$_] || $gaps[$_] < $want[$_] - 0.05 || $gaps[$_] >= $want[$_] + $slack
} 0 .. 2;
is(join(' ', map { "gap $_: " . ($gaps[$_] // 'none') . " s, not $want[$_] s" } @off), '',
	'retried after 0.5 s, 1 s, 2 s: the documented back-off');
is(depth(), '0 30', 'the broker holds all 30 deliveries as unacked: none acked, none returned');
# an attempt draws its number inside the batch and is counted after the
# rollback: wait until the count caught up (the next retry is 4 s later)
my $attempts;
ok(wait_until('failed_batches to count every attempt made', sub {
			my ($failed, $drawn) = split /\|/, $node->safe_psql('postgres',
				"select failed_batches - $before->{failed_batches}, (select last_value from public.attempts)"
				  . ' from buildlog.drain_stats');
			$attempts = $drawn;
			($failed == $drawn, "$failed counted, $drawn attempts");
		}), 'failed_batches counts every failed attempt');
my $now = counters();
is(join(' ', map { $now->{$_} - $before->{$_} } qw(split_retries error_rejected rejected batches deliveries)),
	'0 0 0 0 0', 'not split, nothing rejected, nothing committed or counted as delivered');
like($node->safe_psql('postgres', 'select last_error from buildlog.drain_stats'),
	qr/^\d+ deliveries not written, kept for a retry: 53100: no space left for log_parts \(simulated\)$/,
	'last_error names the SQLSTATE and the error');

$node->safe_psql('postgres', 'drop trigger no_space on buildlog.log_parts');
wait_query($node, q(select count(*) || ' ' || count(distinct number) from buildlog.log_parts
                     where job_id = 240000), '30 30', 'after the fault: the 30 parts stored once each');
ok(wait_until('an empty queue', sub { my $d = depth(); return ($d eq '0 0', $d); }),
	'and acked: the queue is empty');
$now = counters();
$attempts = $node->safe_psql('postgres', 'select last_value from public.attempts');
is($now->{failed_batches} - $before->{failed_batches}, $attempts,
	"in all: $attempts failed attempts, each counted, none after the fault");
is($node->safe_psql('postgres', "select count(*) from buildlog.rejected_parts where queue = '$queue'"),
	'0', 'no good delivery became a rejected row');

# ---- an ERROR about the data: a batch of 8 with a poison part first is
# written as [0,8) [0,4) [0,2) [0,1) (failed, the last then rejected), [1,2)
# [2,4) [4,8)
$node->safe_psql('postgres', q(
alter system set buildlog.batch_size = 8;
alter system set buildlog.flush_ms = '10s';
select pg_reload_conf();
create function public.poison() returns trigger language plpgsql as $$
begin
  if new.content = 'POISON' then
    raise exception 'poisoned part of job %', new.job_id using errcode = 'P0001';
  end if;
  return new;
end $$;
create trigger poison before insert on buildlog.log_parts
  for each row execute function public.poison();
));
wait_query($node, 'show buildlog.batch_size', '8', 'batch_size 8 reloaded');
wait_query($node, 'show buildlog.flush_ms', '10s', 'flush_ms 10s reloaded');
$before = counters();
my $bodies = join('', map { qq({"id": 240001, "number": $_, "log": ") . ($_ ? "part $_" : 'POISON') . qq("}\n) } 0 .. 7);
IPC::Run::run([ "$root/tools/bin/publish", '--url', $url, '--queue', $queue, '--stdin' ],
	'<', \$bodies, '>', \my $out, '2>', \$err) or die "publish failed: $err";
wait_query($node, "select deliveries - $before->{deliveries} from buildlog.drain_stats", 8,
	'the batch of 8 was settled');
# a piece's counters are added one after the other, after its commit
wait_query($node, 'select ' . join(" || ' ' || ", map { "'$_ ' || $_ - $before->{$_}" } @counters)
	  . ' from buildlog.drain_stats',
	'failed_batches 4 split_retries 3 error_rejected 1 rejected 1 batches 4 deliveries 8',
	'counted exactly: 4 failed pieces, 3 splits, 1 rejected, 4 commits');
is($node->safe_psql('postgres', q(select count(*) from buildlog.log_parts where job_id = 240001)),
	'7', 'the 7 good parts are stored');

$node->stop;
done_testing();
