# Connection failures of the drain: drain_stats.last_error (and the server
# log) say what failed and never hold the password, whether it came from the
# URL or from buildlog.amqp_password_file; a refused login is retried with
# the documented back-off (0.5 s doubling to 5 s), logged once, and the
# worker connects once the password file is fixed, without a reload.  With a
# password in the URL that is not used and the real one from the file, no
# monitoring view shows either to a pg_read_all_settings + pg_monitor role
# (pg_settings, current_setting() masks the URL, drain_stats,
# pg_stat_activity).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use BuildlogTest;
use File::Temp qw(tempdir);
use Time::HiRes qw(time);

my ($url, $root) = need_env('BUILDLOG_AMQP_URL', 'BUILDLOG_ROOT');
my ($hostport) = $url =~ m{@([^/]+)} or die "no host:port in $url";

# A broker user of our own, with a password no other text contains.
my $user = 'bl_t021';
my $secret = sprintf('pw021-%08x%08x', int(rand(2**32)), int(rand(2**32)));
my $wrong = sprintf('bad021-%08x%08x', int(rand(2**32)), int(rand(2**32)));
sub broker_ctl { my ($out) = run_command([ "$root/script/stack", 'rabbitmqctl', '-q', @_ ]); return $out; }
broker_ctl('delete_user', $user) if broker_ctl('list_users') =~ /^\Q$user\E\s/m;
broker_ctl('add_user', $user, $secret);
broker_ctl('set_permissions', '-p', '/', $user, '.*', '.*', '.*');

system("amqp-declare-queue", "--url=$url", "-q", "tq.login", "-d") == 0 or die "could not declare tq.login";

my $dir = tempdir(CLEANUP => 1);
# write_password(TEXT): the password file the worker reads at every attempt
sub write_password
{
	open(my $fh, '>', "$dir/pw.tmp") or die $!;
	print $fh "$_[0]\n";
	close($fh);
	chmod 0600, "$dir/pw.tmp";
	rename("$dir/pw.tmp", "$dir/amqp_password") or die $!;
}

my $node = buildlog_node('login', qq(
buildlog.amqp_url = 'amqp://$user:$secret\@127.0.0.1:1'
buildlog.amqp_queues = 'tq.login'
buildlog.drain_workers = 1
));

