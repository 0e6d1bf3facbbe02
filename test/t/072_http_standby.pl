# The HTTP service on a streaming standby: its /healthz answers 503
# "standby" (X-Buildlog-Role: standby) so a proxy sends clients to the
# primary, every other request 503 with Retry-After, and no other buildlog
# worker runs there; once promoted, /healthz answers 200 "ok", the scheduler
# and the HTTP readers start by themselves and the log written on the old
# primary is served; fenced read-only (default_transaction_read_only, as
# pg_auto_failover does after a failover), it answers 503 "read-only".
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my ($port1, $port2) = (PostgreSQL::Test::Cluster::get_free_port(), PostgreSQL::Test::Cluster::get_free_port());
my $primary = buildlog_node('hs_primary', qq(
buildlog.http_listen = '127.0.0.1:$port1'
buildlog.drain_workers = 0
buildlog.archive_workers = 0
), init => { allows_streaming => 1 });
my ($p1, $s1) = ("http://127.0.0.1:$port1", "http://127.0.0.1:$port2");
ok(wait_until('the primary to serve', sub { (http_request("$p1/healthz"))[0] == 200 }), 'the primary: /healthz 200');
my ($st, $h, $body) = http_request("$p1/healthz");
is("$body|" . ($h->{'x-buildlog-role'} // ''), "ok\n|primary", 'the primary says ok, role primary');
$primary->safe_psql('postgres', q(select buildlog.set_content(7200001, 'written on the primary')));

$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('hs_standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf', "buildlog.http_listen = '127.0.0.1:$port2'\n");
$standby->start;
$primary->wait_for_catchup($standby);

ok(wait_until('the standby to answer /healthz', sub { (http_request("$s1/healthz"))[0] != 0 }), 'the standby answers HTTP');
($st, $h, $body) = http_request("$s1/healthz");
is("$st|$body|" . ($h->{'x-buildlog-role'} // ''), "503|standby\n|standby", 'the standby: /healthz 503 standby');
($st, $h, $body) = http_request("$s1/jobs/7200001/log");
is("$st|" . ($h->{'retry-after'} // ''), '503|5', 'a read on the standby: 503 with Retry-After');
like($body, qr/standby/, 'which says the node is a standby');
($st) = http_request('-X', 'PUT', '--data-binary', 'x', "$s1/jobs/7200001/log");
is($st, 503, 'an upload on the standby: 503');
is($standby->safe_psql('postgres', q(select string_agg(backend_type, ',' order by backend_type)
  from pg_stat_activity where backend_type like 'buildlog%')), 'buildlog http', 'only the HTTP worker runs on the standby');

$standby->promote;
ok(wait_until('the promoted node to say ok', sub { (http_request("$s1/healthz"))[0] == 200 }), 'promoted: /healthz 200');
ok(wait_until('the scheduler and the HTTP readers to start', sub {
			my $w = $standby->safe_psql('postgres', q(select string_agg(distinct backend_type, ',' order by backend_type)
  from pg_stat_activity where backend_type like 'buildlog%'));
			($w eq 'buildlog http,buildlog http reader,buildlog scheduler', $w) }),
	'the other workers started by themselves');
($st, $h, $body) = http_request("$s1/jobs/7200001/log");
is("$st|$body", '200|written on the primary', 'the promoted node serves the log written on the old primary');

# writes fenced off (as pg_auto_failover does until the old primary is demoted)
$standby->safe_psql('postgres', 'alter system set default_transaction_read_only = on');
$standby->safe_psql('postgres', 'select pg_reload_conf()');
ok(wait_until('/healthz to say read-only', sub { my (undef, undef, $b) = http_request("$s1/healthz"); $b eq "read-only\n" }),
	'fenced read-only: /healthz 503 read-only');
($st, $h) = http_request("$s1/healthz");
is("$st|" . ($h->{'x-buildlog-role'} // ''), '503|read-only', 'with X-Buildlog-Role: read-only');
$standby->safe_psql('postgres', 'alter system reset default_transaction_read_only');
$standby->safe_psql('postgres', 'select pg_reload_conf()');
ok(wait_until('/healthz to say ok again', sub { (http_request("$s1/healthz"))[0] == 200 }), 'the fence lifted: 200 again');

done_testing();
