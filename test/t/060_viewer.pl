# The log viewer page (GET /jobs/{id}) in a real browser: Debian's chromium
# driven by puppeteer-core (test/browser/viewer.test.js, which prints TAP
# passed on here).  Jobs: 1 every SGR kind, \r, erase, links, the four
# section dialects and parts with distinct arrival times; 2 a hostile log;
# 3 a running job the script extends (out of order, across a terminated
# HTTP worker) while the page follows it; 4 20,000 lines to search; 5 a log
# archived to S3 and purged; 6 sections in their producers' byte shapes
# (markers inside lines, several on a line, split across parts), 7 Buildkite
# groups with the agent's timestamps, 8 a running log whose fold end marker
# is split between parts; 9 a removed log; 10 a running log read with
# buildlog.http_read_tokens on; 11-13 logs set whole (set_content: the
# head, part -1): 11 colours, a fold, CJK and emoji, 12 30,000 lines archived
# and purged, 13 a head given late parts while the page watches; 14 hostile
# sections (40,000 never ended, 40,000 ends matching none, 40,000 links);
# 15-17 logs replaced while the page watches them (set whole again,
# restarted, removed).  Jobs 1, 2 and 4 are aggregated first.
# Screenshots land in the test's log folder.
use strict;
use warnings;
use BuildlogTest;
use BuildlogArchive;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my ($root) = need_env('BUILDLOG_ROOT');
my $puppeteer = "$root/.tools/node_modules/puppeteer-core";
-d $puppeteer or BAIL_OUT("$puppeteer missing: run script/bootstrap");
-x '/usr/bin/chromium' or BAIL_OUT('/usr/bin/chromium missing: run script/bootstrap');
my ($s3) = need_env('BUILDLOG_S3_ENDPOINT');
my $bucket = $ENV{BUILDLOG_S3_BUCKET} // 'buildlog';
# the key of read tokens (buildlog.http_read_tokens is turned on by the browser script, last)
my $secrets = PostgreSQL::Test::Utils::tempdir();
open(my $fh, '>', "$secrets/token.key") or die $!;
print $fh join('', map { sprintf('%02x', int(rand(256))) } 1 .. 32), "\n";
close($fh);
chmod 0600, "$secrets/token.key";
# the archive worker on (job 5 is archived and purged: read back from S3)
my ($node, $base) = http_node('viewer', qq(buildlog.aggregate_delay = '1h'
buildlog.archive_workers = 1
buildlog.purge_delay = '1s'
buildlog.s3_endpoint = '$s3'
buildlog.s3_bucket = '$bucket'
buildlog.s3_access_key = 'S3RVER'
buildlog.s3_secret_key = 'S3RVER'
buildlog.s3_prefix = 't060/'
buildlog.http_token_key_file = '$secrets/token.key'
));
my $shots = "$PostgreSQL::Test::Utils::log_path/060_viewer_screenshots";
mkdir $shots;

# write_parts_of(JOB, [PARTS], FINAL): parts 0.. of JOB (SQL text literals), the last final if FINAL
sub write_parts_of
{
	my ($job, $parts, $final) = @_;
	my $n = @$parts;
	$node->safe_psql('postgres', sprintf(
			"select buildlog.write_parts(array_fill(%d::bigint, array[%d]), array(select generate_series(0, %d)), array[%s], array(select x = %d from generate_series(0, %d) x))",
			$job, $n, $n - 1, join(',', @$parts), $final ? $n - 1 : -1, $n - 1));
}

write_parts_of(1, [
	q{E'plain line\n\x1b[31mred\x1b[0m \x1b[1;32mboldgreen\x1b[0m \x1b[38;5;196mc196\x1b[0m \x1b[38;2;1;2;3mrgb\x1b[0m \x1b[3mital\x1b[0m \x1b[4munder\x1b[0m \x1b[2mfaint\x1b[0m \x1b[7minv\x1b[0m \x1b[44mbgblue\x1b[0m\n\x1b[35mcarried\nover\x1b[0m after\n'},
	q{E'travis_fold:start:install\r\x1b[0Ktravis_time:start:abc\r\x1b[0K$ bundle install\ninside 1\ninside 2\ntravis_time:end:abc:start=1,finish=2,duration=1234000000\r\x1b[0Ktravis_fold:end:install\r\x1b[0K\n'},
	q{E'\x1b[0Ksection_start:1000:build[collapsed=true]\r\x1b[0KBuilding\nbuild 1\n\x1b[0Ksection_end:1042:build\r\x1b[0K\n::group::My group\ngroup line\n::endgroup::\n--- bk one\nbk line\n+++ bk two\nbk2 line\n'},
	q{E'progress 10%\rprogress 50%\rprogress 100%\nabcdef\r\x1b[Kxy\nsee https://example.com/a?b=1. and \x1b]8;;https://example.org/\x1b\\\\osc link\x1b]8;;\x1b\\\\\n' || (select string_agg('filler ' || x, E'\n') from generate_series(22, 40) x) || E'\n--- a/file.c\n+++ b/file.c\n'},
	q{''} ], 1);
