#!/usr/bin/perl
# A peer's versions and flush cutoffs are checked against the clocks
# (doc/replication.txt, "Versions from the peer").  Versions are hybrid
# logical clocks, wall-clock ms << 20 in the high bits; one near 2^64
# from the replication port used to turn the node into a black hole
# (every set STORED, every read a miss) until a local flush.  The test
# plays the peer (MemcPair::fake_peer) against one node:
#  - S, D, T with version 2^64 - 1, F 18446744073709551615 0, and a
#    version an hour ahead of a peer whose clock is ours: each closes
#    the link, is counted in bad_versions, logged with the peer's
#    address, applies nothing; the node goes on serving sets and gets;
#  - a wall clock of 2^63 in PING is clamped, not an overflow;
#  - within the margin (a minute ahead), with a peer whose clock is an
#    hour ahead, and a delayed flush_all's cutoff (an hour ahead, taking
#    effect then) with a store that follows it: all accepted.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcTest;
use MemcPair;

require_pair_build();

my $A = lone_node();
my $rport = $A->repl_port;
ok($A->wait_ready(15), 'the node serves after its initial-sync timeout');

my $MAX = '18446744073709551615';
sub now_ms { int(time * 1000) }
sub version_at { my ($ms) = @_; return $ms << 20 }
sub bad { stat_of($A, 'bad_versions') // 0 }

# sets and gets still work, and $key kept its value
sub serves {
    my ($name, $key, $want) = @_;
    my $k = "probe_" . int(rand(1e9));
    $A->mem_set($k, 'fresh');
    is(($A->item($k) // {})->{value}, 'fresh', "$name: a new set reads back");
    is(($A->item($key) // {})->{value}, $want, "$name: $key kept its value")
        if defined $key;
}

$A->mem_set('kept', 'before');
is(($A->item('kept') // {})->{value}, 'before', 'a key set locally');

my @refused = (
    ['S with version 2^64 - 1', "S s_max 0 0 $MAX 1\r\nx\r\n", 's_max'],
    ['D with version 2^64 - 1', "D kept $MAX\r\n", undef],
    ['T with version 2^64 - 1', "T kept 1 $MAX\r\n", undef],
    ['F 18446744073709551615 0', "F $MAX 0\r\n", undef],
    ['S an hour ahead of both clocks',
     'S s_hour 0 0 ' . version_at(now_ms() + 3600_000) . " 1\r\nx\r\n",
     's_hour'],
);
for my $c (@refused) {
    my ($name, $bytes, $key) = @$c;
    my $b0 = bad();
    my $s = fake_peer($rport);
    ok($s, "$name: the fake peer gets through the handshake");
    MemcTest::_write_all($s, $bytes, 2) if $s;
    ok($s && peer_closed($s), "$name: the link is closed");
    ok(wait_until(sub { bad() > $b0 }, 5), "$name: bad_versions counts it");
    like(stat_of($A, 'last_error') // '', qr/^127\.0\.0\.1:\d+: .*version/,
         "$name: last_error names the peer and the version");
    ok(!defined $A->item($key), "$name: $key was not stored") if $key;
    serves($name, 'kept', 'before');
}
like($A->log_text, qr/replication 127\.0\.0\.1:\d+: version $MAX is /,
     'the log names the peer and the version');

# a PING with a wall clock of 2^63 (an overflow before): then a record
{
    my $s = fake_peer($rport);
    MemcTest::_write_all($s, "PING 9223372036854775808\r\n"
                             . "PING $MAX\r\nS pinged 0 0 "
                             . version_at(now_ms()) . " 2\r\nok\r\n", 2);
    ok(wait_value($A, 'pinged', 'ok', 5),
       'absurd PING clocks are survived, the next record applied');
    ok($A->is_alive, 'the node is alive');
    close $s;
}

my @accepted = (
    ['a minute ahead of our clock', now_ms(), 60_000],
    ['an hour ahead, from a peer whose clock is an hour ahead',
     now_ms() + 3600_000, 3600_000],
);
for my $c (@accepted) {
    my ($name, $clock, $ahead) = @$c;
    my $b0 = bad();
    my $key = 'ok_' . $ahead;
    my $s = fake_peer($rport, clock_ms => $clock);
    MemcTest::_write_all($s, "S $key 0 0 " . version_at(now_ms() + $ahead)
                             . " 2\r\nok\r\n", 2);
    ok(wait_value($A, $key, 'ok', 5), "$name: applied");
    ok(!MemcTest::_closed($s, 0.2), "$name: the link stays up");
    is(bad(), $b0, "$name: not counted");
    close $s;
}

# A delayed flush_all: cutoff (at + 1) * 1000 << 20, an hour from now.
{
    my $at = int(time) + 3600;
    my $cutoff = version_at(($at + 1) * 1000);
    my $s = fake_peer($rport);
    MemcTest::_write_all($s, "F $cutoff $at\r\nS after_flush 0 0 "
                             . ($cutoff + 5000) . " 2\r\nok\r\n", 2);
    ok(wait_value($A, 'after_flush', 'ok', 5),
       'a delayed flush and a store just past its cutoff: applied');
    ok(!MemcTest::_closed($s, 0.2), 'the link stays up');
    close $s;
    serves('after the delayed flush', 'kept', 'before');
}

done_testing();
