#!/usr/bin/perl
# `stats replication digest`: an order-independent hash of every live
# item (key, value, flags, deadline, version), equal on both nodes of a
# pair that hold the same data, and different as soon as one item differs.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;
use MemcPair;

require_pair_build();

sub digest {
    my ($node) = @_;
    my $s = $node->stats('replication digest');
    return ($s->{digest}, $s->{digest_items});
}

my ($A, $B) = start_pair(linked => 1);

my ($d0a, $n0a) = digest($A);
my ($d0b, $n0b) = digest($B);
is($n0a, 0, 'empty node: 0 items');
is($d0a, $d0b, 'two empty nodes: same digest');

# Writes on both sides, of every kind.
my $batch_a = join '', map { sprintf("set a%d %d 0 6 noreply\r\nva%04d\r\n",
                                      $_, $_, $_) } 1 .. 500;
my $batch_b = join '', map { sprintf("set b%d 0 100 6 noreply\r\nvb%04d\r\n",
                                      $_, $_) } 1 .. 500;
$A->send($batch_a);
$B->send($batch_b);
$A->cmd('version');
$B->cmd('version');
$A->mem_set('n7', '41');
is($A->cmd('incr n7 1'), "42\r\n", 'incr on A');
$B->cmd("delete a9");
$A->cmd("touch b3 500");
$B->send("append a11 0 0 1\r\nZ\r\n");
is($B->read_line, "STORED\r\n", 'append on B');

my ($da, $na, $db, $nb);
my $ok = MemcTest::wait_until(sub {
    ($da, $na) = digest($A);
    ($db, $nb) = digest($B);
    return $da eq $db && $na == $nb && $na >= 1000;
}, 15, 'digests to agree');
ok($ok, "after writes on both nodes the digests agree ($na items)")
    or diag("A $da/$na, B $db/$nb");
like($da, qr/\A[0-9a-f]{16}\z/, 'digest is 16 hex digits');
isnt($da, $d0a, 'and differs from the empty digest');

# The digest does not move without a change ...
is((digest($A))[0], $da, 'stable when nothing changes');

# ... and moves with any change of value, flags or deadline.
$A->mem_set('a1', 'changed', 1);
my ($d1) = digest($A);
isnt($d1, $da, 'a new value changes the digest');
ok(MemcTest::wait_until(sub { (digest($B))[0] eq (digest($A))[0] }, 10,
                        'B to follow'), 'B follows the change');
my ($before) = digest($A);
$A->cmd('touch a2 999');
isnt((digest($A))[0], $before, 'a new deadline changes the digest');
ok(MemcTest::wait_until(sub { (digest($B))[0] eq (digest($A))[0] }, 10,
                        'B to follow the touch'), 'B follows the touch');

# A digest of many items is summed a slice of the table per event-loop
# turn: another client of the same worker (-t 1) is answered meanwhile,
# and a request pipelined behind the digest is answered after it.
{
    my $n = 400_000;
    my $s = MemcTest->start('-t', '1', '-m', '256');
    like(MemcPair::preload_noreply($s, $n, sub { ("k$_[0]", 'v') }),
         qr/^VERSION /, "single node: $n items stored");
    my $ref = $s->stats('replication digest');
    is($ref->{digest_items}, $n, "single node: $n items in the digest");
    my $version = $s->cmd('version');
    my ($meanwhile, $reply) = (0, '');
    # Three tries: this process may be descheduled for the whole digest
    # between its two sends on a busy machine.
    for my $try (1 .. 3) {
        my ($x, $y) = ($s->new_sock, $s->new_sock);
        $s->send("stats replication digest\r\nversion\r\n", $x);
        my $v = $s->cmd('version', $y);
        my $rin = '';
        vec($rin, fileno($x), 1) = 1;
        my $x_pending = select(my $rout = $rin, undef, undef, 0) == 0;
        $reply = '';
        while (defined(my $l = $s->read_line($x))) {
            $reply .= $l;
            last if $l =~ /^VERSION /;
        }
        if ($v eq $version && $x_pending) {
            $meanwhile = 1;
            last;
        }
    }
    ok($meanwhile, 'another client of the worker is answered while a '
                   . 'digest runs');
    is($reply, "STAT digest $ref->{digest}\r\nSTAT digest_items $n\r\n"
               . "END\r\n$version",
       'the digest reply is whole and unchanged, and the pipelined '
       . 'request follows it');
    $s->stop;
}

done_testing();
