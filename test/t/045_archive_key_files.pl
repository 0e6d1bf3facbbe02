# S3 keys read from files: the log is archived and read back with the keys
# of buildlog.s3_access_key_file and s3_secret_key_file; a reload to another
# key file takes effect; an unreadable file gives an error naming the
# setting and the file, never a key.  No key is visible to a member of
# pg_read_all_settings and pg_monitor (pg_settings with reset_val and
# boot_val, current_setting(), pg_stat_activity, pg_file_settings), and none
# ever appears in the server log, reloads included.
use strict;
use warnings;
use BuildlogTest;
use BuildlogArchive;
use PostgreSQL::Test::Utils;
use Test::More;

# s3rver ignores signatures, so any secret works: this one must never show
my $secret = 't045-SeCrEt-' . int(rand(1e9));
my $secret2 = 't045-OtHeR-' . int(rand(1e9));
my $keydir = PostgreSQL::Test::Utils::tempdir();
my $secret_file = "$keydir/s3_secret";
my $secret_file2 = "$keydir/s3_secret2";
my $access_file = "$keydir/s3_access";
PostgreSQL::Test::Utils::append_to_file($secret_file, "  $secret\n");
PostgreSQL::Test::Utils::append_to_file($secret_file2, "$secret2\r\n");
PostgreSQL::Test::Utils::append_to_file($access_file, "S3RVER\n");
chmod 0600, $secret_file, $secret_file2, $access_file;

# the keys only from the files (no s3_access_key, s3_secret_key)
my $node = archive_node('archive_key_files', 't045/', qq(
buildlog.s3_access_key = ''
buildlog.s3_secret_key = ''
buildlog.s3_access_key_file = '$access_file'
buildlog.s3_secret_key_file = '$secret_file'
buildlog.archive_workers = 2
buildlog.aggregate_delay = '1h'
buildlog.s3_timeout = '30s'
));
$node->safe_psql('postgres', q(
create role mon login;
grant pg_read_all_settings, pg_monitor to mon;
));

write_job($node, 1, 20);
wait_purged($node, 1, 1, 'job 1');
is($node->safe_psql('postgres', 'select md5(buildlog.fetch(1)) = md5(expected(1, 20))'), 't',
	'keys from files: the log was archived and fetch() reads it back');

# a reload with another key file: the new key is used, neither is logged
set_conf($node, 'buildlog.s3_secret_key_file' => $secret_file2);
wait_query($node, "select current_setting('buildlog.s3_secret_key_file') = '$secret_file2'", 't',
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
set_conf($node, 'buildlog.s3_secret_key_file' => "$keydir/no-such-key");
($ret, $out, $err) = $node->psql('postgres', '\\set VERBOSITY verbose
select buildlog.fetch(1)');
like($err, qr/could not open file "\Q$keydir\E\/no-such-key" named by buildlog\.s3_secret_key_file: No such file/,
	'unreadable key file: the error names the setting and the file');
set_conf($node, 'buildlog.s3_secret_key_file' => $secret_file);
wait_query($node, 'select md5(buildlog.fetch(1)) = md5(expected(1, 20))', 't',
	'key file readable again: fetch() works');

$node->stop;
unlike(slurp_file($node->logfile), qr/\Q$secret\E|\Q$secret2\E|S3RVER/,
	'no key ever appears in the server log (reloads included)');
done_testing();
