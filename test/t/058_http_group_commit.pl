# Group commit across HTTP uploads: batches whose bodies complete
# together are written in fewer transactions than requests (the counter
# buildlog_http_ingest_commits_total of GET /metrics), each answered 200
# only once its parts are committed, every part stored exactly once; in a
# group, a request refused (write token of a final job: 403; a bad line:
# 400) or failing in the database (a trigger raising for one job: the group
# is retried request by request) gets its own error, the others 200.
use strict;
use warnings;
use BuildlogTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IO::Socket::INET;
use IO::Select;
use JSON::PP;

my $key_file = token_key_file();
my ($node, $base, $port) = http_node('group', qq(
buildlog.http_token_key_file = '$key_file'
buildlog.aggregate_delay = '1h'
));
sub query { return $node->safe_psql('postgres', $_[0]); }
sub token { return query("select buildlog.issue_token($_[0], '$_[1]')"); }
sub metric
{
	my ($m) = run_command([ 'curl', '-s', "$base/metrics" ]);
	return $m =~ /^buildlog_http_$_[0] (\d+)$/m ? $1 : die "no metric $_[0] in: $m";
}
sub batch { my ($job, @n) = @_; return join('', map { encode_json({ id => $job, number => $_, log => "job $job part $_\n" }) . "\n" } @n); }

# start(job, body, token): a socket that sent all of a POST but its last byte
sub start
{
	my ($job, $body, $token) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp') or die $!;
	$s->autoflush(1);
	print $s "POST /jobs/$job/parts HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer $token\r\n"
	  . "Content-Type: application/x-ndjson\r\nContent-Length: " . length($body) . "\r\n\r\n"
	  . substr($body, 0, -1);
	return [ $s, substr($body, -1) ];
}
# release(list): send every last byte at once, then read each answer: [status, body]
sub release
{
	my @c = @_;
	print { $_->[0] } $_->[1] for @c;
	my @answers;
	for my $c (@c)
	{
		my ($buf, $sel) = ('', IO::Select->new($c->[0]));
		while ($sel->can_read(60))
		{
			last unless sysread($c->[0], $buf, 65536, length $buf);
			last if $buf =~ /\r\n\r\n/ && $buf =~ /Content-Length: (\d+)/i && length($buf) >= $+[0] + $1 + 4;
		}
		my ($head, $body) = split /\r\n\r\n/, $buf, 2;
		push @answers, [ (($head // '') =~ m{^HTTP/1\.\d (\d+)})[0] // 0, $body // '' ];
		close $c->[0];
	}
	return @answers;
}

# 30 runners whose batches complete at the same moment
my @jobs = (101 .. 130);
my %tok = map { $_ => token($_, 'write') } @jobs;
my @conns = map { start($_, batch($_, 0 .. 9), $tok{$_}) } @jobs;
my ($commits, $writes) = (metric('ingest_commits_total'), metric('ingest_writes_total'));
my @a = release(@conns);
is(join(',', map { $_->[0] } @a), join(',', (200) x 30), 'all 30 batches answered 200');
is(scalar(grep { decode_json($_->[1])->{parts} == 10 } @a), 30, 'each answer: 10 parts');
my $used = metric('ingest_commits_total') - $commits;
ok($used < 30, "30 requests written in $used transactions (grouped)");
is(metric('ingest_writes_total') - $writes, 30, 'the group commits stored 30 requests');
is(query("select count(*) || ' ' || count(distinct (job_id, number)) || ' ' || count(distinct job_id) from buildlog.log_parts where job_id between 101 and 130"),
	'300 300 30', 'every part stored exactly once');
is(query("select count(*) from buildlog.logs where job_id between 101 and 130 and buildlog.log(job_id) is distinct from (select string_agg(format('job %s part %s', job_id, n) || E'\\n', '' order by n) from generate_series(0, 9) n)"),
	'0', 'each log exact');

# one bad request does not fail the others of its group
query("create function boom() returns trigger language plpgsql as \$\$ begin if new.job_id = 666 then raise exception 'boom for job 666' using errcode = '22023'; end if; return new; end \$\$");
query("create trigger boom before insert on buildlog.log_parts for each row execute function boom()");
query("select buildlog.write_parts('{200}', '{0}', '{done}', '{true}')");	# job 200 is final
my @good = (141 .. 150);
@conns = ((map { start($_, batch($_, 0 .. 4), token($_, 'write')) } @good),
	start(666, batch(666, 0, 1), token(666, 'write')),
	start(200, batch(200, 1), token(200, 'write')),
	start(151, batch(151, 0) . "{not json\n", token(151, 'write')));
@a = release(@conns);
is(join(',', map { $_->[0] } @a), join(',', (200) x 10, 400, 403, 400), 'the good 200, the failing 400, the final job 403, the bad line 400');
like($a[10][1], qr/boom for job 666/, 'the failing request gets its own error');
like($a[12][1], qr/line 2/, 'the bad line is named');
is(query("select count(*) || ' ' || count(distinct (job_id, number)) from buildlog.log_parts where job_id between 141 and 150"),
	'50 50', 'the good requests stored exactly once');
is(query("select count(*) from buildlog.log_parts where job_id in (666, 151) or (job_id = 200 and number = 1)"), '0',
	'nothing of the refused or failed requests');
unlike(slurp_file($node->logfile), qr/terminated by signal/, 'the HTTP worker never crashed');
done_testing();
