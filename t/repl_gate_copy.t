#!/usr/bin/perl
# The first sync gate and a slow copy (issue #17): repl_initial_sync_timeout
# bounds only the wait for a peer that does not answer.  A restarted node
# whose copy is still arriving (here through a relay throttled to 1 MB/s,
# 6 MB of data, with a 2 s timeout) keeps its client port closed until
# the copy is complete, logging its progress, instead of opening at 2 s
# and answering misses for what has not arrived yet.  A copy that stops
# arriving holds it only for repl_timeout more.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use MemcTest;
use MemcPair;

require_pair_build();

# stats of $node on a fresh connection, or undef
sub stats_now { my ($n) = @_; return $n->stats_fresh(''); }

my $N = 4000;
my $val = 'x' x 1500;
my ($A, $B) = start_pair(relay => 1, linked => 1, repl_timeout => 5,
                         o => ['repl_initial_sync_timeout=2']);
preload_noreply($A, $N, sub { ("k$_[0]", $val) });
ok(wait_value($B, "k$N", $val, 30), "B has the $N items");

$_->{relay}->rate(1_000_000) for $A, $B;
$B->restart(nowait => 1);
my $t0 = time;
ok($B->wait_ready(60), 'B opened its client port');
my $took = time - $t0;
# At once, before anything else can arrive: B must hold all of it.
my $items = (stats_now($B) // {})->{curr_items} // 0;
is($items, $N, "B held all $N items when it opened (not what had arrived "
   . 'by the timeout)');
cmp_ok($took, '>', 3, sprintf('it opened %.1f s after the restart, past '
       . 'the 2 s timeout, when the copy was done', $took));
$_->{relay}->rate(0) for $A, $B;
is(stat_of($B, 'peer_synced'), 'yes', 'B says it holds the pair\'s data');
is(stat_of($B, 'copy_in_progress'), 0, 'no copy arriving any more');
is($A->stats('replication digest')->{digest},
   $B->stats('replication digest')->{digest}, 'B has everything A has');
like($B->log_text, qr/copy is still arriving \(\d+ of \d+ items\)/,
     'B logged the copy\'s progress while it held the port closed');
unlike($B->log_text, qr/initial sync timed out/, 'and did not give up');

# --- a copy that stops arriving does not hold the port for ever ------------
$_->{relay}->rate(1_000_000) for $A, $B;
$B->restart(nowait => 1);
$t0 = time;
ok(MemcTest::wait_until(sub {
    $B->log_text =~ /receiving a full copy/ }, 10), 'B receives a copy again');
sleep 0.5;
$_->{relay}->cut('blackhole') for $A, $B;
ok($B->wait_ready(30), 'B opened its port once the copy stopped');
$took = time - $t0;
is(stat_of($B, 'peer_synced'), 'no', 'saying it does not hold the data');
like($B->log_text, qr/initial sync timed out/, 'and logged why');
$_->{relay}->restore for $A, $B;
$_->{relay}->rate(0) for $A, $B;
ok(wait_linked($A, $B, 30), 'linked again once the relays forward');
done_testing();
