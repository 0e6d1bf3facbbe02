# Shared helpers of the TAP files (test/t/*.pl): a node with the extension
# preloaded and created, waits on a condition that fail fast and say what they
# waited for, server-log reads from a mark, the publisher and the broker's
# command-line tools.  script/test puts this directory on PERL5LIB.
package BuildlogTest;

use strict;
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

our @EXPORT = qw(buildlog_node wait_until wait_query log_mark log_since
  log_count publish amqp_url need_env);

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
			my ($rc, $out, $err) = $node->psql($opt{db} // 'postgres', $sql);
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

# publish(ARGS...): run bench/bin/publish against the test broker; passes when
# it reports what it published, and returns its output.
sub publish
{
	my @args = @_;
	my ($root) = need_env('BUILDLOG_ROOT');
	my ($out, $err) = run_command([ "$root/bench/bin/publish", '--url', amqp_url(), @args ]);
	like($out, qr/^published \d+ messages/m, 'publisher: ' . ((split /\n/, $out)[-1] // ''))
	  or diag($err);
	return $out;
}

1;
