#!/usr/bin/perl
# Meta stale marks and recache tokens cross the link (issue #17): an item
# invalidated on one node (md I, ms I) must be served stale (X) by the
# other too, and a recache token handed out on one node (W, from mg N,
# R or a stale item) must make the other answer Z, so that exactly one
# client of the pair recaches and nobody takes an invalidated or
# vivified-empty item for fresh.  They used to stay on the node that
# set them.  Each step runs on one connection followed by repl_wait, so
# the peer has applied it before the other node is asked (once).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;
use MemcPair;

require_pair_build();

# Send meta commands (each "cmd" or ["cmd", data]) on one connection of
# $node, then repl_wait; returns the replies (values dropped) and the
# repl_wait answer.
sub act {
    my ($node, @cmds) = @_;
    my $s = $node->new_sock;
    my @r;
    for my $c (@cmds) {
        my ($line, $data) = ref $c ? @$c : ($c);
        $node->send("$line\r\n" . (defined $data ? "$data\r\n" : ''), $s);
        my $l = $node->read_line($s) // '';
        if ($l =~ /^VA (\d+)(.*)\r\n/) {
            $node->read_bytes($1 + 2, $s);
            $l = "VA$2";
        }
        $l =~ s/\r\n\z//;
        push @r, $l;
    }
    $node->send("repl_wait 5000\r\n", $s);
    my $w = $node->read_line($s) // '';
    $w =~ s/\r\n\z//;
    return (@r, $w);
}

# the W, X, Z flags of a reply, sorted
sub wxz {
    my ($r) = @_;
    my %f = map { $_ => 1 } grep { /^[WXZ]$/ } split ' ', $r // '';
    return join '', sort keys %f;
}

my ($A, $B) = start_pair(linked => 1);

# --- md I on A: B serves it stale ------------------------------------------
my @r = act($A, ['ms inv 3 T0', 'abc']);
is_deeply(\@r, ['HD', 'OK'], 'ms inv on A, applied on B');
is(wxz((act($B, 'mg inv v'))[0]), '', 'B serves it fresh');
@r = act($A, 'md inv I');
is_deeply(\@r, ['HD', 'OK'], 'md inv I on A, applied on B');
@r = act($B, 'mg inv v');
is(wxz($r[0]), 'WX', 'B serves inv stale, and its first client wins (W X)');
is($r[1], 'OK', 'the token B handed out reached A');
is(wxz((act($A, 'mg inv v'))[0]), 'XZ',
   'A tells its client someone else recaches (X Z), no second W');

# --- ms I with an older cas: stale on both ---------------------------------
@r = act($A, ['ms cas1 1 T0', 'a'], 'mg cas1 c');
my ($c1) = $r[1] =~ / c(\d+)/;
@r = act($A, ['ms cas1 1 T0', 'b'], ["ms cas1 1 I C$c1 T0", 'c']);
is_deeply(\@r, ['HD', 'HD', 'OK'],
          'a newer write, then ms I with the older cas on A');
is(wxz((act($B, 'mg cas1 v'))[0]), 'WX', 'B serves cas1 stale');

# --- mg N on A: B's clients wait instead of taking the empty item ---------
@r = act($A, 'mg viv N300 v');
is(wxz($r[0]), 'W', 'mg viv N300 on A wins (W)');
is($r[1], 'OK', 'the vivified item and its token reached B');
is(wxz((act($B, 'mg viv N300 v'))[0]), 'Z',
   'B answers Z for the vivified item, no second W');

# --- a token won on B reaches A --------------------------------------------
is_deeply([act($B, ['ms rc 2 T100', 'ok'])], ['HD', 'OK'], 'ms rc on B');
@r = act($B, 'mg rc v R300');
is(wxz($r[0]), 'W', 'mg R300 on B wins the recache');
is(wxz((act($A, 'mg rc v R300'))[0]), 'Z', 'A then answers Z');

# --- a full copy carries the marks -----------------------------------------
$B->restart;
ok(wait_linked($A, $B, 20), 'B restarted and relinked');
is(wxz((act($B, 'mg inv v'))[0]), 'XZ', 'the copy kept inv stale, token sent');
is(wxz((act($B, 'mg viv v'))[0]), 'Z', 'and viv\'s token');
is($A->stats('replication digest')->{digest},
   $B->stats('replication digest')->{digest}, 'digests agree');
done_testing();