# distinct arrival times per part (same day: the partition stays)
$node->safe_psql('postgres', q{update buildlog.log_parts set created_at = created_at - (4 - number) * interval '1 minute 1.5 s' where job_id = 1});
write_parts_of(2, [
	q{E'<script>window.__pwned=1</script>\n"><img src=x onerror="window.__pwned=2"> \'><svg onload=window.__pwned=3>\n<svg><script>window.__pwned=4</script></svg>\n'},
	q{E'\x1b]8;;javascript:window.__pwned=5\x1b\\\\click\x1b]8;;\x1b\\\\ \x1b]8;;data:text/html,<script>alert(1)</script>\x1b\\\\data\x1b]8;;\x1b\\\\ javascript:alert(1)\nbidi \u202Eevil\u202C \u2066iso\u2069 ctl\x01\x07\x7f\n'},
	q{repeat(E'\x1b[1m', 10000) || E'deep\x1b[0m\n\x1b[38;5;999999999mhuge\x1b[0m \x1b[38;2;999;999;999mbad\x1b[0m\n' || repeat('A', 200000) || E'\n'},
	q{''} ], 1);
write_parts_of(3, [ map { "E'live $_\\n'" } 0 .. 2 ], 0);
write_parts_of(4, [ map { my $p = $_; qq{(select string_agg(case x when 15000 then 'a NEEDLE here' when 17000 then 'needle again' else 'row ' || x end, E'\\n') || E'\\n' from generate_series($p * 1000 + 1, $p * 1000 + 1000) x)} } 0 .. 19 ], 1);

# sections as travis-build, gitlab-runner and the GitHub runner write them:
# a fold's end marker and the next command on one physical line, markers
# split across parts (travis_fold:en|d, \r|\e[0K, section_st|art), nested
# folds, an end marker mid-line, an end without a start, a start never ended
write_parts_of(6, [
	q{E'travis_fold:start:install\r\x1b[0Ktravis_time:start:0f1e2d3c\r\x1b[0K$ bundle install\nFetching gems\nBundle complete!\ntravis_time:end:0f1e2d3c:start=1000,finish=2500001000,duration=2500000000\r\x1b[0Ktravis_fold:en'},
	q{E'd:install\r\x1b[0Ktravis_time:start:4e5f6a7b\r\x1b[0K$ bundle exec rake\nrake output\ntravis_time:end:4e5f6a7b:start=2500001000,finish=3700001000,duration=1200000000\r'},
	q{E'\x1b[0K\n\x1b[0Ksection_start:1700000000:prepare_script[collapsed=true]\r\x1b[0K\x1b[0K\x1b[36;1mPreparing environment\x1b[0;m\nprep 1\n\x1b[0Ksection_end:1700000003:prepare_script\r\x1b[0K\x1b[0Ksection_st'},
	q{E'art:1700000003:step_script\r\x1b[0K\x1b[0K\x1b[36;1mExecuting "step_script" stage\x1b[0;m\n\x1b[32;1m$ make test\x1b[0;m\nok\n\x1b[0Ksection_end:1700000010:step_script\r\x1b[0K\x1b[32;1mJob succeeded\x1b[0;m\n'},
	q{E'travis_fold:start:outer\r\x1b[0Kouter head\no1\ntravis_fold:start:inner\r\x1b[0Kinner head\ni1\nstill inner travis_fold:end:inner\r\x1b[0Kback in outer\ntravis_fold:end:outer\r\x1b[0K\ntravis_fold:end:ghost\r\x1b[0Kafter a ghost end\n::group::gh group\ngh 1\n::endgroup::\ntravis_fold:start:last\r\x1b[0K$ never ended\nl1\nl2'},
	q{''} ], 1);
write_parts_of(7, [ q{E'\x1b_bk;t=1700000000000\x07~~~ Preparing working directory\n\x1b_bk;t=1700000000100\x07prep line\n\x1b_bk;t=1700000000200\x07--- Building\n\x1b_bk;t=1700000000300\x07build line\n\x1b_bk;t=1700000000400\x07--- Testing\n\x1b_bk;t=1700000000500\x07test line\n'}, q{''} ], 1);
write_parts_of(8, [ q{E'travis_fold:start:dl\r\x1b[0K$ download\nd1\ntravis_fold:en'} ], 0);
write_parts_of(9, [ q{E'soon removed\n'}, q{''} ], 1);
$node->safe_psql('postgres', 'select buildlog.set_content(9, NULL, 42)');
write_parts_of(10, [ q{E'token line 0\n'} ], 0);

