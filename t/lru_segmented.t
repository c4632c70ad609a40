#!/usr/bin/perl
# The segmented LRU: items move HOT -> COLD in the background, a second
# read brings a COLD item to WARM where it outlives the evictions, the
# maintainer reclaims dead items unasked, TEMP keeps short-TTL items out
# of the eviction path, and `lru tune|mode|temp_ttl` as memcached has
# them.  With -o no_modern the LRU is flat.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;

my $big = 'B' x 66560;                  # class 31 with -f 1.25

sub items_stat {
    my ($srv, $name) = @_;
    return $srv->stats('items')->{"items:31:$name"} // 0;
}

# --- segmented (the default) ---------------------------------------------
{
    my $srv = MemcTest->start('-m', '6');
    my $st = $srv->stats('settings');
    is($st->{lru_segmented}, 'yes', 'segmented by default');
    is($st->{lru_maintainer_thread}, 'yes', 'maintainer runs by default');

    $srv->mem_set("short$_", 'x', 0, 1) for 1 .. 5;
    ok(MemcTest::wait_until(sub { ($srv->stats->{reclaimed} // 0) == 5 },
                            15, 'maintainer reclaims'),
       'expired items reclaimed without being read');

    is($srv->mem_set('canary', $big), "STORED\r\n", 'canary stored');
    $srv->mem_set("junk$_", $big) for 1 .. 20;
    ok(MemcTest::wait_until(sub { items_stat($srv, 'moves_to_cold') > 0 },
                            15, 'moves to cold'),
       'maintainer moves HOT tails to COLD');
    my $cold = items_stat($srv, 'number_cold');
    ok($cold > 0, "number_cold counts them ($cold)");
    is($srv->mem_get('canary'), $big, 'canary read once');
    is($srv->mem_get('canary'), $big, 'canary read twice');
    ok(MemcTest::wait_until(sub { items_stat($srv, 'moves_to_warm') > 0 },
                            15, 'moves to warm'),
       'second read sends the COLD canary to WARM');
    # stats shows the totals of the per-class moves, as memcached does.
    my $totals = $srv->stats;
    my $items = $srv->stats('items');
    for my $m (qw(moves_to_cold moves_to_warm)) {
        my $sum = 0;
        $sum += $items->{$_} for grep { /^items:\d+:$m$/ } keys %$items;
        ok($sum > 0 && ($totals->{$m} // -1) >= $sum,
           "stats $m is the classes' total ($totals->{$m}, items $sum)");
    }
    $srv->mem_set("more$_", $big) for 1 .. 100;
    ok($srv->stats->{evictions} > 0, 'the class evicted');
    is($srv->mem_get('canary'), $big, 'WARM canary survived the evictions');
    my $lj = $srv->stats->{lru_maintainer_juggles};
    ok($lj > 0, "lru_maintainer_juggles counts passes ($lj)");

    is($srv->cmd('lru tune 10 30 0.1 3'), "OK\r\n", 'lru tune');
    $st = $srv->stats('settings');
    is_deeply([@$st{qw(hot_lru_pct warm_lru_pct hot_max_factor
                       warm_max_factor)}], [10, 30, '0.10', '3.00'],
              'lru tune shows in stats settings');
    is($srv->cmd('lru tune 50 40 0.1 3'),
       "ERROR hot and warm pcts must not exceed 80\r\n", 'pcts over 80');
    is($srv->cmd('lru tune 10 30 0 3'),
       "ERROR hot/warm age factors must be greater than 0\r\n",
       'zero factor');
    is($srv->cmd('lru tune x 30 1 3'), "ERROR\r\n", 'bad number');
    is($srv->cmd('lru temp_ttl 30'), "OK\r\n", 'lru temp_ttl');
    is($srv->stats('settings')->{temp_lru}, 'yes', 'temp_lru on');
    is($srv->cmd('lru temp_ttl -1'), "OK\r\n", 'lru temp_ttl -1');
    is($srv->stats('settings')->{temp_lru}, 'no', 'temp_lru off');
    is($srv->cmd('lru mode flat'), "OK\r\n", 'lru mode flat');
    is($srv->stats('settings')->{lru_segmented}, 'no', 'now flat');
    is($srv->cmd('lru mode bogus'), "ERROR\r\n", 'unknown mode');
    is($srv->cmd('lru mode segmented'), "OK\r\n", 'lru mode segmented');
    is($srv->cmd('lru bogus'), "ERROR\r\n", 'unknown subcommand');
    $srv->stop;
}

# --- TEMP ---------------------------------------------------------------------
{
    my $srv = MemcTest->start('-m', '2', '-o', 'temporary_ttl=61');
    is($srv->mem_set('canary', $big, 0, 30), "STORED\r\n", 'short TTL');
    is(items_stat($srv, 'number_temp'), 1, 'it went to TEMP');
    is(items_stat($srv, 'number_hot'), 0, 'not to HOT');
    $srv->mem_set("key$_", $big, 0, 3600) for 1 .. 60;
    ok(items_stat($srv, 'evicted') > 0, 'the class evicted');
    is($srv->mem_get('canary'), $big, 'TEMP item never evicted');
    $srv->stop;
}

# --- flat (no_modern) -----------------------------------------------------------
{
    my $srv = MemcTest->start('-o', 'no_modern');
    my $st = $srv->stats('settings');
    is($st->{lru_segmented}, 'no', 'no_modern: flat');
    is($st->{lru_maintainer_thread}, 'no', 'no_modern: no maintainer');
    is($srv->cmd('lru mode segmented'), "ERROR\r\n",
       'no mode switch without the maintainer');
    $srv->mem_set('k', 'x', 0, 1);
    is(items_stat($srv, 'number'), 0, 'class 31 unused');
    is($srv->stats('items')->{'items:1:number_cold'}, 1, 'flat: in COLD');
    sleep 2;
    $srv->mem_set('k2', 'y');
    is($srv->stats->{reclaimed}, 1, 'a store reuses the dead tail first');
    $srv->stop;
}

done_testing();