# with_url(URL, PASSWORD_FILE): restart the node with them (a reload would
# make the postmaster log the URL, a documented limitation)
sub with_url
{
	my ($u, $file) = @_;
	$node->append_conf('postgresql.conf', "buildlog.amqp_url = '$u'\n"
		  . "buildlog.amqp_password_file = '" . ($file // '') . "'\n");
	$node->restart;
}

# last_error_matches(REGEX, WHAT): wait until last_error matches, check it
# holds neither password
sub last_error_matches
{
	my ($re, $what) = @_;
	my $error;
	ok(wait_until("last_error matching $re", sub {
			$error = $node->safe_psql('postgres', 'select last_error from buildlog.drain_stats');
			return ($error =~ $re, $error);
		}), "$what: last_error says what failed");
	note("last_error: $error");
	unlike($error, qr/\Q$secret\E|\Q$wrong\E/, "$what: last_error holds no password");
}

# ---- the broker's port is closed
last_error_matches(qr{^could not connect to 127\.0\.0\.1:1/: .+; retrying with back-off$},
	'port closed');

# ---- a vhost that does not exist (the login itself is right)
with_url("amqp://$user:$secret\@$hostport/novhost");
last_error_matches(qr{^could not log in to \Q$hostport\E/novhost: .*(vhost|NOT_ALLOWED).*; retrying with back-off$},
	'unknown vhost');

# ---- the broker refuses the login: the password file gets a wrong one
with_url("amqp://$user:$secret\@$hostport", "$dir/amqp_password");
write_password($secret);
wait_query($node, 'select connected from buildlog.drain_stats', 't',
	'connected with the password from the file');
write_password($wrong);
# restart_workers() makes the worker reconnect (reading the file again);
# every attempt stamps last_error_at, and drain_stats reads shared memory,
# so polling it in one statement sees each attempt: seconds since the call
$node->safe_psql('postgres', q(
create function public.attempts(upto int, seconds float8) returns setof float8
language plpgsql as $$
declare
  t0 timestamptz := clock_timestamp();
  seen timestamptz := (select last_error_at from buildlog.drain_stats);
  t timestamptz;
begin
  perform buildlog.restart_workers();
  while upto > 0 and clock_timestamp() < t0 + seconds * interval '1 s' loop
    select last_error_at into t from buildlog.drain_stats;
    if t is distinct from seen then
      seen := t;
      upto := upto - 1;
      return next extract(epoch from t - t0);
    end if;
    perform pg_sleep(0.02);
  end loop;
end $$;
));
my $mark = log_mark($node);
my @at = split /\n/, $node->safe_psql('postgres', 'select * from public.attempts(6, 30)');
last_error_matches(qr{^could not log in to \Q$hostport\E/: connection closed by broker: 403 ACCESS_REFUSED - Login was refused.*; retrying with back-off$},
	'login refused');
my @gaps = map { sprintf('%.2f', $at[$_] - $at[ $_ - 1 ]) } 1 .. $#at;
note(sprintf('first attempt %.2f s after restart_workers(); then gaps of %s s', $at[0], "@gaps"));
cmp_ok($at[0], '<', 1, 'the first attempt follows restart_workers() at once');
is(scalar(@gaps), 5, 'the worker kept retrying: 6 attempts within 30 s');
# 0.5 s doubling to 5 s: 0.5, 1, 2, 4, 5 (never shorter; longer on a loaded
# machine, by less than half a step (at least 0.5 s): each step still tells
# itself from the next, a back-off starting at 1 s or one not capped at 5 s)
my @want = (0.5, 1, 2, 4, 5);
my @off = grep {
	my $slack = $want[$_] / 2 < 0.5 ? 0.5 : $want[$_] / 2;
	$gaps[$_] < $want[$_] - 0.05 || $gaps[$_] >= $want[$_] + $slack
} 0 .. ($#gaps < $#want ? $#gaps : $#want);
is(join(' ', map { "gap $_: $gaps[$_] s, not $want[$_] s" } @off), '',
	'the attempts back off exponentially: 0.5 s, 1 s, 2 s, 4 s, then 5 s');
is(log_count($node, $mark, qr/LOG:  buildlog drain 1: could not log in to /), 1,
	'the refused login is logged once, not once per attempt');

# ---- the password file is fixed: the next attempt connects, no reload
write_password($secret);
my $t0 = time;
wait_query($node, 'select connected from buildlog.drain_stats', 't',
	'connected after the password file was fixed');
note(sprintf('connected %.1f s after the fix', time - $t0));
like(log_since($node, $mark), qr/LOG:  buildlog drain 1: consuming tq\.login from \Q$hostport\E\//,
	'the worker logs that it consumes');

# ---- the password in no monitoring view: the URL carries one that is not
# used, the file supplies the real one
my $unused = sprintf('url021-%08x%08x', int(rand(2**32)), int(rand(2**32)));
with_url("amqp://$user:$unused\@$hostport", "$dir/amqp_password");
$node->safe_psql('postgres', q(
create role watcher login;
grant pg_read_all_settings, pg_monitor to watcher;
grant usage on schema buildlog to watcher;
grant select on buildlog.drain_stats to watcher;
));
wait_query($node, 'select connected from buildlog.drain_stats', 't',
	'connected with the password from buildlog.amqp_password_file (the URL one is not used)');
my $seen = $node->safe_psql('postgres', q(
set role watcher;
select coalesce(string_agg(concat_ws(' ', name, setting, reset_val, boot_val, sourcefile), E'\n'), '')
  from pg_settings where name like 'buildlog.%';
));
unlike($seen, qr/\Q$unused\E|:\Q$secret\E\@/, 'pg_settings (all columns) shows no AMQP password to pg_read_all_settings');
is($node->safe_psql('postgres', q(set role watcher; select current_setting('buildlog.amqp_url'))),
	"amqp://$user:***\@$hostport", 'current_setting() shows the URL masked');
my $views = $node->safe_psql('postgres', q(
set role watcher;
select concat(string_agg(concat_ws(' ', queues, last_error), ' '),
              (select string_agg(concat_ws(' ', query, application_name), ' ') from pg_stat_activity))
  from buildlog.drain_stats;));
unlike($views, qr/\Q$unused\E|:\Q$secret\E\@/, 'drain_stats and pg_stat_activity show no password');

$node->stop;
my @leaks = grep { /\Q$secret\E|\Q$wrong\E/ } split /\n/, slurp_file($node->logfile);
is(scalar(@leaks), 0, 'neither password ever appears in the server log')
  or diag("first: $leaks[0]");
unlike(slurp_file($node->logfile), qr/\Q$unused\E/, 'the unused URL password never appears in the server log');
broker_ctl('delete_user', $user);
done_testing();
