#!/usr/bin/perl
# A short run of scripts/chaos.pl (the pair under load through kill -9
# and restart, SIGSTOP past repl_timeout, and link cuts; see the script
# for what it checks).  "make chaos" runs the long version.  Set
# CHAOS_SEED to replay the fault schedule of a failed run.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;
use MemcPair;

require_pair_build();

my $script = srcdir() . '/scripts/chaos.pl';
plan skip_all => "$script not found" unless -f $script;

my $cycles = 8;
my @args = ('--cycles', $cycles, '--seconds-per-cycle', 4,
            '--repl-timeout', 1, '--clients', 3, '--rate', 200,
            '--keys', 1000, '--quiet');
push @args, '--seed', $ENV{CHAOS_SEED} if $ENV{CHAOS_SEED};

my $t0 = time;
my ($st, $out) = run_cmd([$^X, $script, @args], timeout => 200,
                         env => { MEMCACHED_BIN => memc_bin() });
my ($summary) = $out =~ /^(chaos: (?:PASS|FAIL) .*)$/m;
diag($summary // 'no summary line');
diag(sprintf 'chaos.pl ran %.0fs', time - $t0);

is($st, 0, 'chaos.pl exits 0') or diag($out);
like($summary // '', qr/^chaos: PASS cycles=$cycles /,
     "all $cycles cycles ran and passed");
like($summary // '', qr/ seed=\d+ /, 'the seed is reported');
like($summary // '', qr/ writes_acked=[1-9]\d* /, 'writes were acknowledged');
like($summary // '', qr/ lost_unexplained=0 /,
     'no lost write that a kill does not explain');
like($summary // '', qr/ lost_at_barriers=0 /,
     'every write acknowledged before a barrier was on both nodes after it');
like($summary // '', qr/ read_regressions=0 /, 'no read went back in time');
like($summary // '', qr/ digest=[0-9a-f]{16} /,
     'both nodes ended with the same digest');

done_testing();
