#!/usr/bin/perl
# -o repl_sync=1: a write is answered only after the peer has applied it,
# or after repl_sync_timeout ms (then it is answered anyway, counted in
# sync_timeouts).  So with a healthy link, a read on the peer right after
# the reply always sees the write.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcTest;
use MemcBin;
use MemcPair;

require_pair_build();

my ($A, $B) = start_pair(linked => 1, repl_timeout => 2,
                         o => ['repl_sync=1', 'repl_sync_timeout=200']);
is($A->repl_stats->{sync_mode}, 'on', 'sync_mode on');

# --- every acknowledged write is already on the peer --------------------
{
    my ($seen, $n) = (0, 300);
    for my $i (1 .. $n) {
        $A->mem_set("k$i", "v$i") eq "STORED\r\n" or next;
        my $v = $B->mem_get("k$i");     # no polling: it must be there
        $seen++ if defined $v && $v eq "v$i";
    }
    is($seen, $n, "$n text sets: each readable on B right after STORED");
    my $del = 0;
    for my $i (1 .. 50) {
        $A->cmd("delete k$i") eq "DELETED\r\n" or next;
        $del++ unless defined $B->mem_get("k$i");
    }
    is($del, 50, 'deletes too');
    $A->mem_set('ctr', '10');
    my $incr = 0;
    for (1 .. 50) {
        my $r = $A->cmd('incr ctr 1');
        (my $v = $B->mem_get('ctr') // '') =~ s/ +\z//;
        $incr++ if "$v\r\n" eq $r;
    }
    is($incr, 50, 'incr: the peer shows the new value at once');
    my $s = $A->new_sock;
    my $bin = 0;
    for my $i (1 .. 50) {
        my $r = bin_cmd($A, $s, 'SET', key => "b$i", value => "bv$i",
                        extras => pack('NN', 0, 0));
        next unless $r && $r->{status} == 0;
        my $v = $B->mem_get("b$i");
        $bin++ if defined $v && $v eq "bv$i";
    }
    is($bin, 50, 'binary SET: on the peer before the reply');
    my $st = $A->repl_stats;
    ok($st->{sync_writes} >= 450, "sync_writes counted ($st->{sync_writes})");
    is($st->{sync_timeouts}, 0, 'no timeouts with a healthy peer');
}

# --- a stopped peer: the write waits for the timeout, then succeeds -------
{
    # (on a loaded machine the link may have flapped during the loops
    # above; a write made while unlinked is answered at once, by design)
    ok(wait_linked($A, $B, 15), 'linked before the peer is stopped');
    $B->sigstop;
    my $t0 = time;
    is($A->mem_set('slow', 'x'), "STORED\r\n",
       'with the peer stopped the write still succeeds');
    my $took = time - $t0;
    ok($took >= 0.18, sprintf('... after about repl_sync_timeout (%.3f s)',
                              $took));
    ok($A->repl_stats->{sync_timeouts} >= 1, 'counted in sync_timeouts');
    is(scalar $A->mem_get('slow'), 'x', 'applied locally');
    $B->sigcont;
    ok(wait_linked($A, $B, 15), 'relinked');
    ok(wait_value($B, 'slow', 'x', 10), 'the peer gets it after all');
}

# --- replies stay in order behind a held write ------------------------------
{
    my $s = $A->new_sock;
    $A->send("set o1 0 0 1\r\na\r\nget o1\r\nset o2 0 0 1\r\nb\r\nget o2\r\n",
             $s);
    my $got = join '', map { $A->read_line($s) // '' } 1 .. 8;
    is($got, "STORED\r\nVALUE o1 0 1\r\na\r\nEND\r\nSTORED\r\nVALUE o2 0 1\r\n"
             . "b\r\nEND\r\n", 'pipelined replies in request order');
}

done_testing();
