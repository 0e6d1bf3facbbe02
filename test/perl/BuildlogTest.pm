# Shared helpers of the TAP files (test/t/*.pl): a node with the extension
# preloaded and created, waits on a condition that fail fast and say what they
# waited for, server-log reads from a mark, the publisher and the broker's
# command-line tools.  script/test puts this directory on PERL5LIB.
package BuildlogTest;

use strict;
use warnings;
use IO::Select;
use IO::Socket::INET;
use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use IPC::Run;

our @EXPORT = qw(buildlog_node wait_until wait_query log_mark log_since
  log_count publish amqp_url need_env install_maintenance_watch);

# The default of every wait: long enough for a loaded 2-core machine, far
# shorter than PostgreSQL::Test::Utils' 180 s, so a broken promise fails fast.
our $WAIT = $ENV{BUILDLOG_TEST_WAIT} // 60;

# need_env(NAME...): skip the whole file unless the variables are set (script/test
# turns a skipped file into a failure, so a missing stack never passes).
sub need_env
{
	for my $name (@_)
	{
		plan skip_all => "$name not set" unless $ENV{$name};
	}
	return @ENV{@_};
}

# buildlog_node(NAME, CONF): a started node with buildlog preloaded for the
# database postgres, CONF appended, pg_partman and buildlog created.
sub buildlog_node
{
	my ($name, $conf, %opt) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%{ $opt{init} // {} });
	$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'buildlog'
buildlog.database = 'postgres'
max_worker_processes = 16
log_min_messages = info
buildlog.http_listen = ''
) . ($conf // ''));
	$node->start;
	$node->safe_psql('postgres', q(
create schema partman;
create extension pg_partman schema partman;
create extension buildlog;
)) unless $opt{no_extension};
	return $node;
}

# wait_until(WHAT, CODE, timeout => S): poll CODE every 0.1 s until it returns
# a true value; true on success, else a diag naming WHAT and the last value.
sub wait_until
{
	my ($what, $code, %opt) = @_;
	my $timeout = $opt{timeout} // $WAIT;
	my $deadline = time + $timeout;
	my $last;
	while (1)
	{
		my @got = $code->();
		$last = $got[-1];
		return $got[0] if $got[0];
		last if time > $deadline;
		sleep($opt{interval} // 0.1);
	}
	diag(sprintf("waited %d s for %s; last seen: %s",
		$timeout, $what, defined $last ? "'$last'" : 'undef'));
	return 0;
}

# wait_query(NODE, SQL, EXPECTED, WHAT, timeout => S): ok() once SQL returns
# EXPECTED; fails after the timeout showing the last result.
sub wait_query
{
	my ($node, $sql, $expected, $what, %opt) = @_;
	my $ok = wait_until("$what ($expected)", sub {
			# a server restarting after a crash may refuse psql so early that
			# writing its input fails (EPIPE): that is "not yet" too
			my ($rc, $out, $err) = eval { $node->psql($opt{db} // 'postgres', $sql) };
			return (0, "error: $@") unless defined $rc;
			my $got = $rc == 0 ? $out : "error: $err";
			return ($got eq $expected, $got);
		}, %opt);
	return ok($ok, $what);
}

# log_mark(NODE): the server log's current length, to read only what follows.
sub log_mark
{
	my ($node) = @_;
	return -s $node->logfile // 0;
}

# log_since(NODE, MARK): the server log written after MARK.
sub log_since
{
	my ($node, $mark) = @_;
	return slurp_file($node->logfile, $mark // 0);
}

# log_count(NODE, MARK, REGEX): how many lines after MARK match REGEX.
sub log_count
{
	my ($node, $mark, $re) = @_;
	return scalar(() = log_since($node, $mark) =~ /$re/mg);
}

# amqp_url(): the broker URL script/test exported (the file skips without it).
sub amqp_url
{
	my ($url) = need_env('BUILDLOG_AMQP_URL');
	return $url;
}

# tool(NAME): the path of a load tool: tools/bin/NAME (built by script/test),
# or tools/NAME for a script (fleet).
push @EXPORT, qw(tool publish_input);
sub tool
{
	my ($name) = @_;
	my ($root) = need_env('BUILDLOG_ROOT');
	return -f "$root/tools/$name" ? "$root/tools/$name" : "$root/tools/bin/$name";
}

# publish(ARGS...): run tools/bin/publish against the test broker; passes when
# it reports what it published, and returns its output.
sub publish
{
	my @args = @_;
	my ($out, $err) = run_command([ tool('publish'), '--url', amqp_url(), @args ]);
	like($out, qr/^published \d+ messages/m, 'publisher: ' . ((split /\n/, $out)[-1] // ''))
	  or diag($err);
	return $out;
}

# publish_input(INPUT, ARGS...): run tools/bin/publish against the test broker
# with INPUT on its standard input (--stdin: one message body a line; '' when
# it generates the messages), no test of its own; dies when it fails, returns
# its output.
sub publish_input
{
	my ($in, @args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ tool('publish'), '--url', amqp_url(), @args ], '<', \$in, '>', \$out, '2>', \$err)
	  or die "publish failed: $err";
	return $out;
}


# ---- helpers of the drain files (t/010..029), appended

use Digest::MD5 qw(md5_hex);
push @EXPORT, qw(rabbitmqctl queue_depth drain_workers use_queues fresh_queues
  wait_parts check_logs published drain_node wait_parked drain_stat stored_parts_sql);

# rabbitmqctl(ARGS...): script/stack's rabbitmqctl against the test broker
# (the STACK_* variables script/test exported); returns its output, dies on failure.
sub rabbitmqctl
{
	my ($root) = need_env('BUILDLOG_ROOT');
	my ($out, $err);
	IPC::Run::run([ "$root/script/stack", 'rabbitmqctl', @_ ], '>', \$out, '2>', \$err)
	  or die "rabbitmqctl @_ failed: $err";
	return $out;
}

# queue_depth(QUEUE): the broker's count of messages (ready + unacked) in QUEUE.
sub queue_depth
{
	my ($queue) = @_;
	my %depth = map { split /\t/ } grep { /\t/ }
	  split /\n/, rabbitmqctl('list_queues', '-q', '--no-table-headers', 'name', 'messages');
	return $depth{$queue};
}

# drain_node(NAME, CONF): buildlog_node() with one drain worker (CONF may ask
# for more) parked on tq.none, a queue that does not exist, CONF appended;
# returns once every worker has said it cannot consume tq.none, so
# use_queues() can point them elsewhere.
sub drain_node
{
	my ($name, $conf) = @_;
	my $node = buildlog_node($name, qq(
buildlog.amqp_url = '${\ amqp_url()}'
buildlog.amqp_queues = 'tq.none'
buildlog.drain_workers = 1
) . ($conf // ''));
	wait_parked($node, 0);
	return $node;
}

# wait_parked(NODE, MARK): wait (no test of its own) until every drain worker
# runs and has logged after MARK that it cannot consume tq.none: after a
# start or restart whose amqp_queues is tq.none, before use_queues().  Dies
# after the default wait.
sub wait_parked
{
	my ($node, $mark) = @_;
	my $n = $node->safe_psql('postgres', 'show buildlog.drain_workers');
	wait_until("$n drain workers parked on tq.none", sub {
			my $c = log_count($node, $mark, qr/LOG:  buildlog drain \d+: could not consume queue "tq\.none"/);
			($c >= $n && drain_workers($node) == $n, "$c log lines");
		}) or die "the drain workers did not start (parked on tq.none)";
}

# drain_stat(NODE, COLUMN): COLUMN of the one drain worker's drain_stats row.
sub drain_stat
{
	my ($node, $column) = @_;
	return $node->safe_psql('postgres', "select $column from buildlog.drain_stats");
}

# stored_parts_sql(FIRST, LAST): a query counting the distinct stored parts
# (pending or aggregated) of jobs FIRST..LAST.
sub stored_parts_sql
{
	my ($first, $last) = @_;
	return qq(
select count(*) from (select job_id, number from buildlog.log_parts
                       where job_id between $first and $last
                      union
                      select job_id, unnest(part_numbers) from buildlog.logs
                       where job_id between $first and $last) p);
}

# drain_workers(NODE): how many drain workers run (rows of drain_stats).
sub drain_workers
{
	my ($node) = @_;
	return $node->safe_psql('postgres', 'select count(*) from buildlog.drain_stats');
}

# use_queues(NODE, QUEUES, park => 1): point the drain workers at QUEUES the
# documented way (amqp_queues, reload, restart_workers()), then wait until the
# reconnect settled: every worker logged "consuming" after the call, is
# connected and has counted its reconnect, or with park (a queue that does not
# exist) every worker logged that it cannot consume it.
sub use_queues
{
	my ($node, $queues, %opt) = @_;
	my $n = drain_workers($node);
	my $mark = log_mark($node);
	my $reconnects = $node->safe_psql('postgres', 'select coalesce(sum(reconnects), 0) from buildlog.drain_stats');
	$node->safe_psql('postgres', qq(
alter system set buildlog.amqp_queues = '$queues';
select pg_reload_conf();
));
	$node->safe_psql('postgres', 'select buildlog.restart_workers()');
	my $re = $opt{park}
	  ? qr/LOG:  buildlog drain \d+: could not consume queue /
	  : qr/LOG:  buildlog drain \d+: consuming /;
	my $ok = wait_until("$n drain workers reconnected to $queues",
		sub { my $c = log_count($node, $mark, $re); ($c >= $n, "$c log lines") });
	# a worker sets connected, then counts the reconnect: wait for both, so a
	# caller may read reconnects as the baseline of "no reconnect since"
	$ok &&= wait_until("drain workers connected to $queues, each reconnect counted", sub {
			my ($c, $r) = split /\|/, $node->safe_psql('postgres',
				'select count(*) filter (where connected), coalesce(sum(reconnects), 0) from buildlog.drain_stats');
			($c == $n && $r >= $reconnects + $n, "$c connected, reconnects $r (were $reconnects)");
		}) unless $opt{park};
	ok($ok, "drain workers switched to $queues" . ($opt{park} ? ' (parked)' : ''));
	return $ok;
}

# fresh_queues(NODE, QUEUE, SHARDS, EXCHANGE): delete leftovers, then declare
# the queues (and exchange) through declare_queues(); returns their names.
# Classic queues: these tests read the broker's message counts, which a
# quorum queue reports seconds late (070 and 025 cover quorum queues).
sub fresh_queues
{
	my ($node, $queue, $shards, $exchange) = @_;
	my @names = $shards ? map { "$queue.$_" } 1 .. $shards : ($queue);
	run_command([ 'amqp-delete-queue', '--url=' . amqp_url(), '-q', $_ ]) for @names;
	return $node->safe_psql('postgres',
		"select string_agg(queue_name, ',') from buildlog.declare_queues('$queue', $shards"
		  . ($exchange ? ", '$exchange'" : '') . ", queue_type => 'classic')");
}

# wait_parts(NODE, FIRST, JOBS, EXPECTED, WHAT): ok() once the jobs' distinct
# stored parts (pending or aggregated) reach EXPECTED.
sub wait_parts
{
	my ($node, $first, $jobs, $expected, $what, %opt) = @_;
	return wait_query($node, stored_parts_sql($first, $first + $jobs - 1), $expected,
		"$what: all $expected parts stored", %opt);
}

# check_logs(NODE, DIR, FIRST, JOBS, WHAT): ok() when every job's log equals
# the publisher's expected (cleaned) text DIR/<job>.clean exactly.
sub check_logs
{
	my ($node, $dir, $first, $jobs, $what) = @_;
	my $last = $first + $jobs - 1;
	my %got = map { split /\|/ } split /\n/, $node->safe_psql('postgres', qq(
select job_id || '|' || coalesce(md5(buildlog.log(job_id)), 'none')
  from generate_series($first, $last) job_id));
	my @bad;
	for my $job ($first .. $last)
	{
		open(my $fh, '<:raw', "$dir/$job.clean") or die "$dir/$job.clean: $!";
		local $/;
		my $want = md5_hex(<$fh>);
		push @bad, $job if ($got{$job} // '') ne $want;
	}
	return is(scalar(@bad), 0, "$what: every log equals its expected text exactly")
	  || diag("mismatched jobs: @bad[0 .. ($#bad < 9 ? $#bad : 9)]");
}

# published(OUTPUT): the publisher's summary as a hash: messages, good,
# duplicates, malformed, finals.
sub published
{
	my ($out) = @_;
	my @n = $out =~ /^published (\d+) messages \((\d+) good parts, (\d+) duplicates, (\d+) malformed, (\d+) finals\)/m
	  or die "no publisher summary in: $out";
	my %p;
	@p{qw(messages good duplicates malformed finals)} = @n;
	return \%p;
}


# install_maintenance_watch(NODE): creates public.watch_maintenance(release_at,
# timeout_s) in database postgres, for a session that holds a lock on
# buildlog.log_parts and watches run_maintenance() queue behind it.  It polls
# pg_locks every 5 ms and returns (episodes, writer_waits, waited_s,
# held_over): episodes counts the times a session started queueing for ACCESS
# EXCLUSIVE on log_parts (one per attempt of run_maintenance); writer_waits
# the samples in which a writer (RowExclusiveLock) was queued with that
# session among its blockers; held_over the samples in which a writer
# transaction seen queued so in an earlier episode still was (a wait that
# outlived the attempt it queued behind: none when each attempt gives up at
# its lock timeout).  It returns when the release_at-th episode starts, or (release_at
# NULL) once run_maintenance's advisory lock was held and is gone; after
# timeout_s it raises an error saying what it waited for.
sub install_maintenance_watch
{
	my ($node) = @_;
	$node->safe_psql('postgres', q{
create function public.watch_maintenance(release_at int, timeout_s float8 default 60,
                                         out episodes int, out writer_waits int, out waited_s float8,
                                         out held_over int)
language plpgsql as $$
declare
  t0 timestamptz := clock_timestamp();
  waiting boolean;
  was_waiting boolean := false;
  inside boolean;
  seen_inside boolean := false;
  queued text[];              -- the queued writers' transactions (virtualtransaction), now
  this_episode text[] := '{}';
  earlier text[] := '{}';
begin
  episodes := 0;
  writer_waits := 0;
  held_over := 0;
  loop
    waiting := exists (select from pg_locks
                        where locktype = 'relation' and relation = 'buildlog.log_parts'::regclass
                          and mode = 'AccessExclusiveLock' and not granted);
    if waiting and not was_waiting then
      episodes := episodes + 1;
      earlier := earlier || this_episode;
      this_episode := '{}';
    end if;
    was_waiting := waiting;
    if waiting then
      queued := array(select w.virtualtransaction from pg_locks w
          where w.locktype = 'relation' and w.relation = 'buildlog.log_parts'::regclass
            and w.mode = 'RowExclusiveLock' and not w.granted
            and exists (select from pg_locks m
                         where m.locktype = 'relation' and m.relation = w.relation
                           and m.mode = 'AccessExclusiveLock'
                           and m.pid = any (pg_blocking_pids(w.pid))));
      writer_waits := writer_waits + cardinality(queued);
      held_over := held_over + (select count(*) from unnest(queued) q where q = any (earlier))::int;
      this_episode := this_episode || queued;
    end if;
    inside := exists (select from pg_locks where locktype = 'advisory' and objsubid = 1 and granted);
    seen_inside := seen_inside or inside;
    exit when release_at is not null and episodes >= release_at;
    exit when release_at is null and seen_inside and not inside;
    if clock_timestamp() > t0 + timeout_s * interval '1 s' then
      raise exception 'waited % s for run_maintenance to %', timeout_s,
        case when release_at is null then 'start and end' else 'queue ' || release_at || ' times for ACCESS EXCLUSIVE on buildlog.log_parts' end
        using detail = format('%s episodes seen, inside run_maintenance: %s', episodes, seen_inside);
    end if;
    perform pg_sleep(0.005);
  end loop;
  waited_s := extract(epoch from clock_timestamp() - t0);
end $$;
});
	return;
}


# start_lock_holder(NODE, SQL...): a psql session (application_name
# lock_holder) that takes a lock on buildlog.log_parts in a transaction, runs
# SQL... and commits; passes once the lock is held and returns (handle,
# \stdout, \stderr).
push @EXPORT, 'start_lock_holder';
sub start_lock_holder
{
	my ($node, @sql) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			'psql', '-X', '-Atq', '-v', 'ON_ERROR_STOP=1', '-h', $node->host, '-p', $node->port,
			'-d', 'postgres', '-c', 'set application_name = lock_holder',
			'-c', 'begin', '-c', 'select count(*) from buildlog.log_parts',
			(map { ('-c', $_) } @sql), '-c', 'commit'
		],
		'>', \$out, '2>', \$err);
	ok(wait_until('the lock holder holding its lock on log_parts', sub {
		$node->safe_psql('postgres', q(
select count(*) from pg_locks l join pg_stat_activity a using (pid)
 where a.application_name = 'lock_holder' and l.relation = 'buildlog.log_parts'::regclass
   and l.mode = 'AccessShareLock' and l.granted)) eq '1' }),
		'a reader holds a lock on log_parts');
	return ($h, \$out, \$err);
}

# queue_counts(QUEUE): "ready unacknowledged" messages of QUEUE, as the broker says.
push @EXPORT, 'queue_counts';
sub queue_counts
{
	my ($queue) = @_;
	my $out = rabbitmqctl('list_queues', '-q', '--no-table-headers', 'name', 'messages_ready',
		'messages_unacknowledged');
	my ($ready, $unacked) = $out =~ /^\Q$queue\E\s+(\d+)\s+(\d+)$/m;
	return defined $ready ? "$ready $unacked" : "no queue in: $out";
}


# http_node(NAME, CONF): a node whose HTTP service listens on a free port
# (the drain and archive workers off), up once GET /healthz answers; returns
# (node, base URL, port).
push @EXPORT, 'http_node';
sub http_node
{
	my ($name, $conf) = @_;
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $node = buildlog_node($name, qq(
buildlog.http_listen = '127.0.0.1:$port'
buildlog.drain_workers = 0
buildlog.archive_workers = 0
) . ($conf // ''));
	my $base = "http://127.0.0.1:$port";
	ok(wait_until('the HTTP worker to listen', sub {
				my ($out) = run_command([ 'curl', '-s', "$base/healthz" ]);
				$out eq "ok" }), 'the HTTP service is up: GET /healthz answers ok');
	return ($node, $base, $port);
}


# psql_within(NODE, SQL, WHAT, timeout => S, during => CODE): ok() once SQL
# (one psql -c, in database postgres) has returned without error, within the
# timeout (the default wait: a bound on a hang, not a speed); on the timeout
# the diag shows what every session was waiting for, and the psql is ended.
# CODE (e.g. feeding a publisher) runs at every poll meanwhile.  Returns the
# output.
push @EXPORT, 'psql_within';
sub psql_within
{
	my ($node, $sql, $what, %opt) = @_;
	my ($out, $err) = ('', '');
	my $t0 = time;
	my $h = IPC::Run::start([ 'psql', '-X', '-Atq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'),
			'-c', $sql ], '>', \$out, '2>', \$err);
	my $done = wait_until("$what to return", sub {
			$opt{during}->() if $opt{during};
			$h->pump_nb;
			(!$h->pumpable, 'still running');
		},
		timeout => $opt{timeout} // $WAIT, interval => 0.02);
	if (!$done)
	{
		diag('sessions meanwhile: ' . $node->safe_psql('postgres', q(
select string_agg(format('%s pid %s: %s/%s %s', backend_type, pid, wait_event_type, wait_event, left(query, 60)), E'\n')
  from pg_stat_activity where pid <> pg_backend_pid())));
		$h->kill_kill;
		ok(0, $what);
		return $out;
	}
	my $rc = $h->finish;
	ok($rc, sprintf('%s (returned after %.2f s)', $what, time - $t0)) or diag($err);
	return $out;
}


# sse_open(URL, HEADERS...): a curl reading an event stream (at most 120 s)
# into a file of its own; returns (IPC::Run handle, file).
push @EXPORT, qw(sse_open sse_events);
my $sse_streams = 0;
my $sse_dir;
sub sse_open
{
	my ($url, @headers) = @_;
	$sse_dir //= PostgreSQL::Test::Utils::tempdir();
	my $file = "$sse_dir/stream" . $sse_streams++;
	my $h = IPC::Run::start([ 'curl', '-s', '-N', '--max-time', '120', (map { ('-H', $_) } @headers),
			'-o', $file, $url ]);
	return ($h, $file);
}

# sse_events(FILE): the complete events in a stream file so far (an event
# still being written is left for later), comments skipped: a list of
# { event, id, data }.
sub sse_events
{
	my ($file) = @_;
	return () unless -e $file;
	my $text = slurp_file($file);
	my $complete = rindex($text, "\n\n");
	$text = $complete < 0 ? '' : substr($text, 0, $complete);
	my @ev;
	for my $block (split /\n\n/, $text)
	{
		my %e;
		for my $line (split /\n/, $block)
		{
			next if $line =~ /^:/;
			my ($k, $v) = $line =~ /^(\w+): ?(.*)$/ or next;
			$e{$k} = $v;
		}
		push @ev, \%e if $e{event};
	}
	return @ev;
}


# http_request(CURL ARGS...): one request by curl (at most 30 s): (status, the
# headers as a hash of lower-case names, the body's bytes).
push @EXPORT, qw(http_request http_metric rss_anon);
my $http_dir;
sub http_request
{
	$http_dir //= PostgreSQL::Test::Utils::tempdir();
	unlink("$http_dir/head", "$http_dir/body");
	run_command([ 'curl', '-s', '-S', '--max-time', '30', '-D', "$http_dir/head", '-o', "$http_dir/body", @_ ]);
	my $head = -e "$http_dir/head" ? slurp_file("$http_dir/head") : '';
	my $body = -e "$http_dir/body" ? slurp_file("$http_dir/body") : '';
	my ($status) = $head =~ m{^HTTP/1\.[01] (\d+)};
	my %h = map { my ($k, $v) = split /:\s*/, $_, 2; (lc($k) => $v) } grep { /:/ } split /\r\n/, $head;
	return ($status // 0, \%h, $body);
}

# http_metric(BASE, NAME): the sum of a metric of GET BASE/metrics over its labels.
sub http_metric
{
	my ($base, $name) = @_;
	my (undef, undef, $m) = http_request("$base/metrics");
	my $n = 0;
	$n += $1 while $m =~ /^\Q$name\E(?:\{[^}]*\})? (\d+)$/mg;
	return $n;
}

# rss_anon(PID): the process's anonymous resident memory in kB (0 when gone).
sub rss_anon
{
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/status" or return 0;
	my ($kb) = join('', <$fh>) =~ /^RssAnon:\s+(\d+)/m;
	return $kb // 0;
}

# stream_open(PORT, JOB, TOKEN, SUFFIX, HEADER LINES...): a socket to
# 127.0.0.1:PORT with the headers of POST /jobs/JOB/stream SUFFIX sent
# (default headers: text/plain, chunked); stream_chunk(SOCKET, BYTES) sends one
# chunk; stream_answer(SOCKET): (status, headers text, body) once the answer is
# complete (at most 60 s); stream_finish(SOCKET): the last chunk, then the
# answer, and the socket closed.
push @EXPORT, qw(stream_open stream_chunk stream_answer stream_finish);
sub stream_open
{
	my ($port, $job, $token, $suffix, @headers) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp') or die $!;
	$s->autoflush(1);
	my $head = "POST /jobs/$job/stream" . ($suffix // '') . " HTTP/1.1\r\nHost: t\r\n";
	$head .= "Authorization: Bearer $token\r\n" if defined $token;
	$head .= "$_\r\n" for (@headers ? @headers : ('Content-Type: text/plain', 'Transfer-Encoding: chunked'));
	print $s "$head\r\n";
	return $s;
}
sub stream_chunk { my ($s, $bytes) = @_; print $s sprintf("%x\r\n", length $bytes), $bytes, "\r\n"; }
sub stream_answer
{
	my ($s) = @_;
	my ($buf, $sel) = ('', IO::Select->new($s));
	while ($sel->can_read(60))
	{
		last unless sysread($s, $buf, 65536, length $buf);
		last if $buf =~ /\r\n\r\n/ && $buf =~ /Content-Length: (\d+)/i && length($buf) >= $+[0] + $1 + 4;
	}
	my ($head, $body) = split /\r\n\r\n/, $buf, 2;
	return ((($head // '') =~ m{^HTTP/1\.\d (\d+)})[0] // 0, $head // '', $body // '');
}
sub stream_finish { my ($s) = @_; print $s "0\r\n\r\n"; my @a = stream_answer($s); close $s; return @a; }

# free_port_block(N): a base port with BASE .. BASE+N-1 all free on 127.0.0.1 (for
# script/cluster, whose ports are offsets from one base)
push @EXPORT, 'free_port_block';
sub free_port_block
{
	my ($n) = @_;
	for my $try (1 .. 200)
	{
		my $base = 20000 + 10 * int(rand(3000));
		my @held = map { IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $_, Listen => 1, ReuseAddr => 1) }
		  $base .. $base + $n - 1;
		my $free = !grep { !defined } @held;
		close($_) for grep { defined } @held;
		return $base if $free;
	}
	die 'no block of free ports';
}

# token_key_file(): a file holding a fresh random key for
# buildlog.http_token_key_file (in a directory of the test's own); its path.
push @EXPORT, 'token_key_file';
sub token_key_file
{
	my $path = PostgreSQL::Test::Utils::tempdir() . '/token.key';
	open(my $fh, '>', $path) or die "$path: $!";
	print $fh 'k3y-' . join('', map { sprintf('%02x', int(rand(256))) } 1 .. 24) . "\n";
	close($fh);
	chmod 0600, $path;
	return $path;
}

1;
