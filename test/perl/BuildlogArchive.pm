# Helpers of the archive TAP files (test/t/03*.pl) against a real s3rver: a
# node with the archive configured and the gen()/expected() log generators,
# writers of jobs, waits for the purge, raw object reads with curl, and the
# comparison of every object with its log and its recorded archive facts.
package BuildlogArchive;

use strict;
use warnings;
use Exporter 'import';
use BuildlogTest;
use Digest::SHA qw(sha256_hex);
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use IPC::Run;
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(archive_node archive_conf archive_functions write_jobs wait_purged s3_curl object_url
  object_get check_objects set_conf s3_stack stat_sum);

my ($endpoint, $root);
my $bucket = $ENV{BUILDLOG_S3_BUCKET} // 'buildlog';

# archive_conf(PREFIX): the settings that archive to s3rver under PREFIX
# (1 worker, aggregate and purge delays of 1 s).
sub archive_conf
{
	my ($prefix) = @_;
	($endpoint, $root) = need_env('BUILDLOG_S3_ENDPOINT', 'BUILDLOG_ROOT');
	return qq(
buildlog.archive_workers = 1
buildlog.aggregate_delay = '1s'
buildlog.purge_delay = '1s'
buildlog.s3_endpoint = '$endpoint'
buildlog.s3_bucket = '$bucket'
buildlog.s3_access_key = 'S3RVER'
buildlog.s3_secret_key = 'S3RVER'
buildlog.s3_prefix = '$prefix'
buildlog.s3_timeout = '5s'
);
}

# archive_functions(NODE, PREFIX): gen(j, n) (part n of job j: UTF-8, ANSI
# colours, CRLF, \r progress lines, varied sizes) and expected(j, parts) (the
# log of parts 0..parts-1) in NODE's database; PREFIX is where its objects go.
sub archive_functions
{
	my ($node, $prefix) = @_;
	$node->safe_psql('postgres', q(
create function gen(j bigint, n int) returns text language sql immutable as $$
  select format(E'job %s part %s: \u00e9\u4e2d\U0001F600 \x1b[32mok\x1b[0m 10%%\r50%%\r\n', j, n)
         || repeat('x', ((j * 7 + n) % 300)::int) || E'\n' $$;
create function expected(j bigint, parts int) returns text language sql immutable as $$
  select string_agg(gen(j, n), '' order by n) from generate_series(0, parts - 1) n $$;
));
	$node->{archive_prefix} = $prefix;
}

