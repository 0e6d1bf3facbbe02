# The archive under faults and hostile use, against a real s3rver:
#  - keys read from files, never in pg_settings, SHOW, the log or error texts,
#    also for a member of pg_read_all_settings and pg_monitor;
#  - parts(job, after) of a purged log reads only the byte range it needs,
#    validated against the recorded size and ETag;
#  - aggregate() downloads a purged log's archive before taking the job's
#    lock: a writer of the job is not blocked while S3 stalls (it returns
#    while aggregate() still waits), and every S3 request gives up at
#    buildlog.s3_request_timeout, not the whole s3_timeout;
#  - removing or replacing a log deletes its archive object, proven by a
#    HEAD 404, retried while S3 is down and across a restart.
#
# Needs BUILDLOG_S3_ENDPOINT and BUILDLOG_ROOT (script/test sets them).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IO::Socket::INET;
use IO::Select;
use IPC::Run;
use Time::HiRes qw(time sleep);
use BuildlogTest qw(wait_until wait_query);

my $endpoint = $ENV{BUILDLOG_S3_ENDPOINT} or plan skip_all => 'BUILDLOG_S3_ENDPOINT not set';
my $root = $ENV{BUILDLOG_ROOT} or plan skip_all => 'BUILDLOG_ROOT not set';
my $bucket = $ENV{BUILDLOG_S3_BUCKET} // 'buildlog';
my $prefix = 't005/';
# s3rver ignores signatures, so any secret works: this one must never show
my $secret = 't005-SeCrEt-' . int(rand(1e9));
my $secret2 = 't005-OtHeR-' . int(rand(1e9));

my $node = PostgreSQL::Test::Cluster->new('archive_faults');
$node->init;
my $keydir = $node->basedir;
my $secret_file = "$keydir/s3_secret";
my $secret_file2 = "$keydir/s3_secret2";
my $access_file = "$keydir/s3_access";
PostgreSQL::Test::Utils::append_to_file($secret_file, "  $secret\n");
PostgreSQL::Test::Utils::append_to_file($secret_file2, "$secret2\r\n");
PostgreSQL::Test::Utils::append_to_file($access_file, "S3RVER\n");
chmod 0600, $secret_file, $secret_file2, $access_file;
$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'buildlog'
buildlog.database = 'postgres'
buildlog.drain_workers = 0
buildlog.archive_workers = 2
buildlog.aggregate_delay = '1h'
buildlog.purge_delay = '1s'
buildlog.s3_endpoint = '$endpoint'
buildlog.s3_bucket = '$bucket'
buildlog.s3_access_key_file = '$access_file'
buildlog.s3_secret_key_file = '$secret_file'
buildlog.s3_prefix = '$prefix'
buildlog.s3_timeout = '30s'
max_worker_processes = 16
));
$node->start;
$node->safe_psql('postgres', q(
create schema partman;
create extension pg_partman schema partman;
create extension buildlog;
create function gen(j bigint, n int) returns text language sql immutable as $$
  select format(E'job %s part %s: \u00e9\u4e2d\U0001F600 ok\r\n', j, n) || repeat('x', ((j * 7 + n) % 300)::int) || E'\n' $$;
create function expected(j bigint, parts int) returns text language sql immutable as $$
  select string_agg(gen(j, n), '' order by n) from generate_series(0, parts - 1) n $$;
create role mon login;
grant pg_read_all_settings, pg_monitor to mon;
));

# Write parts 0..parts-1 of a job (the last final) and aggregate it now.
sub write_job
{
	my ($j, $parts) = @_;
	$node->safe_psql('postgres', qq(
select buildlog.write_parts(array_agg(${j}::bigint), array_agg(n), array_agg(gen($j, n)), array_agg(n = $parts - 1))
  from generate_series(0, $parts - 1) n;
select buildlog.aggregate($j)));
}

sub wait_purged
{
	my ($j) = @_;
	ok($node->poll_query_until('postgres',
			"select purged_at is not null and content is null from buildlog.logs where job_id = $j"),
		"job $j archived, verified and purged");
}

# ALTER SYSTEM and reload, then wait until a new session shows the value:
# the postmaster re-read the file and has signalled the workers.
sub set_conf
{
	my ($name, $value) = @_;
	$node->safe_psql('postgres', "alter system set $name = '$value'; select pg_reload_conf();");
	wait_query($node, "select current_setting('$name')", $value, "reloaded $name");
}

