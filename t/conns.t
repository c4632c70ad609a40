#!/usr/bin/perl
# 1000 connections held open at once (-c 2000), each doing a set and a
# get; then they all close and the server lets them go.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;

my $NCONN = 1000;
my $NEED = $NCONN + 200;

# we need more than 1000 file descriptors: raise the soft limit by
# re-running this test under "ulimit -n" when the hard limit allows
sub fd_limits {
    my $soft = `sh -c 'ulimit -Sn' 2>/dev/null`;
    my $hard = `sh -c 'ulimit -Hn' 2>/dev/null`;
    chomp($soft, $hard);
    $_ = ($_ eq 'unlimited' ? 1e9 : ($_ =~ /^\d+$/ ? $_ : 0))
        for $soft, $hard;
    return ($soft, $hard);
}
my ($soft, $hard) = fd_limits();
if ($soft < $NEED) {
    if ($hard >= $NEED && !$ENV{MEMCTEST_CONNS_REEXEC}) {
        my $want = $hard < 4096 ? $hard : 4096;
        $ENV{MEMCTEST_CONNS_REEXEC} = 1;
        my @inc = map { ('-I', $_) } grep { !ref } @INC;
        exec('sh', '-c', "ulimit -n $want && exec \"\$0\" \"\$@\"",
             $^X, @inc, $0, @ARGV);
        die "exec failed: $!";
    }
    plan skip_all => "needs $NEED open files, limit is $soft (hard $hard)";
}

my $srv = MemcTest->start('-c', '2000');
is($srv->stats('settings')->{maxconns}, 2000, '-c 2000: maxconns 2000');

my $base = $srv->stats->{curr_connections};
my @socks;
for my $i (1 .. $NCONN) {
    my $s = eval { $srv->new_sock(timeout => 10) };
    last unless $s;
    push @socks, $s;
}
is(scalar @socks, $NCONN, "$NCONN connections opened");

# every connection stores its own key ...
for my $i (0 .. $#socks) {
    $srv->send("set conn$i 0 0 " . length("value$i") . "\r\nvalue$i\r\n",
               $socks[$i]);
}
my $stored = 0;
for my $i (0 .. $#socks) {
    my $r = $srv->read_line($socks[$i]);
    $stored++ if defined $r && $r eq "STORED\r\n";
}
is($stored, $NCONN, 'every connection got STORED');

# ... and reads the key of another one
my $good = 0;
for my $i (0 .. $#socks) {
    my $j = ($i + 1) % @socks;
    $srv->send("get conn$j\r\n", $socks[$i]);
}
for my $i (0 .. $#socks) {
    my $j = ($i + 1) % @socks;
    my ($raw) = $srv->read_values($socks[$i]);
    $good++ if $raw eq "VALUE conn$j 0 " . length("value$j")
                       . "\r\nvalue$j\r\nEND\r\n";
}
is($good, $NCONN, 'every connection read its neighbour\'s key');

my $st = $srv->stats;
# $base may still count the start-up probe, whose close the server may
# not have seen yet: only the lower bound is exact
ok($st->{curr_connections} >= $NCONN + 1,
   "curr_connections counts them all ($st->{curr_connections})");
is($st->{rejected_connections}, 0, 'none rejected');
is($st->{curr_items}, $NCONN, "$NCONN items");

close $_ for @socks;
@socks = ();
ok(MemcTest::wait_until(sub {
    $srv->stats->{curr_connections} <= $base + 1 }, 10,
    'connections to be released'), 'all released after close');
like($srv->cmd('version'), qr/\AVERSION /, 'server answers');
is(scalar $srv->mem_get('conn999'), 'value999', 'data intact');

done_testing();
