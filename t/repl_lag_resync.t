#!/usr/bin/perl
# lag_ms after a partial resync (issue #17): once the peer has applied
# everything, lag_ms must read 0 again and stay there while the node
# writes nothing, whether the peer missed records during the outage or
# none at all.  It used to climb for ever (a heartbeat sent after the
# resync was taken for a batch the peer never acknowledges).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use MemcTest;
use MemcPair;

require_pair_build();

# lag_ms of $node, sampled for $secs: the largest value seen
sub max_lag_over {
    my ($node, $secs) = @_;
    my ($max, $end) = (0, time + $secs);
    while (time < $end) {
        my $v = stat_of($node, 'lag_ms') // 0;
        $max = $v if $v > $max;
        sleep 0.2;
    }
    return $max;
}

my ($A, $B) = start_pair(linked => 1, repl_timeout => 2);
for my $missed (50, 0) {
    $A->send(join '', map { "set pre$missed-$_ 0 0 1 noreply\r\nx\r\n" }
             1 .. 20);
    $A->cmd('version');
    ok(MemcTest::wait_until(sub { (stat_of($A, 'lag_items') // 1) == 0 }, 10),
       "lag_items 0 before the outage ($missed missed)");
    my $partial0 = stat_of($A, 'partial_syncs');
    $B->sigstop;
    ok(MemcTest::wait_until(sub { stat_of($A, 'link_state') ne 'linked' }, 10),
       'A sees the link drop');
    if ($missed) {
        $A->send(join '', map { "set cut$_ 0 0 1 noreply\r\nc\r\n" }
                 1 .. $missed);
        $A->cmd('version');
    }
    $B->sigcont;
    ok(wait_linked($A, $B, 20), 'relinked');
    ok(stat_of($A, 'partial_syncs') > $partial0, 'by a partial resync');
    ok(MemcTest::wait_until(sub { (stat_of($A, 'lag_items') // 1) == 0 }, 10),
       'lag_items back to 0');
    ok(MemcTest::wait_until(sub { (stat_of($A, 'lag_ms') // 1) == 0 }, 10),
       'lag_ms back to 0');
    my $max = max_lag_over($A, 3.5);
    cmp_ok($max, '<', 1000,
           "lag_ms stays near 0 with nothing to acknowledge ($missed missed)");
}
done_testing();
