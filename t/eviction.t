#!/usr/bin/perl
# Memory limit: LRU eviction with a small -m, and -M (no eviction)
# answering "SERVER_ERROR out of memory storing object".

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;

my $N = 6000;
my $V = 'v' x 1000;

sub fill {
    my ($srv) = @_;
    my $batch = join '', map { "set key$_ 0 0 1000\r\n$V\r\n" } 1 .. $N;
    $srv->send($batch);
    my %replies;
    for (1 .. $N) {
        my $l = $srv->read_line;
        $replies{defined $l ? $l : 'timeout'}++;
    }
    return \%replies;
}

# --- eviction ---------------------------------------------------------
{
    my $srv = MemcTest->start('-m', '2');
    is($srv->stats->{limit_maxbytes}, 2 * 1024 * 1024, 'limit_maxbytes 2 MB');
    my $r = fill($srv);
    is_deeply($r, { "STORED\r\n" => $N }, "all $N sets of 1 KB answered STORED");
    my $st = $srv->stats;
    ok($st->{evictions} > 0, "evictions grew ($st->{evictions})");
    ok($st->{curr_items} < $N, "curr_items below $N ($st->{curr_items})");
    is($st->{curr_items} + $st->{evictions}, $N,
       'curr_items + evictions = items stored');
    is($st->{total_items}, $N, "total_items $N");
    ok($st->{evicted_unfetched} > 0, 'evicted_unfetched counted');
    ok($st->{bytes} <= 2 * 1024 * 1024, 'bytes within the limit');
    my @miss = grep { !defined $srv->mem_get("key$_") } $N - 99 .. $N;
    is(scalar @miss, 0, 'the newest 100 keys are all readable');
    is($srv->get_raw('get key1 key2 key3'), "END\r\n",
       'the oldest keys were evicted');
    my $si = $srv->stats('items');
    my $evicted = 0;
    $evicted += $si->{$_} for grep { /^items:\d+:evicted$/ } keys %$si;
    is($evicted, $st->{evictions}, 'items:N:evicted adds up to evictions');
    ok((grep { /^items:\d+:evicted_time$/ } keys %$si),
       'items:N:evicted_time present');

    # under further pressure the evictions go on and the newest items
    # stay readable (memcached's LRU bumps of read items are
    # asynchronous, so which old item survives is not asserted)
    my $before = $srv->stats->{evictions};
    for my $round (1 .. 10) {
        my $batch = join '', map { "set more${round}_$_ 0 0 1000 noreply\r\n$V\r\n" }
                    1 .. 200;
        $srv->send($batch);
        $srv->cmd('version');
    }
    ok($srv->stats->{evictions} >= $before + 2000, 'more evictions happened');
    is(scalar $srv->mem_get('more10_200'), $V, 'the newest item is readable');
    is($srv->get_raw('get key' . ($N - 150)), "END\r\n",
       'an earlier item never read was evicted');
    $srv->stop;
}

# --- -M: no evictions, out of memory errors --------------------------
{
    my $srv = MemcTest->start('-m', '2', '-M');
    is($srv->stats('settings')->{evictions}, 'off', '-M: evictions off');
    my $r = fill($srv);
    my $oom = $r->{"SERVER_ERROR out of memory storing object\r\n"} // 0;
    my $ok = $r->{"STORED\r\n"} // 0;
    ok($oom > 0, "some sets answered SERVER_ERROR out of memory ($oom)");
    is($ok + $oom, $N, 'every set answered STORED or out of memory');
    my $st = $srv->stats;
    is($st->{evictions}, 0, 'no evictions');
    is($st->{curr_items}, $ok, 'curr_items = sets that succeeded');
    ok($st->{store_no_memory} >= 1, 'store_no_memory counted');
    is(scalar $srv->mem_get('key1'), $V, 'the first key is still there');
    is($srv->get_raw("get key$N"), "END\r\n", 'the last key was not stored');
    like($srv->cmd('version'), qr/\AVERSION /,
         'connection fine after out-of-memory errors');
    # freeing an item makes room for another of the same size
    is($srv->cmd('delete key1'), "DELETED\r\n", 'delete one');
    is($srv->mem_set('fresh', $V), "STORED\r\n", 'then a new set fits');
    is(scalar $srv->mem_get('fresh'), $V, 'and reads back');
    $srv->stop;
}

done_testing();
