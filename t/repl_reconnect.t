#!/usr/bin/perl
# Pair replication across failures (doc/replication.txt, "Link states",
# "Full resync", "The first sync gate"):
#  - kill -9 B, write on A, restart B on the same ports: B's client port
#    stays closed until B has resynced (shown with A stopped meanwhile),
#    then B has A's data, including what A wrote while B was down;
#  - SIGSTOP B for longer than repl_timeout (2 s): A's link leaves
#    "linked", writes on A go on; SIGCONT: they relink and B gets the
#    writes;
#  - the network cut by TcpRelays while both processes run (blackhole,
#    then closed connections): each side writes its own keys during the
#    cut; after the restore both converge, "reconnects" grew and
#    last_error says something.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use MemcTest;
use MemcPair;

require_pair_build();

my $TMO = 2;    # repl_timeout of every pair here


# --- kill -9 B, restart --------------------------------------------------
{
    my ($A, $B) = start_pair(repl_timeout => $TMO, linked => 1);
    my %want;
    for my $i (1 .. 50) {
        $A->mem_set("k$i", "v$i");
        $want{"k$i"} = "v$i";
    }
    ok(wait_value($B, 'k50', 'v50', 5), 'B has the first 50 keys');
    my $rec0 = stat_of($A, 'reconnects') // 0;

    $B->kill9;
    my ($left) = wait_stat($A, 'link_state', sub { ($_[0] // '') ne 'linked' },
                           $TMO + 3);
    ok($left, "A's link leaves linked after kill -9 of B");
    for my $i (1 .. 20) {
        is($A->mem_set("down$i", "d$i"), "STORED\r\n", "write $i on A while "
           . 'B is down') if $i == 1 || $i == 20;
        $A->mem_set("down$i", "d$i") if $i > 1 && $i < 20;
        $want{"down$i"} = "d$i";
    }
    $A->cmd('delete k1');
    $want{k1} = undef;
    $A->mem_set('k2', 'v2-new');
    $want{k2} = 'v2-new';

    # B comes back while A is stopped: B cannot sync, so its client
    # port must stay closed
    $A->sigstop;
    $B->restart(nowait => 1);
    my $t0 = time;
    my $opened = 0;
    while (time - $t0 < 3) {
        if (!refused($B->port)) {
            $opened = 1;
            last;
        }
        sleep 0.05;
    }
    ok(!$opened, "restarted B keeps its client port closed while it cannot "
       . "sync (A stopped, 3 s)");
    ok($B->is_alive, 'B is running meanwhile');
    $A->sigcont;
    ok($B->wait_ready(20), 'B opens its client port once A is back')
        or diag($B->log_tail(20));
    my $ready_after = time - $t0;
    # the very first answers must already have everything
    ok(has_all($B, \%want), 'at its first answer B has all of A\'s data, '
       . 'writes made while it was down included')
        or diag(missing($B, \%want));
    is(stat_of($B, 'initial_sync_done'), 'yes', 'B: initial_sync_done yes');
    ok(wait_linked($A, $B, 10), 'linked again');
    my $rec1 = stat_of($A, 'reconnects') // 0;
    cmp_ok($rec1, '>', $rec0, "A's reconnects grew ($rec0 -> $rec1)");
    diag(sprintf 'B answered %.2fs after its restart (A stopped for 3 s)',
         $ready_after);

    # and the pair works both ways afterwards
    $B->mem_set('after_restart', 'b');
    ok(wait_value($A, 'after_restart', 'b', 5), 'B -> A after the restart');
}

# --- SIGSTOP B longer than repl_timeout --------------------------------
{
    my ($A, $B) = start_pair(repl_timeout => $TMO, linked => 1);
    $A->mem_set('s0', 'before');
    ok(wait_value($B, 's0', 'before', 5), 'B has s0');
    my $rec0 = stat_of($A, 'reconnects') // 0;

    $B->sigstop;
    my $t0 = time;
    my ($seen, $st) = wait_stat($A, 'link_state',
                                sub { ($_[0] // '') eq 'connecting' },
                                $TMO + 5);
    my $noticed = time - $t0;
    ok($seen, "A's link goes to connecting while B is stopped")
        or diag("A: link_state " . ($st // 'no answer'));
    cmp_ok($noticed, '>=', $TMO - 1, 'not before repl_timeout');
    cmp_ok($noticed, '<=', $TMO + 4, 'within repl_timeout + a few seconds');
    diag(sprintf 'A noticed the stopped peer after %.2fs', $noticed);

    my %want;
    my $slow = 0;
    for my $i (1 .. 30) {
        my $w0 = time;
        my $r = $A->mem_set("stop$i", "s$i");
        $slow++ if !defined $r || $r ne "STORED\r\n" || time - $w0 > 1;
        $want{"stop$i"} = "s$i";
    }
    is($slow, 0, 'writes on A go on, each answered STORED at once');
    is($A->cmd('delete s0'), "DELETED\r\n", 'delete s0 on A while B is '
       . 'stopped');

    $B->sigcont;
    ok(wait_linked($A, $B, 15), 'after SIGCONT they relink');
    ok(wait_until(sub { has_all($B, \%want) }, 10),
       'B has the writes made while it was stopped')
        or diag(missing($B, \%want));
    for my $n ($A, $B) {
        ok(wait_until(sub { has_all($n, { s0 => undef }) }, 5),
           'the delete made while B was stopped wins on ' . $n->name)
            or diag(missing($n, { s0 => undef }));
    }
    my $rec1 = stat_of($A, 'reconnects') // 0;
    cmp_ok($rec1, '>', $rec0, "A's reconnects grew ($rec0 -> $rec1)");
}

# --- network cut through relays ----------------------------------------
{
    my ($A, $B) = start_pair(repl_timeout => $TMO, relay => 1, linked => 1);
    cmp_ok($A->relay->counts->{accepted} + $B->relay->counts->{accepted},
           '>', 0, 'the replication links run through the relays');
    $A->mem_set('n0', 'x');
    ok(wait_value($B, 'n0', 'x', 5), 'B has n0 through the relays');

    for my $mode (qw(blackhole close)) {
        # a key of each side that the other side deletes in the cut
        $A->mem_set("${mode}_del_by_a", 'd');
        $B->mem_set("${mode}_del_by_b", 'd');
        ok(wait_value($B, "${mode}_del_by_a", 'd', 5)
           && wait_value($A, "${mode}_del_by_b", 'd', 5),
           "$mode cut: keys to delete are on both before the cut");
        my %rec0 = map { ($_->name => stat_of($_, 'reconnects') // 0) }
                   $A, $B;
        $A->relay->cut($mode);
        $B->relay->cut($mode);
        my $t0 = time;
        my $down = wait_until(sub {
            (stat_of($A, 'link_state') // '') ne 'linked'
                && (stat_of($B, 'link_state') // '') ne 'linked';
        }, $TMO + 5);
        ok($down, "$mode cut: both links leave linked");
        diag(sprintf "$mode cut noticed after %.2fs", time - $t0);

        # each side writes during the cut
        my (%wa, %wb);
        for my $i (1 .. 10) {
            is($A->mem_set("${mode}_a$i", "A$i"), "STORED\r\n",
               "$mode cut: write on A") if $i == 1;
            $A->mem_set("${mode}_a$i", "A$i") if $i > 1;
            is($B->mem_set("${mode}_b$i", "B$i"), "STORED\r\n",
               "$mode cut: write on B") if $i == 1;
            $B->mem_set("${mode}_b$i", "B$i") if $i > 1;
            $wa{"${mode}_a$i"} = "A$i";
            $wb{"${mode}_b$i"} = "B$i";
        }
        is($A->cmd("delete ${mode}_del_by_a"), "DELETED\r\n",
           "$mode cut: delete on A");
        is($B->cmd("delete ${mode}_del_by_b"), "DELETED\r\n",
           "$mode cut: delete on B");
        ok(!defined $B->item("${mode}_a1"),
           "$mode cut: A's write does not reach B during the cut");
        ok(!defined $A->item("${mode}_b1"),
           "$mode cut: B's write does not reach A during the cut");

        $A->relay->restore;
        $B->relay->restore;
        ok(wait_linked($A, $B, 15), "$mode cut: relinked after the restore");
        my %all = (%wa, %wb, n0 => 'x');
        ok(wait_until(sub { has_all($B, \%all) }, 10),
           "$mode cut: B has A's writes (and its own)")
            or diag(missing($B, \%all));
        ok(wait_until(sub { has_all($A, \%all) }, 10),
           "$mode cut: A has B's writes (and its own)")
            or diag(missing($A, \%all));
        # the deletes are the latest writes of those keys: they win on
        # both, and the deleting side does not get the key back
        my %del = ("${mode}_del_by_a" => undef, "${mode}_del_by_b" => undef);
        for my $n ($A, $B) {
            ok(wait_until(sub { has_all($n, \%del) }, 5),
               "$mode cut: deletes made during the cut win on " . $n->name)
                or diag(missing($n, \%del));
        }
        for my $n ($A, $B) {
            my $s = $n->repl_stats || {};
            cmp_ok($s->{reconnects} // 0, '>', $rec0{ $n->name },
                   "$mode cut: reconnects grew on " . $n->name);
            my $err = $s->{last_error} // '';
            ok(length $err && $err ne 'none',
               "$mode cut: last_error set on " . $n->name . ": $err");
        }
    }
}

done_testing();
