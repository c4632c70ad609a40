#!/usr/bin/perl
# Stream framing a peer must respect (doc/replication.txt, "Stream
# records"), played by a fake peer (MemcPair::fake_peer) against one
# node:
#  - an S record's data must end with \r\n: two other bytes there are a
#    protocol error (the record is not applied, the link is closed,
#    protocol_errors counts it), not skipped unchecked;
#  - SYNCED ends a full copy that SYNC started: SYNCED without SYNC is a
#    protocol error too, while SYNC ... SYNCED is accepted;
#  - the peer answers RESUME with one SYNC or PSYNC: a second SYNC after
#    the copy is a protocol error (the inbound state machine);
#  - after each, the node still serves and a well-behaved peer links.

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

my $V = 1 << 48;        # a version from 1970: always within the clocks

sub errors { stat_of($A, 'protocol_errors') // 0 }

# a clean goodbye, so that last_error is not the previous case's
sub reset_last_error {
    my $bye = fake_peer($rport);
    close $bye if $bye;
    return wait_until(sub { (stat_of($A, 'last_error') // '')
                            =~ /peer closed|Connection reset by peer/ }, 5);
}

# --- an S record whose data is not followed by \r\n ------------------------
{
    ok(reset_last_error(), 'last_error reset');
    my $e0 = errors();
    my $s = fake_peer($rport);
    ok($s, 'the fake peer gets through the handshake');
    MemcTest::_write_all($s, "S badterm 0 0 $V 4\r\nfineXY"
                             . "S after 0 0 " . ($V + 1) . " 2\r\nok\r\n", 2);
    ok(peer_closed($s), 'a bad terminator after the data closes the link');
    like(stat_of($A, 'last_error') // '', qr/protocol error/,
         'last_error says protocol error');
    ok(wait_until(sub { errors() > $e0 }, 5),
       'protocol_errors counts it (' . $e0 . ' -> ' . errors() . ')');
    ok(!defined $A->item('badterm'), 'the record was not applied');
    ok(!defined $A->item('after'), 'nor what followed it');
}

# --- SYNCED without SYNC --------------------------------------------------------
{
    ok(reset_last_error(), 'last_error reset');
    my $e0 = errors();
    my $s = fake_peer($rport);
    ok($s, 'the fake peer gets through the handshake');
    MemcTest::_write_all($s, "SYNCED 0\r\n", 2);
    ok(peer_closed($s), 'SYNCED without SYNC closes the link');
    like(stat_of($A, 'last_error') // '', qr/protocol error/,
         'last_error says protocol error');
    ok(wait_until(sub { errors() > $e0 }, 5), 'protocol_errors counts it');
}

# --- a second SYNC after the copy ------------------------------------------------
{
    ok(reset_last_error(), 'last_error reset');
    my $e0 = errors();
    my $s = fake_peer($rport);
    ok($s, 'the fake peer gets through the handshake');
    MemcTest::_write_all($s, "SYNC 0 0 0\r\nSYNCED 0\r\nSYNC 0 0 0\r\n", 2);
    ok(peer_closed($s), 'a second SYNC closes the link');
    like(stat_of($A, 'last_error') // '', qr/protocol error \(SYNC after/,
         'last_error says why');
    ok(wait_until(sub { errors() > $e0 }, 5), 'protocol_errors counts it');
}

# --- a well-formed copy is still accepted ---------------------------------------
{
    my $s = fake_peer($rport);
    ok($s, 'the fake peer gets through the handshake');
    MemcTest::_write_all($s, "SYNC 1 0 0\r\ns copied 0 0 $V 3\r\nabc\r\n"
                             . "SYNCED 1\r\nS live 0 0 " . ($V + 2)
                             . " 4\r\nlive\r\n", 2);
    ok(wait_value($A, 'live', 'live', 5), 'SYNC, a copy, SYNCED, a record: '
       . 'all applied');
    is(($A->item('copied') // {})->{value}, 'abc', 'the copied item is there');
    ok(!MemcTest::_closed($s, 0.2), 'and the link stays up');
    close $s;
}

$A->mem_set('still', 'serving');
is(($A->item('still') // {})->{value}, 'serving', 'the node still serves');

done_testing();
