#!/usr/bin/perl
# A replicated write the receiver cannot store (issue #17): B runs with
# less memory and -M, so it must refuse some of A's large values.  The
# stale value B held for such a key must not survive, B counts and logs
# the failure, and A's repl_wait answers FAILED for exactly the writes B
# does not hold (it used to answer OK for all of them, while B kept the
# old value and the link said linked).  The handshake warns that -m and
# -M differ.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;
use MemcPair;

require_pair_build();

my ($A, $B) = start_pair(linked => 1, args_b => ['-m', '4', '-M']);
is(stat_of($A, 'limits_differ'), 'yes', 'A sees that -m/-M differ');
is(stat_of($B, 'limits_differ'), 'yes', 'and so does B');
like($A->log_text, qr/the peer runs with -m 4 MB -M, this node with -m 64/,
     'A warns at the handshake');

# a small value on both nodes, then B's memory fills up with large ones
is($A->mem_set('sess', 'old'), "STORED\r\n", 'sess=old on A');
ok(wait_value($B, 'sess', 'old', 10), 'and on B');

my $big = 'v' x 100_000;
my (%ok, %failed, @other);
my $s = $A->new_sock;
for my $i (1 .. 60) {
    my $k = "big$i";
    $A->send("set $k 0 0 " . length($big) . "\r\n$big\r\n", $s);
    my $r = $A->read_line($s) // '';
    is($r, "STORED\r\n", "$k stored on A") or last;
    $A->send("repl_wait 5000\r\n", $s);
    my $w = $A->read_line($s) // '';
    if ($w eq "OK\r\n") {
        $ok{$k} = 1;
    } elsif ($w eq "FAILED\r\n") {
        $failed{$k} = 1;
    } else {
        push @other, "$k: $w";
    }
}
is_deeply(\@other, [], 'repl_wait answered OK or FAILED for every write');
cmp_ok(scalar keys %failed, '>', 0,
       scalar(keys %ok) . ' OK, ' . scalar(keys %failed) . ' FAILED');

# what A was told matches what B holds
my @ok_missing = grep { !defined $B->mem_get($_) } sort keys %ok;
my @failed_held = grep { defined $B->mem_get($_) } sort keys %failed;
is_deeply(\@ok_missing, [], 'every write answered OK is on B');
is_deeply(\@failed_held, [], 'no write answered FAILED is on B');

# the stale small value must not survive a large write B cannot hold
$A->send("set sess 0 0 " . length($big) . "\r\n$big\r\nrepl_wait 5000\r\n",
         $s);
is($A->read_line($s), "STORED\r\n", 'sess set to a large value on A');
my $w = $A->read_line($s) // '';
is($w, "FAILED\r\n", 'repl_wait: FAILED (B is full)');
my $got = $B->mem_get('sess');
ok(!defined $got || $got eq $big, 'B does not serve the old sess')
    or diag('B has sess=' . $got);

my $fails = stat_of($B, 'store_failures') // 0;
cmp_ok($fails, '>=', scalar(keys %failed) + 1, "B counted $fails failures");
is(stat_of($A, 'peer_store_failures'), $fails,
   'A counted the same number of NAKs');
like($B->log_text, qr/out of memory for a record/, 'B logged it');
is(stat_of($A, 'link_state'), 'linked', 'the link stays up');

# a later write that fits is stored and acknowledged as usual
$A->send("set small 0 0 2\r\nhi\r\nrepl_wait 5000\r\n", $s);
is($A->read_line($s), "STORED\r\n", 'a small write');
is($A->read_line($s), "OK\r\n", 'repl_wait OK');
is(scalar $B->mem_get('small'), 'hi', 'B has it');
done_testing();
