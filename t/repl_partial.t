#!/usr/bin/perl
# Partial resync: a peer that comes back while what it missed is still in
# the backlog (-o repl_backlog_size) gets only that; a restarted peer (new
# run id) or one that missed more than the backlog holds gets a full copy.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;
use MemcPair;

require_pair_build();

sub stop_until_unlinked {
    my ($a, $b) = @_;
    $b->sigstop;
    ok(MemcTest::wait_until(sub { stat_of($a, 'link_state') ne 'linked' }, 10,
                            'A to notice'), 'A sees the link drop');
}

# --- a short outage: only the missed writes travel -----------------------
{
    my ($A, $B) = start_pair(linked => 1, repl_timeout => 2);
    $A->send(join '', map { "set k$_ 0 0 4 noreply\r\nv$_\r\n" }
             map { sprintf '%03d', $_ } 1 .. 200);
    $A->cmd('version');
    wait_value($B, 'k200', 'v200', 10);
    my $full0 = stat_of($A, 'full_syncs');
    stop_until_unlinked($A, $B);
    is($A->mem_set('during', 'cut'), "STORED\r\n", 'write on A while B is away');
    is($A->cmd('delete k001'), "DELETED\r\n", 'delete on A while B is away');
    $A->send(join '', map { "set cut$_ 0 0 1 noreply\r\nc\r\n" } 1 .. 500);
    $A->cmd('version');
    $B->sigcont;
    ok(wait_linked($A, $B, 15), 'relinked');
    ok(stat_of($A, 'partial_syncs') >= 1, 'A sent a partial resync');
    is(stat_of($A, 'full_syncs'), $full0, '... and no new full copy');
    ok(wait_value($B, 'during', 'cut', 5), 'B has the write made during the cut');
    ok(MemcTest::wait_until(sub { !defined $B->mem_get('k001') }, 5,
                            'delete on B'), 'and the delete');
    is(scalar $B->mem_get('k002'), 'v002', 'older data kept');
    is($A->stats('replication digest')->{digest},
       $B->stats('replication digest')->{digest}, 'digests agree');

    # lag after a partial resync: records B has not applied are counted
    ok(MemcTest::wait_until(sub { stat_of($A, 'lag_items') == 0 }, 5, 'lag 0'),
       'lag_items 0 once B has applied everything');
    $B->sigstop;
    $A->send(join '', map { "set lag$_ 0 0 1 noreply\r\nx\r\n" } 1 .. 100);
    $A->cmd('version');
    my $lag = MemcTest::wait_until(sub { stat_of($A, 'lag_items') >= 100 }, 3,
                                   'lag 100');
    my $ms = MemcTest::wait_until(sub { stat_of($A, 'lag_ms') >= 300 }, 3,
                                  'lag_ms');
    $B->sigcont;
    ok($lag, 'after a partial resync, lag_items counts the 100 records a '
       . 'stopped B has not applied') or diag('lag_items '
       . stat_of($A, 'lag_items') . ', partial_syncs ' . stat_of($A, 'partial_syncs'));
    ok($ms, 'and lag_ms grows past 300 while B is stopped');
    ok(MemcTest::wait_until(sub { stat_of($A, 'lag_items') == 0 }, 5, 'lag 0'),
       'lag_items back to 0 once B applies them');

    # --- a restart: new run id, full copy --------------------------------
    $B->kill9;
    is($A->mem_set('while-down', 'x'), "STORED\r\n", 'write while B is down');
    $B->restart;
    ok(wait_linked($A, $B, 15), 'relinked after the restart');
    ok(stat_of($A, 'full_syncs') >= $full0 + 1,
       'a restarted peer gets a full copy');
    ok(wait_value($B, 'while-down', 'x', 5), 'with everything');
    ok(wait_value($B, 'k002', 'v002', 5), 'old data too');
}

# --- an outage longer than the backlog: full copy ----------------------
{
    my ($A, $B) = start_pair(linked => 1, repl_timeout => 2,
                             o => ['repl_backlog_size=1']);
    is(stat_of($A, 'backlog_size'), 1024 * 1024, 'backlog of 1 MB');
    my $full0 = stat_of($A, 'full_syncs');
    stop_until_unlinked($A, $B);
    my $v = 'z' x 1000;
    $A->send(join '', map { "set big$_ 0 0 1000 noreply\r\n$v\r\n" } 1 .. 2000);
    $A->cmd('version');
    $B->sigcont;
    ok(wait_linked($A, $B, 15), 'relinked');
    # (a duplicate link replaced right after the copy may then resume it
    # with a partial resync: only the full copy is certain)
    ok(stat_of($A, 'full_syncs') >= $full0 + 1,
       '2 MB missed, 1 MB kept: a full copy, not a partial resync');
    ok(wait_value($B, 'big2000', $v, 10), 'B has the last write');
    ok(wait_value($B, 'big1', $v, 10), 'and the first');
}

done_testing();