# ---------------------------------------------------------------- secrets
{
	write_job(1, 20);
	wait_purged(1);
	is($node->safe_psql('postgres', 'select md5(buildlog.fetch(1)) = md5(expected(1, 20))'), 't',
		'keys from files: the log was archived and fetch() reads it back');

	# a reload with another key file: the new key is used, neither is logged
	set_conf('buildlog.s3_secret_key_file', $secret_file2);
	ok($node->poll_query_until('postgres',
			"select current_setting('buildlog.s3_secret_key_file') = '$secret_file2'"),
		'reload: the new key file is in effect');
	is($node->safe_psql('postgres', 'select md5(buildlog.fetch(1)) = md5(expected(1, 20))'), 't',
		'reload: fetch() works with the key read from the new file');

	# what a monitoring role can see
	my $seen = $node->safe_psql('postgres', q(
select concat_ws(' ', string_agg(concat_ws(' ', name, setting, reset_val, boot_val, short_desc, extra_desc), ' '),
                 current_setting('buildlog.s3_secret_key', true), current_setting('buildlog.s3_access_key', true),
                 current_setting('buildlog.s3_secret_key_file', true),
                 (select string_agg(coalesce(query, ''), ' ') from pg_stat_activity))
  from pg_settings where name like 'buildlog.%'), extra_params => [ '-U', 'mon' ]);
	unlike($seen, qr/\Q$secret\E|\Q$secret2\E/,
		'pg_read_all_settings + pg_monitor: no secret in pg_settings (setting, reset_val, boot_val), current_setting or pg_stat_activity');
	like($seen, qr/\Q$secret_file2\E/, 'the monitoring role sees the key file path (not a secret)');
	my ($ret, $out, $err) = $node->psql('postgres', 'select * from pg_file_settings', extra_params => [ '-U', 'mon' ]);
	unlike("$out$err", qr/\Q$secret\E|\Q$secret2\E/, 'pg_file_settings shows no secret to the monitoring role');

	# an unreadable key file: the error names the file, never the content
	set_conf('buildlog.s3_secret_key_file', "$keydir/no-such-key");
	($ret, $out, $err) = $node->psql('postgres', '\\set VERBOSITY verbose
select buildlog.fetch(1)');
	like($err, qr/could not open file "\Q$keydir\E\/no-such-key" named by buildlog\.s3_secret_key_file: No such file/,
		'unreadable key file: the error names the setting and the file');
	set_conf('buildlog.s3_secret_key_file', $secret_file);
	ok($node->poll_query_until('postgres', 'select md5(buildlog.fetch(1)) = md5(expected(1, 20))'),
		'key file readable again: fetch() works');
}

# ---------------------------------------------------------------- range reads of purged logs
{
	write_job(2, 50);
	my $before = $node->safe_psql('postgres',
		q(select md5(string_agg(number || ':' || content || ':' || final, '|' order by number)) from buildlog.parts(2, 40)));
	my $want_bytes = $node->safe_psql('postgres',
		q(select sum(octet_length(gen(2, n))) from generate_series(41, 49) n));
	wait_purged(2);
	my @r = split /\n/, $node->safe_psql('postgres', q(
select received_bytes from buildlog.s3_client_stats();
select md5(string_agg(number || ':' || content || ':' || final, '|' order by number)) from buildlog.parts(2, 40);
select received_bytes from buildlog.s3_client_stats();
select requests from buildlog.s3_client_stats();
select count(*) from buildlog.parts(2, 49);
select requests from buildlog.s3_client_stats();
select archive_size from buildlog.logs where job_id = 2));
	is($r[1], $before, 'parts(job, 40) of a purged log returns the rows it returned before the purge');
	is($r[2] - $r[0], $want_bytes,
		"parts(job, 40) read only the $want_bytes bytes of parts 41..49 (archive: $r[6] bytes)");
	is("$r[4] $r[5]", "0 $r[3]", 'parts(job, last) of a purged log sends no S3 request');

	# gzip archives are read whole, with the same rows
	set_conf('buildlog.archive_compression', 'gzip');
	write_job(3, 50);
	$before = $node->safe_psql('postgres',
		q(select md5(string_agg(number || ':' || content, '|' order by number)) from buildlog.parts(3, 40)));
	wait_purged(3);
	@r = split /\n/, $node->safe_psql('postgres', q(
select received_bytes from buildlog.s3_client_stats();
select md5(string_agg(number || ':' || content, '|' order by number)) from buildlog.parts(3, 40);
select received_bytes from buildlog.s3_client_stats();
select archive_size from buildlog.logs where job_id = 3));
	is($r[1], $before, 'gzip archive: parts(job, 40) returns the same rows');
	is($r[2] - $r[0], $r[3], 'gzip archive: the whole object is read (documented)');
	set_conf('buildlog.archive_compression', 'none');

	# an object replaced behind our back: the range is not trusted
	$node->safe_psql('postgres', q(select buildlog.s3_put_text(buildlog.s3_key(2), repeat('y', 5000))));
	my ($ret, $out, $err) = $node->psql('postgres', '\\set VERBOSITY verbose
select count(*) from buildlog.parts(2, 40)');
	like($err, qr/XX001: the archive of job 2 does not match what was recorded at upload.*Content-Range total is 5000, the recorded size/s,
		'replaced object: the range read is refused (Content-Range total differs from archive_size)');
}

# ---------------------------------------------------------------- a slow S3 and the writers
{
	write_job(4, 20);
	wait_purged(4);
	$node->safe_psql('postgres', q(select buildlog.write_parts('{4}', '{30}', array[gen(4, 30)], '{f}')));

	# a listener that accepts connections and never answers
	my $hole = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 16, ReuseAddr => 1)
		or die "listen: $!";
	my $hole_port = $hole->sockport;
	$node->safe_psql('postgres', qq(
alter system set buildlog.s3_endpoint = 'http://127.0.0.1:$hole_port';
alter system set buildlog.s3_request_timeout = '8s';
select pg_reload_conf();));
	ok($node->poll_query_until('postgres', "select current_setting('buildlog.s3_request_timeout') = '8s'"),
		'endpoint points at a listener that never answers, request timeout 8 s');

	my ($out, $err) = ('', '');
	my $agg = IPC::Run::start(
		[ 'psql', '-X', '-At', '-v', 'VERBOSITY=verbose', '-d', $node->connstr('postgres'),
		  '-c', 'select buildlog.aggregate(4)' ],
		'>', \$out, '2>', \$err);
	# wait for aggregate()'s request to reach the listener
	my $sel = IO::Select->new($hole);
	my @held;
	ok(scalar($sel->can_read(60)), 'aggregate() connected to the stalled endpoint');
	push @held, $hole->accept;
	ok($node->poll_query_until('postgres', q(
select count(*) = 1 from pg_stat_activity where query = 'select buildlog.aggregate(4)' and state = 'active')),
		'aggregate() is waiting on S3');

	my ($ret, $wout, $werr) = $node->psql('postgres', q(
select parts from buildlog.write_parts('{4}', '{31}', array[gen(4, 31)], '{f}')));
	is("$ret $wout", '0 1', 'a writer of the same job stores its part while aggregate() waits on S3');
	# not a speed: a writer held by aggregate()'s lock could only return once
	# aggregate() gave up, and S3 never answers it before its request timeout
	is($node->safe_psql('postgres', q(
select count(*) from pg_stat_activity where query = 'select buildlog.aggregate(4)' and state = 'active')),
		'1', 'the writer returned while aggregate() still waits on S3: it was not blocked');

	# the request timeout (8 s), not the whole s3_timeout (30 s), ends the wait
	ok(wait_until('aggregate() to give up on the silent S3', sub { $agg->pump_nb if $agg->pumpable; !$agg->pumpable }, timeout => 20),
		'aggregate() gives up within 20 s: the 8 s request timeout, not the 30 s s3_timeout');
	$agg->finish;
	like($err, qr/08006: could not read S3 object .*Operation timed out/s,
		'aggregate() gives up with a timeout error (08006)');

	# an archive worker stalled in an upload holds the log's row: aggregate()
	# waits for it without holding the job's lock, so writers still pass
	write_job(9, 5);
	ok(scalar($sel->can_read(60)), 'an archive worker connected to the stalled endpoint to upload job 9');
	push @held, $hole->accept;
	ok($node->poll_query_until('postgres', 'select count(*) = 1 from buildlog.archive_stats where in_flight = 9'),
		'the upload of job 9 is in flight (its row locked)');
	$node->safe_psql('postgres', q(select buildlog.write_parts('{9}', '{10}', array[gen(9, 10)], '{f}')));
	($out, $err) = ('', '');
	$agg = IPC::Run::start(
		[ 'psql', '-X', '-At', '-d', $node->connstr('postgres'), '-c', 'select buildlog.aggregate(9)' ],
		'>', \$out, '2>', \$err);
	ok($node->poll_query_until('postgres', q(
select count(*) = 1 from pg_stat_activity
 where query = 'select buildlog.aggregate(9)' and wait_event_type = 'Lock')),
		'aggregate(9) waits for the row the archive worker holds');
	($ret, $wout, $werr) = $node->psql('postgres', q(
select parts from buildlog.write_parts('{9}', '{11}', array[gen(9, 11)], '{f}')));
	is("$ret $wout", '0 1', 'a writer of job 9 stores its part while aggregate() waits behind the upload');
	is($node->safe_psql('postgres', q(
select count(*) from pg_stat_activity
 where query = 'select buildlog.aggregate(9)' and wait_event_type = 'Lock')),
		'1', 'the writer returned while aggregate(9) still waits for the upload: it was not blocked');
	ok(wait_until('aggregate(9) to return once the upload gave up', sub { $agg->pump_nb if $agg->pumpable; !$agg->pumpable }),
		'aggregate(9) returned once the upload gave up');
	$agg->finish;
	is($out, "2\n", 'once the upload gave up, aggregate(9) merged both parts');
	close($_) for grep { defined } @held;
	close($hole);

	$node->safe_psql('postgres', qq(
alter system set buildlog.s3_endpoint = '$endpoint';
alter system reset buildlog.s3_request_timeout;
select pg_reload_conf();));
	ok($node->poll_query_until('postgres', "select current_setting('buildlog.s3_endpoint') = '$endpoint'"),
		'endpoint back to s3rver');
	is($node->safe_psql('postgres', 'select buildlog.aggregate(4)'), '2', 'S3 back: both late parts merged');
	is($node->safe_psql('postgres', q(select md5(buildlog.log(4)) = md5(expected(4, 20) || gen(4, 30) || gen(4, 31)))),
		't', 'the log is the restored archive with both late parts at their places');
}

# ---------------------------------------------------------------- removal deletes the archive
my $key = sub { $node->safe_psql('postgres', "select buildlog.s3_key($_[0])") };
my $head = sub { $node->safe_psql('postgres', "select outcome from buildlog.s3_head(buildlog.s3_key($_[0]))") };
{
	# a purged log removed: the object goes, proven, counted
	write_job(5, 20);
	write_job(7, 20);
	write_job(8, 20);
	wait_purged(5);
	wait_purged(7);
	wait_purged(8);
	is($head->(5), 'ok', 'the archive of job 5 exists');
	my @r = split /\n/, $node->safe_psql('postgres', q(
begin;
select buildlog.set_content(5, null, 42);
select deleting from buildlog.lifecycle;
select deletions_pending from buildlog.archive_stats limit 1;
select buildlog.fetch(5) is null;
commit;));
	is("@r", '0 1 1 t', 'removal: a pending deletion in lifecycle and archive_stats; fetch() returns NULL at once');
	ok($node->poll_query_until('postgres', q(
select archive_delete_since is null and archive_deleted_at is not null and not archive_object
  from buildlog.logs where job_id = 5)),
		'the archive workers deleted the object and recorded it');
	is($head->(5), 'not_found', 'the object of the removed log is gone (HEAD 404)');
	is($node->safe_psql('postgres', 'select deleted, deletions_pending from buildlog.archive_stats limit 1'),
		'1|0', 'archive_stats: 1 deleted, none pending');

	# a replaced log (archived, not purged): never served old, old object deleted, new archived
	set_conf('buildlog.purge_delay', '1h');
	write_job(6, 20);
	ok($node->poll_query_until('postgres', 'select archived_at is not null from buildlog.logs where job_id = 6'),
		'job 6 archived');
	is($node->safe_psql('postgres', q(
select buildlog.set_content(6, 'replacement text', 7);
select buildlog.fetch(6);)), "0\nreplacement text", 'replaced: fetch() serves the new content at once');
	ok($node->poll_query_until('postgres', q(
select archive_deleted_at is not null and archived_at is not null and archive_delete_since is null
  from buildlog.logs where job_id = 6)),
		'replaced: the old object was deleted first, then the new content archived');
	is($node->safe_psql('postgres', q(select convert_from(buildlog.s3_get(buildlog.s3_key(6)), 'UTF8'))),
		'replacement text', 'replaced: the object holds the new content');
	set_conf('buildlog.purge_delay', '1s');

	# S3 down: retried with back-off, never forgotten, across a restart
	system("$root/script/stack", 'stop', 's3') == 0 or die 'stopping s3rver failed';
	$node->safe_psql('postgres', 'select buildlog.set_content(7, null, 42)');
	ok($node->poll_query_until('postgres', q(
select archive_delete_attempts >= 2 and archive_delete_after > now() from buildlog.logs where job_id = 7)),
		'S3 down: the deletion failed, is counted in the row and waits for its back-off');
	$node->restart;
	is($node->safe_psql('postgres', q(
select l.archive_delete_since is not null and v.deleting = 1
  from buildlog.logs l, buildlog.lifecycle v where l.job_id = 7)),
		't', 'after a restart the deletion is still pending (state in the row)');
	system("$root/script/stack", 'start', 's3') == 0 or die 'starting s3rver failed';
	$node->safe_psql('postgres', 'update buildlog.logs set archive_delete_after = now() where job_id = 7');
	ok($node->poll_query_until('postgres',
			'select archive_deleted_at is not null and archive_delete_since is null from buildlog.logs where job_id = 7'),
		'S3 back: the deletion was made and proven');
	is($head->(7), 'not_found', 'the object of job 7 is gone');

	# a late part after removing a purged log: the old archive is never restored
	@r = split /\n/, $node->safe_psql('postgres', q(
select buildlog.set_content(8, null, 42);
select buildlog.write_parts('{8}', '{99}', array['late text'], '{f}');
select requests from buildlog.s3_client_stats();
select coalesce(buildlog.aggregate(8), -1);
select requests from buildlog.s3_client_stats();
select position('job 8 part' in coalesce(buildlog.log(8), ''));));
	is("$r[1] $r[2] $r[4] $r[5]", "(0,9,0) 0 0 0",
		'late part after removal: not stored, aggregate() sends no S3 request, the removed text does not come back');
	ok($node->poll_query_until('postgres',
			'select archive_deleted_at is not null and archive_delete_since is null and archived_at is null from buildlog.logs where job_id = 8'),
		'the old object of job 8 was deleted and nothing was archived in its place');
	is($head->(8), 'not_found', 'the object of job 8 is gone');
}

# ---------------------------------------------------------------- redact()
# a purged log is restored, redacted, archived again over the old object,
# verified and purged; the object never keeps the secret once that is done
{
	$node->safe_psql('postgres', q(
select buildlog.write_parts('{20,20,20}', '{0,1,2}',
  array[E'$ export TOKEN=hunter2\n', E'ok\n', E'echo hunter2\n'], '{f,f,t}');
select buildlog.aggregate(20);));
	wait_purged(20);
	# seen in redact()'s own transaction: once it commits, the archive worker
	# may archive the log again at any moment
	my @r = split /\n/, $node->safe_psql('postgres', q(
begin;
select buildlog.redact(20, 'hunter2', '[REDACTED]');
select content is not null and purged_at is null and archived_at is null from buildlog.logs where job_id = 20;
commit;));
	is($r[0], '2', 'redact() of a purged log: two parts changed');
	is($r[1], 't', 'redact(): the redacted text is back in the database, to be archived again');
	wait_purged(20);
	is($node->safe_psql('postgres', q(select convert_from(buildlog.s3_get(buildlog.s3_key(20)), 'UTF8'))),
		"\$ export TOKEN=[REDACTED]\nok\necho [REDACTED]\n",
		'redact(): the object at the same key now holds the redacted log');
	is($node->safe_psql('postgres', q(select string_agg(content, '' order by number) from buildlog.parts(20))),
		"\$ export TOKEN=[REDACTED]\nok\necho [REDACTED]\n",
		'redact(): parts() of the purged log reads the redacted parts');
}

$node->stop;
unlike(slurp_file($node->logfile), qr/\Q$secret\E|\Q$secret2\E|S3RVER/,
	'no key ever appears in the server log (reloads included)');
done_testing();
