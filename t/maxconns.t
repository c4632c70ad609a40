#!/usr/bin/perl
# -c with maxconns_fast (the default): a burst of connections arriving
# faster than the workers take them in must be cut at the same count as
# connections opened one at a time; the surplus is told "ERROR Too many
# open connections" and counted in rejected_connections.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use MemcTest;

my $srv = MemcTest->start('-c', '30', '-t', '4');
my $stat = $srv->sock;

sub curr { $srv->stats(undef, $stat)->{curr_connections} }

# Ask each socket for its version: 1 when served, 0 when refused.
sub served {
    my ($s) = @_;
    local $MemcTest::IO_TIMEOUT = 10;
    my $l = eval { $srv->cmd('version', $s) } // '';
    return $l =~ /\AVERSION / ? 1 : 0;
}

sub close_all {
    my ($socks) = @_;
    close $_ for @$socks;
    ok(wait_until(sub { curr() == 1 }, 20), 'all closed again');
}

# one at a time: the reference count
my @one;
for (1 .. 40) {
    my $s = $srv->new_sock;
    push @one, $s;
    last unless served($s);
}
my $limit = grep { served($_) } @one;
ok($limit > 0 && $limit < 30, "one at a time: $limit served");
my $rej0 = $srv->stats(undef, $stat)->{rejected_connections};
ok($rej0 >= 1, 'and the one over the limit was rejected');
close_all(\@one);

# bursts: connect 80 without waiting for any answer, then ask each
for my $round (1 .. 5) {
    my @burst;
    for (1 .. 80) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $srv->{port},
                                      Proto => 'tcp', Timeout => 5);
        push @burst, $s if $s;
    }
    my $n = grep { served($_) } @burst;
    is($n, $limit, "burst $round: $limit of " . scalar(@burst)
                   . ' served, as one at a time');
    my $rej = $srv->stats(undef, $stat)->{rejected_connections};
    ok($rej >= $rej0 + @burst - $limit, "burst $round: the rest rejected");
    $rej0 = $rej;
    close_all(\@burst);
}

done_testing();