# archive_node(NAME, PREFIX, CONF): a node archiving to s3rver under PREFIX
# (archive_conf; no drain) with archive_functions, CONF added to its settings.
sub archive_node
{
	my ($name, $prefix, $conf) = @_;
	my $node = buildlog_node($name, "buildlog.drain_workers = 0\n" . archive_conf($prefix) . ($conf // ''));
	archive_functions($node, $prefix);
	return $node;
}

# write_jobs(NODE, FIRST, LAST, PARTS, SKIP): parts 0..PARTS-1 of jobs
# FIRST..LAST (the last one final), except where the SQL condition SKIP holds.
sub write_jobs
{
	my ($node, $first, $last, $parts, $skip) = @_;
	$skip //= 'false';
	$node->safe_psql('postgres', qq(
select buildlog.write_parts(array_agg(j), array_agg(n), array_agg(gen(j, n)), array_agg(n = $parts - 1))
  from generate_series(${first}::bigint, $last) j, generate_series(0, $parts - 1) n
 where not ($skip)));
}

# wait_purged(NODE, FIRST, LAST, WHAT): ok once jobs FIRST..LAST are purged.
sub wait_purged
{
	my ($node, $first, $last, $what, %opt) = @_;
	my $n = $last - $first + 1;
	return wait_query($node, qq(
select count(*) from buildlog.logs
 where job_id between $first and $last and purged_at is not null and content is null),
		$n, "$what: $n logs aggregated, archived, verified and purged", %opt);
}

# s3_curl(ARGS...): curl against s3rver, signed like any client (s3rver does
# not check it); returns the output.
sub s3_curl
{
	my (@args) = @_;
	my ($out, $err);
	IPC::Run::run([ 'curl', '-sS', '--aws-sigv4', 'aws:amz:us-east-1:s3', '--user', 'S3RVER:S3RVER',
		'-H', 'x-amz-content-sha256: UNSIGNED-PAYLOAD', @args ], '>', \$out, '2>', \$err);
	return $out;
}

# object_url(NODE, JOB): the URL of a job's archive object.
sub object_url
{
	my ($node, $j) = @_;
	return "$endpoint/$bucket/$node->{archive_prefix}jobs/$j/log.txt";
}

# object_get(NODE, JOB): (headers, raw stored bytes) of a job's object.
sub object_get
{
	my ($node, $j) = @_;
	my $headers = s3_curl('-D', '-', '-o', '/dev/null', object_url($node, $j));
	return ($headers, s3_curl(object_url($node, $j)));
}

# check_objects(NODE, FIRST, LAST, PARTS, GZIP, WHAT): for jobs FIRST..LAST,
# the object (gunzipped if GZIP) equals expected(j, PARTS) byte for byte, its
# Content-Encoding says gzip exactly when GZIP, the recorded archive_size,
# archive_sha256 and archive_etag EQUAL the stored object's length, SHA-256
# and ETag, and fetch() returns the log.
sub check_objects
{
	my ($node, $first, $last, $parts, $gzip, $what) = @_;
	my %want = map { split /\|/ } split /\n/, $node->safe_psql('postgres', qq(
select j || '|' || md5(expected(j, $parts)) from generate_series($first, $last) j));
	my %facts = map { my @f = split /\|/; ($f[0] => [ @f[ 1 .. 4 ] ]) } split /\n/,
	  $node->safe_psql('postgres', qq(
select job_id, archive_size, archive_sha256, archive_etag, md5(buildlog.fetch(job_id))
  from buildlog.logs where job_id between $first and $last));
	my (@bad_object, @bad_fetch, @bad_encoding, @bad_facts);
	for my $j ($first .. $last) {
		my ($headers, $body) = object_get($node, $j);
		my ($etag) = $headers =~ /^etag:\s*"?([^"\s]+)/mi;
		my $f = $facts{$j} // [];
		push @bad_facts, "$j(@$f[0..2] vs " . length($body) . ' ' . sha256_hex($body) . ' ' . ($etag // 'none') . ')'
		  unless ($f->[0] // -1) == length($body) && ($f->[1] // '') eq sha256_hex($body)
		  && ($f->[2] // '') eq ($etag // 'none');
		my $gz = $headers =~ /^content-encoding:\s*gzip/mi;
		push @bad_encoding, $j if ($gz ? 1 : 0) != ($gzip ? 1 : 0);
		if ($gzip) {
			my $plain;
			gunzip(\$body => \$plain) or $plain = "gunzip: $GunzipError";
			$body = $plain;
		}
		push @bad_object, $j if Digest::MD5::md5_hex($body) ne $want{$j};
		push @bad_fetch, $j if ($f->[3] // '') ne $want{$j};
	}
	is("@bad_facts", '', "$what: archive_size, archive_sha256, archive_etag equal the stored object's length, SHA-256, ETag");
	is("@bad_object", '', "$what: every object " . ($gzip ? 'gunzips to' : 'equals') . ' its log byte for byte');
	is("@bad_encoding", '', "$what: Content-Encoding " . ($gzip ? 'gzip' : 'none') . ' on every object');
	is("@bad_fetch", '', "$what: fetch() of every log equals its text");
}

# set_conf(NODE, NAME => VALUE, ...): ALTER SYSTEM and reload, then wait
# until a new session shows every value: the postmaster re-read the file and
# has signalled the workers (each applies it at the top of its next round).
sub set_conf
{
	my ($node, %set) = @_;
	$node->safe_psql('postgres',
		join('', map { "alter system set $_ = '$set{$_}';\n" } sort keys %set)
		  . 'select pg_reload_conf();');
	wait_query($node, "select current_setting('$_')", $set{$_}, "reloaded $_") for sort keys %set;
}

# s3_stack(start|stop): start or stop the stack's s3rver.
sub s3_stack
{
	my ($what) = @_;
	system("$root/script/stack", $what, 's3') == 0 or die "s3rver $what failed";
}

# stat_sum(NODE, COLUMN): COLUMN of buildlog.archive_stats summed over workers.
sub stat_sum
{
	my ($node, $col) = @_;
	return $node->safe_psql('postgres', "select coalesce(sum($col), 0) from buildlog.archive_stats");
}


# holding_proxy(MATCH, DIR): a TCP proxy in a child process, in front of the
# test's s3rver, returning (endpoint URL, child PID).  It forwards every
# connection both ways, except that once a request whose bytes match MATCH
# has passed (the request line and what came with it), it stops reading
# that connection (the client then blocks as soon as the socket buffers are
# full), writes the bytes forwarded so far to DIR/held, and reads on only
# once DIR/go exists.  Only the first match is held.  End it with
# kill('TERM', PID).
push @EXPORT, 'holding_proxy';
sub holding_proxy
{
	my ($match, $dir) = @_;
	($endpoint) = need_env('BUILDLOG_S3_ENDPOINT') unless $endpoint;
	my ($target) = $endpoint =~ m{^http://127\.0\.0\.1:(\d+)} or die "no port in $endpoint";
	my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 16, ReuseAddr => 1)
	  or die "listen: $!";
	my $port = $listen->sockport;
	my $pid = fork() // die "fork: $!";
	return ("http://127.0.0.1:$port", $pid) if $pid;

	# the child: a select loop; writes block (one flow at a time is enough
	# here).  It never returns into the test: no END block (the nodes'
	# teardown among them) may run in it.
	$SIG{PIPE} = 'IGNORE';
	$SIG{TERM} = sub { POSIX::_exit(0) };
	eval { proxy_loop($listen, $target, $match, $dir) };
	print STDERR "holding_proxy: $@";
	POSIX::_exit(1);
}

sub proxy_loop
{
	my ($listen, $target, $match, $dir) = @_;
	my $sel = IO::Select->new($listen);
	my (%other, %is_client, %sent);
	my ($held, $done) = (undef, 0);
	my $drop = sub {
		my @pair = @_;    # copies: the hash holds the originals
		for my $s (@pair) { $sel->remove($s); delete $other{$s}; delete $is_client{$s}; delete $sent{$s}; close($s); }
	};
	while (1)
	{
		my @ready = $sel->can_read(0.01);
		if ($held && -e "$dir/go") { $sel->add($held); $held = undef; }
		for my $s (@ready)
		{
			if ($s == $listen)
			{
				my $c = $listen->accept or next;
				my $u = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $target) or die "connect: $!";
				@other{ $c, $u } = ($u, $c);
				$is_client{$c} = 1;
				$sel->add($c, $u);
				next;
			}
			next unless $other{$s};
			my $n = sysread($s, my $buf, 65536);
			if (!$n) { $drop->($s, $other{$s}); next; }
			my $o = $other{$s};
			for (my $off = 0; $off < length $buf;) {
				my $w = syswrite($o, $buf, length($buf) - $off, $off);
				if (!defined $w) { $drop->($s, $o); last; }
				$off += $w;
			}
			next unless $is_client{$s};
			$sent{$s} += $n;
			if (!$done && $buf =~ $match)
			{
				$done = 1;
				$held = $s;
				$sel->remove($s);
				open(my $fh, '>', "$dir/held.tmp") or die $!;
				print $fh $sent{$s};
				close($fh);
				rename("$dir/held.tmp", "$dir/held") or die $!;
			}
		}
	}
}

# write_job(NODE, JOB, PARTS): parts 0..PARTS-1 of JOB (the last final),
# aggregated at once by this session.
push @EXPORT, 'write_job';
sub write_job
{
	my ($node, $j, $parts) = @_;
	write_jobs($node, $j, $j, $parts);
	$node->safe_psql('postgres', "select buildlog.aggregate($j)");
}

require Digest::MD5;
1;
