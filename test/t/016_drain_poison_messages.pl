# Poison deliveries: a delivery that cannot be written (a trigger raises for
# it) is kept aside in rejected_parts with its SQLSTATE, error and body while
# every other delivery of its batch is stored.  When storing the rejected row
# fails too, the deliveries are held unacked and retried with back-off, the
# worker serving its 2 s heartbeat meanwhile (same connection, no good
# delivery turned into a rejected row); once the fault is gone everything is
# stored and the poison delivery is never returned to the broker.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use BuildlogTest;

need_env('BUILDLOG_AMQP_URL', 'BUILDLOG_ROOT');
my $node = drain_node('drain_poison', q(
buildlog.amqp_heartbeat = '2s'
buildlog.aggregate_delay = '1s'
));

# ---- a poison delivery in a batch is kept aside with its error
$node->safe_psql('postgres', q(
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
{
	fresh_queues($node, 'tq.p', 0);
	use_queues($node, 'tq.none', park => 1);    # parked: one batch holds everything
	publish_input(qq({"id": 920999, "number": 0, "log": "POISON"}\n), '--queue', 'tq.p', '--stdin');
	publish_input('', '--queue', 'tq.p', '--jobs', 20, '--first-job', 920000, '--parts', 20);
	use_queues($node, 'tq.p');
	wait_parts($node, 920000, 20, 20 * 21, 'good parts behind a poison delivery');
	wait_query($node, q(select count(*) from buildlog.rejected_parts where queue = 'tq.p'), '1',
		'the poison delivery is in rejected_parts');
	is($node->safe_psql('postgres',
		q(select reason || ' | ' || convert_from(body, 'UTF8') from buildlog.rejected_parts where queue = 'tq.p')),
		'could not be written: P0001: poisoned part of job 920999 | {"id": 920999, "number": 0, "log": "POISON"}',
		'its reason is the SQLSTATE and the error; its body is kept');
	# the counters follow the commit of the rejected row
	wait_query($node, 'select error_rejected, split_retries > 0 from buildlog.drain_stats',
		'1|t', 'drain_stats: one delivery rejected because of an error, after split retries');
}

# ---- storing the rejected row fails too: the deliveries are held unacked,
# the worker backs off without going deaf (2 s heartbeat), then stores
# everything once the fault is gone
$node->safe_psql('postgres', q(
create function public.refuse() returns trigger language plpgsql as $$
begin
  raise exception 'rejected_parts unavailable' using errcode = 'P0001';
end $$;
create trigger refuse before insert on buildlog.rejected_parts
  for each row execute function public.refuse();
));
{
	fresh_queues($node, 'tq.b', 0);
	use_queues($node, 'tq.none', park => 1);
	publish_input(qq({"id": 930999, "number": 0, "log": "POISON"}\n), '--queue', 'tq.b', '--stdin');
	publish_input('', '--queue', 'tq.b', '--jobs', 10, '--first-job', 930000, '--parts', 20);
	use_queues($node, 'tq.b');
	# use_queues() waited until the reconnect was counted: a baseline
	my $reconnects = drain_stat($node, 'reconnects');
	my $t0 = time;
	# back-off 0.5, 1, 2, 4, 8 s: 5 failed rounds take 7.5 s, the last wait
	# alone is four heartbeats
	wait_query($node, q(select count(*) > 0 from buildlog.drain_stats
		   where last_error like '%could not store a failed delivery in rejected_parts either%'
		     and failed_batches >= 20), 't', 'the rejected store keeps failing');
	wait_query($node, "select extract(epoch from now()) - $t0 > 13", 't', 'waited 13 s into the back-off');
	is(drain_stat($node, "reconnects = $reconnects and connected"),
		't', 'no reconnect during 13 s of back-off with a 2 s heartbeat');
	is($node->safe_psql('postgres',
		q(select count(*) from buildlog.rejected_parts where queue = 'tq.b')), '0',
		'no good delivery was turned into a rejected row');
	$node->safe_psql('postgres', 'drop trigger refuse on buildlog.rejected_parts');
	wait_parts($node, 930000, 10, 10 * 21, 'after the fault');
	wait_query($node,
		q(select count(*) || ' ' || bool_and(not redelivered) from buildlog.rejected_parts where queue = 'tq.b'),
		'1 true', 'the poison delivery is stored, never returned to the broker');
	is(drain_stat($node, "reconnects = $reconnects"), 't', 'still the same connection');
}

done_testing();
