#!/usr/bin/perl
# -o slab_hugepages (doc/items.txt): item memory is advised for
# transparent huge pages by default, and not with slab_hugepages=0.
# The kernel's own count is read from /proc/PID/smaps_rollup
# (AnonHugePages) after storing 64 MB.  Only meaningful where the
# system's THP mode is "madvise" (Debian's default): there nothing else
# in the process gets huge pages.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;

my $mode = eval {
    MemcTest::slurp('/sys/kernel/mm/transparent_hugepage/enabled') } // '';
plan skip_all => "THP mode is not madvise here ($mode)"
    unless $mode =~ /\[madvise\]/;
plan skip_all => 'no /proc/self/smaps_rollup' unless -r '/proc/self/smaps_rollup';

sub huge_kb {
    my ($pid) = @_;
    my $s = MemcTest::slurp("/proc/$pid/smaps_rollup");
    return $s =~ /^AnonHugePages:\s+(\d+) kB/m ? $1 : undef;
}

sub fill_and_measure {
    my (@args) = @_;
    my $srv = MemcTest->start('-m', '256', @args);
    my $v = 'v' x 4000;
    for my $chunk (0 .. 15) {
        $srv->send(join '', map { "set k$chunk.$_ 0 0 4000 noreply\r\n$v\r\n" }
                   1 .. 1000);
    }
    my $label = @args ? "@args" : 'default';
    like($srv->cmd('version'), qr/\AVERSION /, "$label: 16000 x 4 KB stored");
    my $kb = huge_kb($srv->pid);
    my $setting = $srv->stats('settings')->{slab_hugepages};
    $srv->stop;
    return ($kb, $setting);
}

my ($on, $s_on) = fill_and_measure();
is($s_on, 'yes', 'default: stats settings slab_hugepages yes');
cmp_ok($on // 0, '>=', 2048,
       "default: item memory is in huge pages (AnonHugePages $on kB)");

my ($off, $s_off) = fill_and_measure('-o', 'slab_hugepages=0');
is($s_off, 'no', 'slab_hugepages=0: stats settings says no');
is($off, 0, 'slab_hugepages=0: no huge pages at all');

for my $bad ('2', 'yes', '') {
    my $srv = eval { MemcTest->start('-o', "slab_hugepages=$bad") };
    ok(!$srv, "slab_hugepages=$bad refused");
    like($@, qr/slab_hugepages/, "slab_hugepages=$bad: the message names it");
    $srv->stop if $srv;
}

done_testing();
