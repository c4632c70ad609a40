#!/usr/bin/perl
# A peer that passed the handshake but sends broken records
# (doc/replication.txt, "Stream records").  The test is that peer: one
# node, its -x pointing at a port where nothing listens, and a plain
# socket that sends PAIR and RESUME (no secret on loopback) and then
# records.  A well-formed record is applied (so the fake peer is a real
# one).  Each broken record closes the link with "protocol error" in
# last_error, creates nothing, and leaves the node serving; a value
# length beyond -I is refused at once, without waiting for the data.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcTest;
use MemcPair;

require_pair_build();

my ($port, $rport) = free_ports(2);
my ($nobody) = closed_ports(1);
my $A = MemcPair::Node->create(name => 'A', port => $port,
                               repl_port => $rport, dial => $nobody,
                               o => ['repl_initial_sync_timeout=1'],
                               args => ['-I', '1m']);
$A->spawn;
ok($A->wait_ready(15), 'the node serves after its initial-sync timeout');

# Send $bytes as the peer; true when the node closed the link within 5 s.
sub closes_on {
    my ($bytes) = @_;
    my $s = fake_peer($rport) or return 0;
    eval { MemcTest::_write_all($s, $bytes, 2) };
    return peer_closed($s);
}

{
    my $s = fake_peer($rport);
    ok($s, 'the fake peer gets through the handshake');
    MemcTest::_write_all($s, "S good 5 0 " . (1 << 48) . " 4\r\nfine\r\n", 2)
        if $s;
    ok(wait_until(sub { my $it = $A->item('good'); $it && ref $it
                            && $it->{value} eq 'fine' }, 5),
       'a well-formed S record from it is applied');
    close $s if $s;
}

my @cases = (
    ['a value length of 2^64 - 1',
     "S huge 0 0 " . ((1 << 48) + 1) . " 18446744073709551615\r\nxx\r\n"],
    ['a value length over -I (2 MB), data never sent',
     "S big 0 0 " . ((1 << 48) + 2) . " 2097152\r\n"],
    ['a value length that is not a number',
     "S nan 0 0 " . ((1 << 48) + 3) . " 12abc\r\nxx\r\n"],
    ['an unknown record type', "Q what 1 2 3\r\n"],
    ['a record line of 2 KB without a newline', 'S ' . ('k' x 2048)],
);
for my $c (@cases) {
    my ($name, $bytes) = @$c;
    # a clean goodbye first, so that last_error is not the previous case's;
    # the node is sending its full copy, so the goodbye may reach it as a
    # reset of the connection rather than an end of file
    my $bye = fake_peer($rport);
    close $bye if $bye;
    ok(wait_until(sub { (stat_of($A, 'last_error') // '')
                        =~ /peer closed|Connection reset by peer/ }, 5),
       "$name: last_error reset by a clean close");
    my $t0 = time;
    ok(closes_on($bytes), sprintf '%s: the link is closed (%.2f s)', $name,
       time - $t0);
    like(stat_of($A, 'last_error') // '', qr/protocol error/,
         "$name: last_error says protocol error");
    ok($A->is_alive, "$name: the node is still running");
}
for my $k (qw(huge big nan)) {
    ok(!defined $A->item($k), "no key '$k' was created");
}
$A->mem_set('after', 'still serving');
is($A->item('after')->{value}, 'still serving', 'the node still serves');
is($A->item('good')->{value}, 'fine', 'the applied key is intact');

done_testing();
