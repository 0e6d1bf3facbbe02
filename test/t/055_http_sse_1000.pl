# 1,000 concurrent SSE clients over 100 jobs: tools/bin/sse_watch
# opens them all, then parts are written with write_parts, out of order (each
# tenth pair swapped), one commit per round over all jobs, while a fifth of
# the clients drop their connection three times mid-stream and reconnect with
# Last-Event-ID.  Every client must get every part of its job exactly once
# (31 part events), each event id equal to the set of numbers the client
# holds, and the end event; the HTTP worker never crashes.
# Then a watched job aggregated mid-stream: its later parts (read through
# parts(), not straight from log_parts) still reach every watcher once.
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my ($root) = need_env('BUILDLOG_ROOT');
my $watch = "$root/tools/bin/sse_watch";
my ($node, $base, $port) = http_node('sse1000', q(
buildlog.aggregate_delay = '1h'
buildlog.http_max_connections = 2000
buildlog.http_max_connections_per_client = 0
buildlog.http_max_streams_per_client = 0
buildlog.http_rate_limit = 0
));
my $tmp = PostgreSQL::Test::Utils::tempdir();
my ($first, $jobs, $clients, $parts) = (1001, 100, 1000, 30);    # parts 0..29, final 30
my $pid = $node->safe_psql('postgres', q(select pid from buildlog.http_stats));
like($pid, qr/^\d+$/, "the HTTP worker runs (pid $pid)");

# write_round(NUMBER): part NUMBER (swapped within each tenth pair 3<->4) of every job, one commit
my $last = $first + $jobs - 1;
sub round_sql
{
	my ($from, $to) = @_;
	return qq{
do \$\$
begin
  for i in $from..$to loop
    perform buildlog.write_parts(array_agg(j), array_agg(n), array_agg(c), array_agg(f))
       from (select j, n, case when n = $parts then '' else 'job ' || j || ' part ' || n || E'\\n' end c, n = $parts f
               from generate_series($first, $last) j,
                    lateral (select case when i % 10 = 3 then i + 1 when i % 10 = 4 then i - 1 else i end n) x) w;
    commit;
    perform pg_sleep(0.03);
  end loop;
end \$\$};
}

# a backlog before anyone watches: parts 0..4
$node->safe_psql('postgres', round_sql(0, 4));

my ($out, $err) = ('', '');
my $ready = "$tmp/ready";
my $w = IPC::Run::start([ $watch, '--port', $port, '--clients', $clients, '--jobs', $jobs, '--first-job', $first,
		'--expect', $parts + 1, '--timeout', 50, '--drop-fraction', '0.2', '--drops', 3, '--drop-after', 8,
		'--ready-file', $ready ], '>', \$out, '2>', \$err);
# (sse_watch gives up by itself after its --timeout: stop waiting then)
ok(wait_until('all 1000 clients answered', sub { $w->pump_nb if $w->pumpable; (-e $ready || !$w->pumpable, 'not yet') })
	  && -e $ready, 'all 1000 streams open')
  or diag("$out\n$err");
is($node->safe_psql('postgres', 'select streams >= 1000 from buildlog.http_stats'), 't',
	'the worker holds 1000 event streams') if -e $ready;

# live: parts 5..29 (out of order) then the final part 30, one commit per round over all jobs
$node->safe_psql('postgres', round_sql(5, $parts));
ok(wait_until('the watchers to finish', sub { $w->pump_nb if $w->pumpable; !$w->pumpable }), 'every client finished')
  or $w->kill_kill;
ok($w->finish, 'sse_watch: every promise kept (exit 0)') or diag("$out\n$err");
my %s = $out =~ /(\w+) (\d+)/g;
note($out);
is($s{ended}, $clients, 'every client got the end event');
is($s{events}, $clients * ($parts + 1), 'exactly 31 part events per client: every part once');
is($s{duplicates}, 0, 'no part twice');
is($s{missing}, 0, 'no part missing');
is($s{cursor_mismatches}, 0, 'each event id is the set of numbers the client holds');
cmp_ok($s{drops}, '>=', 300, "connections dropped mid-stream and resumed ($s{drops})");
is($s{http_errors}, 0, 'no client was refused');

# a watched job aggregated mid-stream: its later parts come through parts() (content + pending)
$node->safe_psql('postgres', q(select buildlog.write_parts('{1201,1201,1201}', '{0,1,2}', '{a,b,c}', '{f,f,f}')));
($out, $err) = ('', '');
unlink($ready);
$w = IPC::Run::start([ $watch, '--port', $port, '--clients', 3, '--jobs', 1, '--first-job', 1201, '--expect', 5,
		'--timeout', 30, '--ready-file', $ready ], '>', \$out, '2>', \$err);
ok(wait_until('the watchers of job 1201', sub { $w->pump_nb if $w->pumpable; (-e $ready || !$w->pumpable, 'not yet') })
	  && -e $ready, 'watching job 1201') or diag("$out\n$err");
is($node->safe_psql('postgres', 'select buildlog.aggregate(1201)'), '3', 'its 3 parts aggregated mid-stream');
$node->safe_psql('postgres', q(select buildlog.write_parts('{1201}', '{4}', '{e}', '{f}')));
$node->safe_psql('postgres', q(select buildlog.write_parts('{1201,1201}', '{3,5}', '{d,""}', '{f,t}')));
ok(wait_until('the watchers of job 1201 to finish', sub { $w->pump_nb if $w->pumpable; !$w->pumpable }), 'they finished');
ok($w->finish, 'after the aggregation: every part once, the end') or diag("$out\n$err");
like($out, qr/^clients 3 .* ended 3 .* events 18 duplicates 0 missing 0 cursor_mismatches 0 /m, 'parts 0..5 to each of the 3');

is($node->safe_psql('postgres', q(select pid from buildlog.http_stats)),
	$pid, 'the HTTP worker is the same process');
unlike(slurp_file($node->logfile), qr/terminated by signal/, 'no process crashed');
$node->stop;
done_testing();
