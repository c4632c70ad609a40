#!/usr/bin/perl
# A replicated write the receiver cannot store (issue #17): B runs with
# less memory and -M, so it must refuse some of A's large values.  The
# stale value B held for such a key must not survive, B counts and logs
# the failure, and A's repl_wait answers FAILED for exactly the writes B
# does not hold (it used to answer OK for all of them, while B kept the
# old value and the link said linked).  The handshake warns that -m and
# -M differ.  With repl_sync=1 the writer's own reply is the error, in
# the text, meta and binary protocols.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;
use MemcPair;
use MemcBin;

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

# --- repl_sync=1: the reply itself says the write is not on the peer -------
{
    my ($A, $B) = start_pair(linked => 1, args_b => ['-m', '4', '-M'],
                             o => ['repl_sync=1', 'repl_sync_timeout=5000']);
    my $s = $A->new_sock;
    my (%stored, %refused, @other);
    for my $i (1 .. 60) {
        $A->send("set big$i 0 0 " . length($big) . "\r\n$big\r\n", $s);
        my $r = $A->read_line($s) // '';
        if ($r eq "STORED\r\n") {
            $stored{"big$i"} = 1;
        } elsif ($r =~ /^SERVER_ERROR out of memory .*replication peer\r\n/) {
            $refused{"big$i"} = 1;
        } else {
            push @other, $r;
        }
    }
    is_deeply(\@other, [], 'each sync set answered STORED or SERVER_ERROR');
    cmp_ok(scalar keys %refused, '>', 0, scalar(keys %stored) . ' STORED, '
           . scalar(keys %refused) . ' SERVER_ERROR');
    is_deeply([grep { !defined $B->mem_get($_) } sort keys %stored], [],
              'every write answered STORED is on B');
    is_deeply([grep { defined $B->mem_get($_) } sort keys %refused], [],
              'no write answered SERVER_ERROR is');
    is(stat_of($A, 'sync_failed'), scalar(keys %refused),
       'sync_failed counts them');
    # noreply hides the error as it hides STORED; the next reply is ours
    $A->send("set nr 0 0 " . length($big) . " noreply\r\n$big\r\n"
             . "version\r\n", $s);
    like($A->read_line($s), qr/^VERSION /, 'noreply: no error line');
    # meta
    $A->send("ms mbig " . length($big) . " T0\r\n$big\r\n", $s);
    like($A->read_line($s) // '', qr/^SERVER_ERROR out of memory/,
         'ms: SERVER_ERROR');
    $A->send("ms msmall 2 T0\r\nok\r\n", $s);
    is($A->read_line($s), "HD\r\n", 'a small ms: HD');
    # binary (a connection of its own: the first byte picks the protocol)
    $s = $A->new_sock;
    my $r = bin_cmd($A, $s, 'SET', key => 'bbig', extras => set_extras(0, 0),
                    value => $big);
    is($r && $r->{status}, $ST{ENOMEM}, 'binary SET: Out of memory');
    $r = bin_cmd($A, $s, 'SET', key => 'bsmall', extras => set_extras(0, 0),
                 value => 'ok');
    is($r && $r->{status}, $ST{SUCCESS}, 'a small binary SET: success');
    is(scalar $B->mem_get('bsmall'), 'ok', 'on B');
}
done_testing();
