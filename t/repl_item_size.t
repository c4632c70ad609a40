#!/usr/bin/perl
# Nodes with different -I (item size max) must refuse each other at the
# handshake (doc/replication.txt, "Handshake and authentication"): each
# side's HELLO carries its -I.  Before, they linked, and the first item
# over the smaller -I broke the link with a protocol error; the redial
# resynced in full and broke it again, forever.  Now both sides log a
# clear error naming both values, set last_error, count it
# (peer_mismatches) and back off instead of redialling in a tight loop;
# they never link, and nothing crosses.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcTest;
use MemcPair;

require_pair_build();

my ($A, $B) = start_pair(o => ['repl_initial_sync_timeout=2'],
                         args_a => ['-I', '1m'], args_b => ['-I', '2m'],
                         repl_timeout => 2, start_timeout => 15);
$B->mem_set('big', 'x' x (1536 * 1024));
$B->mem_set('small', 'must not cross');
my ($linked) = never_link($A, $B, 6);
is($linked, 0, 'different -I: never linked (6 s of polling)');
ok(!defined $A->item('small'), 'nothing crossed');
for my $n ($A, $B) {
    my $st = $n->repl_stats;
    like($st->{last_error} // '', qr/item.size|-I/i,
         $n->name . ': last_error names the item size')
        or diag($st->{last_error});
    my $m = $st->{peer_mismatches} // 0;
    ok($m >= 1 && $m <= 6, $n->name . ": peer_mismatches counts it, backed "
       . "off (6 s: $m)");
    is($st->{links} // -1, 0, $n->name . ': no link established (no '
       . 'fail-resync-fail loop)');
    cmp_ok($st->{protocol_errors} // 0, '==', 0,
           $n->name . ': no protocol error');
    like($n->log_text, qr/1048576.*2097152|2097152.*1048576/,
         $n->name . ' logs both values');
}

done_testing();
