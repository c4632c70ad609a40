#!/usr/bin/perl
# PING w<n> / PONG <n> (doc/replication.txt, "A node that was stopped"):
# a node answers a peer's wake question with PONG <n>, queued behind
# what it sent before, and answers at most 4 a second per link, so a
# peer that asks without reading cannot grow the node's queue.  The test
# plays the peer (MemcPair::fake_peer).

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
ok($A->wait_ready(15), 'the node serves after its initial-sync timeout');
my $s = fake_peer($A->repl_port);
ok($s, 'the fake peer gets through the handshake');

# one question, one answer with the same serial
MemcTest::_write_all($s, "PING w1\r\n", 2);
my $got = '';
my $pong = wait_until(sub {
    my $l = MemcTest::_read_line($s, 0.2);
    $got .= $l if defined $l;
    return $got =~ /^PONG 1\r$/m;
}, 5);
ok($pong, 'PING w1 is answered with PONG 1') or diag("read: $got");

# A flood of questions, then a record: once the record is applied the
# node has handled every question before it.
sleep 1.1;      # a new one-second window
my $n = 5000;
my $t0 = time;
MemcTest::_write_all($s, join('', map { "PING w" . ($_ + 1) . "\r\n" } 1 .. $n)
                         . "S flood 0 0 " . (1 << 48) . " 2\r\nok\r\n", 5);
ok(wait_until(sub { my $it = $A->item('flood'); $it && ref $it }, 10),
   "the node handled $n questions and the record after them");
my $secs = time - $t0;
my $out = MemcTest::_drain($s, 0.5);
my $pongs = () = $out =~ /^PONG \d+\r$/mg;
my $bound = 4 * (int($secs) + 2);
cmp_ok($pongs, '>=', 1, "at least one of $n questions answered");
cmp_ok($pongs, '<=', $bound,
       "at most 4 a second answered ($pongs in " . sprintf('%.2f', $secs)
       . " s)");
like($A->log_text, qr/asks for PONGs more than 4 times a second/,
     'the node logged the flood');
is(scalar(() = $A->log_text =~ /asks for PONGs more than/g), 1,
   '... once for the window, not once per question');
my $st = $A->repl_stats;
ok($st && $st->{link_state} ne 'connecting', 'the link stays up')
    or diag("link_state $st->{link_state}");
close $s;
done_testing();