write_parts_of(5, [ q{E'\x1b[33marchived\x1b[0m line 1\n'}, q{E'archived line 2\n'}, q{''} ], 1);
$node->safe_psql('postgres', 'select buildlog.aggregate(5)');

# logs set whole (set_content): read as one part, the head (-1), before part 0.
# 11: colours, a travis fold, CJK and emoji; 12: 30,000 lines (2.5 MB),
# archived and purged (read back from S3); 13: a head given late parts
# (part 0 here, the rest while the page watches)
$node->safe_psql('postgres', q{select buildlog.set_content(11, E'imported whole\n\x1b[32m成功 success\x1b[0m ✅\ntravis_fold:start:deps\r\x1b[0K$ install 依赖 📦\ndep 1\ndep 2\ntravis_fold:end:deps\r\x1b[0K\n日本語 テキスト 🎉 done\n\x1b[1;31mlast 👍🏽 line\x1b[0m\n')});
$node->safe_psql('postgres', q{select buildlog.set_content(12, (select string_agg(case when x % 1000 = 0 then E'\x1b[36mimported ' || x || E' 中文 ✅\x1b[0m' else 'imported ' || x || ' ' || repeat('=', 70) end, E'\n') || E'\n' from generate_series(1, 30000) x))});
$node->safe_psql('postgres', q{select buildlog.set_content(13, E'head line 1\nhead line 2\n')});
write_parts_of(13, [ q{E'late 0\n'} ], 0);
# 14: hostile sections (the same log as bench/viewer.sh's job 101): 40,000
# GitLab sections started (open) and never ended, then 40,000 travis and
# GitLab end markers that match none of them, each such line with an OSC 8
# link of its own (every other one left open at the line's end)
$node->safe_psql('postgres', q{select buildlog.write_parts(array_fill(14::bigint, array[9]), array(select generate_series(0, 8)), array(
    select case when p < 4 then
      (select string_agg(E'section_start:1700000000:s' || x || E'\r\x1b[0Kstep ' || x, E'\n') || E'\n'
         from generate_series(p * 10000 + 1, p * 10000 + 10000) x)
    when p < 8 then
      (select string_agg(case when x % 2 = 0 then 'travis_fold:end:g' || x else 'section_end:1700000009:g' || x end
         || E'\r\x1b[0Kafter ' || x || E' \x1b]8;;https://e.x/' || x || E'\x1b\\\\L'
         || case when x % 2 = 0 then E'\x1b]8;;\x1b\\\\' else '' end, E'\n') || E'\n'
         from generate_series((p - 4) * 10000 + 1, (p - 4) * 10000 + 10000) x)
    else '' end from generate_series(0, 8) p), array(select p = 8 from generate_series(0, 8) p))});
# logs replaced while a page watches them (the browser script replaces them):
# 15 set whole and given part 0 (set whole again), 16 a running log
# (restarted: set_content(16, NULL), then a new run), 17 a running log (removed)
$node->safe_psql('postgres', q{select buildlog.set_content(15, E'first import 1\nfirst import 2\n')});
write_parts_of(15, [ q{E'run 0\n'} ], 0);
write_parts_of(16, [ q{E'old 0\n'}, q{E'old 1\n'}, q{E'old 2\n'} ], 0);
write_parts_of(17, [ q{E'soon removed live\n'} ], 0);
wait_query($node, 'select count(*) from buildlog.logs where job_id in (5, 12) and purged_at is not null and content is null', '2',
	'jobs 5 (aggregated) and 12 (set whole) archived to S3 and purged from the database');

# the page reads aggregated logs (and their arrival times) like pending ones
is($node->safe_psql('postgres', 'select buildlog.aggregate(1), buildlog.aggregate(2), buildlog.aggregate(4)'), '5|4|20',
	'jobs 1, 2 and 4 aggregated; job 3 stays running');

local $ENV{PGHOST} = $node->host;
local $ENV{PGPORT} = $node->port;
my ($out, $err) = ('', '');
my $ok = IPC::Run::run([ 'node', "$root/test/browser/viewer.test.js", $base, $shots, $puppeteer ],
	'>', \$out, '2>', \$err, IPC::Run::timeout(400));
my $checks = 0;
for my $line (split /\n/, $out)
{
	if ($line =~ /^(not )?ok \d+ - (.*)$/) { ok(!$1, $2); $checks++; }
	elsif ($line =~ /^# (.*)$/) { diag($1); }
}
ok($ok, 'the browser test exited cleanly') or diag($err);
cmp_ok($checks, '>=', 184, 'it ran all its checks');
ok(-s "$shots/viewer-$_.png", "screenshot viewer-$_.png written") for qw(rendering dark hostile live sections set-whole);
$node->stop;
done_testing();
