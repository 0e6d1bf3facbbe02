# Workers that exit are restarted by the postmaster after 10 s
# (bgw_restart_time), not at once: after SIGTERM (drain and scheduler), and
# after an exit with an error (every worker, when buildlog.database changes
# to a database that does not exist: each restart fails with FATAL, 10 s
# apart, no crash loop).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BuildlogTest;

my ($url) = need_env('BUILDLOG_AMQP_URL');
my $node = buildlog_node('restart', qq(
buildlog.amqp_url = '$url'
buildlog.amqp_queues = 'tq.none'
buildlog.drain_workers = 1
));
my $kinds = q('buildlog drain', 'buildlog scheduler');
wait_query($node, "select count(*) from pg_stat_activity where backend_type in ($kinds)", 2,
	'drain and scheduler run');

# ---- SIGTERM: a new process 10 s later (not before 9 s, well before 30 s)
my ($t0, $old) = split /\|/, $node->safe_psql('postgres', qq(
select extract(epoch from clock_timestamp()),
       string_agg(pid::text, ',') filter (where pg_terminate_backend(pid))
  from pg_stat_activity where backend_type in ($kinds)));
wait_query($node, qq(
select count(*) from pg_stat_activity where backend_type in ($kinds) and pid not in ($old)), 2,
	'drain and scheduler were restarted');
my %after = map { split /\|/ } split /\n/, $node->safe_psql('postgres', qq(
select backend_type, round(extract(epoch from backend_start) - $t0, 2)
  from pg_stat_activity where backend_type in ($kinds)));
for my $kind ('buildlog drain', 'buildlog scheduler') {
	ok($after{$kind} >= 9 && $after{$kind} < 30,
		"$kind: restarted $after{$kind} s after SIGTERM (bgw_restart_time = 10 s)");
}

# ---- an exit with an error: buildlog.database changed to a missing database
my $mark = log_mark($node);
$node->safe_psql('postgres', q(
alter system set buildlog.database = 'nosuchdb';
select pg_reload_conf();
));
my $exit = qr/^(\S+ \S+) UTC \[\d+\] LOG:  background worker "(buildlog \w+)" \(PID (\d+)\) exited with exit code 1$/m;
# exits(): kind => [[time, pid], ...] of the workers' exits since the mark
sub exits
{
	my %e;
	my $log = log_since($node, $mark);
	while ($log =~ /$exit/g) { push @{ $e{$2} }, [ $1, $3 ]; }
	return \%e;
}
ok(wait_until('two exits of each worker',
		sub { my $e = exits(); return (3 == grep({ @{ $e->{$_} // [] } >= 2 } keys %$e), join(',', keys %$e)); }),
	'each worker exited, was restarted and exited again');
my $log = log_since($node, $mark);
my $e = exits();
for my $kind ('buildlog drain', 'buildlog scheduler', 'buildlog archive') {
	my ($first, $second) = @{ $e->{$kind} };
	my $gap = $node->safe_psql('postgres',
		"select round(extract(epoch from '$second->[0]'::timestamptz - '$first->[0]'::timestamptz), 2)");
	like($log, qr/\[$first->[1]\] LOG:  \Q$kind\E.*: buildlog\.database changed, restarting$/m,
		"$kind: exited because buildlog.database changed");
	like($log, qr/\[$second->[1]\] FATAL:  database "nosuchdb" does not exist$/m,
		"$kind: the restarted worker failed with FATAL");
	ok($gap >= 9 && $gap < 30, "$kind: restarted $gap s after exiting with code 1 (10 s)");
}

$node->stop;
done_testing();
