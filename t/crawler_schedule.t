#!/usr/bin/perl
# When the automatic crawler pass runs (crawler.h, crawler_due): every
# 10 s, but only once an item may have died since the last pass, so a
# cache whose items never expire is not walked over and over beside the
# clients (each pass wakes its thread about a hundred times a second on
# the server's CPUs).  Items that expire, and items a flush_all drops,
# are still reclaimed without a client asking for a crawl.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use MemcTest;

my $srv = MemcTest->start();
my $st = $srv->stats;
plan skip_all => 'no LRU crawler in this build'
    unless defined $st->{lru_crawler_starts};

$srv->mem_set("keep$_", 'v', 0, 0) for 1 .. 100;
my $t0 = time;
sleep 11.5;     # past the first automatic pass (10 s after start)
is($srv->stats->{lru_crawler_starts}, $st->{lru_crawler_starts},
   sprintf('no automatic pass while no item can die (%.1f s)', time - $t0));

# items with a deadline: reclaimed after it (by an automatic pass, or by
# the LRU maintainer, which also drops expired items it meets)
{
    my $b = $srv->stats;
    $srv->mem_set("exp$_", 'x', 0, 2) for 1 .. 50;
    is($srv->stats->{curr_items}, 150, '50 items with a 2 s deadline');
    ok(wait_until(sub { $srv->stats->{curr_items} == 100 }, 25),
       'items that expire are reclaimed with no crawl asked for');
    my $a = $srv->stats;
    cmp_ok($a->{lru_crawler_starts}, '>', $b->{lru_crawler_starts},
           'by an automatic pass');
    is($a->{curr_items}, 100, 'the items without a deadline stay');
}

# items a flush_all drops: reclaimed too
{
    my $b = $srv->stats;
    is($srv->cmd('flush_all'), "OK\r\n", 'flush_all');
    ok(wait_until(sub { $srv->stats->{curr_items} == 0 }, 25),
       'the flushed items are reclaimed with no crawl asked for');
}

# and then, with nothing left that can die, the passes stop again
{
    my $b = $srv->stats;
    sleep 11;
    is($srv->stats->{lru_crawler_starts}, $b->{lru_crawler_starts},
       'no automatic pass once everything that could die is reclaimed');
}

done_testing();
