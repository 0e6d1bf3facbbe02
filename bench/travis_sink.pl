#!/usr/bin/env perl
# Load generator of bench/travis_sink.sh: CLIENTS processes, each sending
# BATCHES batches of JOBS jobs x PARTS parts of SIZE bytes, one after the
# other, as travis-worker's HTTP sink does (--mode sink: one POST
# /log-parts/multi of all the batch's parts, "token sig:" signed, each part
# with its job's token) or as buildlog's own batch route takes them (--mode
# parts: one POST /jobs/{id}/parts of NDJSON per job of the batch, its token
# as Bearer).  Every answer must be 204 (sink) or 200 (parts).  Prints
# "parts P seconds S requests R".
use strict;
use warnings;
use Getopt::Long;
use HTTP::Tiny;
use JSON::PP;
use MIME::Base64;
use Digest::SHA qw(sha1_hex);
use Time::HiRes qw(time);

my %o = (mode => 'sink', clients => 8, batches => 50, jobs => 10, parts => 10, size => 200, first => 1);
GetOptions(\%o, 'port=i', 'tokens=s', 'mode=s', 'clients=i', 'batches=i', 'jobs=i', 'parts=i', 'size=i')
  or die "usage: $0 --port P --tokens FILE [--mode sink|parts] [--clients N] [--batches N] [--jobs N] [--parts N] [--size B]\n";
my %tok = map { chomp; split / / } do { open(my $f, '<', $o{tokens}) or die "$o{tokens}: $!"; <$f> };
my @jobs = sort { $a <=> $b } keys %tok;
die "need $o{clients} x $o{jobs} job tokens, got " . scalar(@jobs) . "\n" if @jobs < $o{clients} * $o{jobs};
my $base = "http://127.0.0.1:$o{port}";
my $line = substr(('0123456789abcdef' x (1 + $o{size} / 16)), 0, $o{size} - 1) . "\n";
my $t0 = time;
my @pids;
for my $c (0 .. $o{clients} - 1)
{
	my $pid = fork() // die "fork: $!";
	if ($pid) { push @pids, $pid; next; }
	my $http = HTTP::Tiny->new(keep_alive => 1, timeout => 60);
	my @mine = @jobs[ $c * $o{jobs} .. ($c + 1) * $o{jobs} - 1 ];
	my $n = 0;
	for my $b (0 .. $o{batches} - 1)
	{
		if ($o{mode} eq 'sink')
		{
			my @parts;
			for my $j (@mine)
			{
				push @parts, map { { '@type' => 'log_part', job_id => $j + 0, number => $n + $_, content => encode_base64($line, ''),
					encoding => 'base64', final => JSON::PP::false, tok => $tok{$j} } } 0 .. $o{parts} - 1;
			}
			my $res = $http->request('POST', "$base/log-parts/multi?source=worker",
				{ headers => { 'Content-Type' => 'application/json', Authorization => 'token sig:' . sha1_hex(join('', map { $_->{tok} } @parts)) },
				  content => encode_json(\@parts) });
			die "sink: $res->{status} $res->{content}\n" unless $res->{status} == 204;
		}
		else
		{
			for my $j (@mine)
			{
				my $body = join('', map { encode_json({ id => $j + 0, number => $n + $_, log => encode_base64($line, ''), encoding => 'base64',
					final => JSON::PP::false }) . "\n" } 0 .. $o{parts} - 1);
				my $res = $http->request('POST', "$base/jobs/$j/parts",
					{ headers => { 'Content-Type' => 'application/x-ndjson', Authorization => "Bearer $tok{$j}" }, content => $body });
				die "parts: $res->{status} $res->{content}\n" unless $res->{status} == 200;
			}
		}
		$n += $o{parts};
	}
	exit 0;
}
my $failed = 0;
for (@pids) { waitpid($_, 0); $failed++ if $? != 0; }
die "$failed clients failed\n" if $failed;
my $secs = time - $t0;
my $parts = $o{clients} * $o{batches} * $o{jobs} * $o{parts};
my $requests = $o{clients} * $o{batches} * ($o{mode} eq 'sink' ? 1 : $o{jobs});
printf "parts %d seconds %.3f requests %d\n", $parts, $secs, $requests;
