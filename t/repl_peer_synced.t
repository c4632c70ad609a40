#!/usr/bin/perl
# stats replication peer_synced: "yes" only once this process has
# applied its peer's full copy (or caught up from its backlog), and it
# stays so when the link drops.  initial_sync_done says only that the
# client port opened, which it also does on repl_initial_sync_timeout
# with nothing from the peer: a health check must tell the two apart.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;
use MemcPair;

require_pair_build();

# A alone: its gate opens on the timeout, empty.
my $A = lone_node();
ok($A->wait_ready(15), 'A serves after its initial-sync timeout');
my $st = $A->repl_stats;
is($st->{initial_sync_done}, 'yes', 'A: initial_sync_done yes');
is($st->{peer_synced}, 'no', 'A: peer_synced no (nothing from a peer)');
$A->mem_set('k', 'v');

# B appears where A dials, and dials A: both take the other's copy.
MemcPair::release_port($A->{dial});
my $B = MemcPair::Node->create(name => 'B', port => free_ports(1),
                               repl_port => $A->{dial},
                               dial => $A->repl_port);
$B->spawn;
ok($B->wait_ready(15), 'B serves after its first sync');
ok(wait_linked($A, $B, 15), 'A and B linked');
is($B->repl_stats->{peer_synced}, 'yes', 'B: peer_synced yes');
ok(MemcTest::wait_until(sub { $A->repl_stats->{peer_synced} eq 'yes' }, 10),
   'A: peer_synced yes once it has B\'s copy');
is($B->mem_get('k'), 'v', 'B has what A held');

$B->stop;
ok(MemcTest::wait_until(
       sub { $A->repl_stats->{link_state} ne 'linked' }, 15),
   'B stopped: A not linked');
is($A->repl_stats->{peer_synced}, 'yes', 'A: peer_synced still yes');

done_testing();
