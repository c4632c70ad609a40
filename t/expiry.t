#!/usr/bin/perl
# Expiry: relative TTL, absolute unix times, negative, the 30-day
# boundary, and PHP's strict-session "add k 0 2678400 0" probe.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcTest;

# The LRU maintainer would reclaim expired items before a read sees them
# (as in memcached): without it, reads find them (get_expired).
my $srv = MemcTest->start('-o', 'no_lru_maintainer');

# relative and absolute TTLs run side by side to keep the test short
my $t0 = time;
is($srv->mem_set('rel', 'r', 0, 2), "STORED\r\n", 'set with ttl 2');
my $abs = int(time) + 3;
is($srv->mem_set('abs', 'a', 0, $abs), "STORED\r\n",
   'set with absolute exptime now+3');
is($srv->mem_set('forever', 'f', 0, 0), "STORED\r\n", 'set with ttl 0');
is($srv->get_raw('get rel abs'),
   "VALUE rel 0 1\r\nr\r\nVALUE abs 0 1\r\na\r\nEND\r\n",
   'both readable right away');

ok(MemcTest::wait_until(sub { !defined $srv->mem_get('rel') }, 5,
                        'ttl 2 item to expire'), 'ttl 2 item expired');
my $rel_took = time - $t0;
ok($rel_took >= 0.9, sprintf('not before ~1s (%.2fs)', $rel_took));
ok(MemcTest::wait_until(sub { !defined $srv->mem_get('abs') }, 6,
                        'absolute item to expire'), 'absolute item expired');
ok(time - $t0 >= 1.5, 'absolute item lived about its time');
is($srv->get_raw('get forever'), "VALUE forever 0 1\r\nf\r\nEND\r\n",
   'ttl 0 item still there');
is($srv->mem_add('rel', 'new'), "STORED\r\n", 'add on an expired key');
is($srv->get_raw('get rel'), "VALUE rel 0 3\r\nnew\r\nEND\r\n",
   'new value after expiry');

# negative exptime: stored, but expired immediately
is($srv->mem_set('neg', 'x', 0, -1), "STORED\r\n", 'set with ttl -1: STORED');
is($srv->get_raw('get neg'), "END\r\n", 'ttl -1 item is never readable');
$srv->mem_set('neg2', 'x');
is($srv->mem_set('neg2', 'y', 0, -100), "STORED\r\n",
   'overwrite with ttl -100');
is($srv->get_raw('get neg2'), "END\r\n", 'overwritten item gone');

# PHP strict session mode: add with exptime 2678400 (an absolute time in
# 1970) must answer STORED and leave no live key
is($srv->store('add', 'memc.sess.key.abc', '', 0, 2678400), "STORED\r\n",
   'add k 0 2678400 0 on a miss: STORED');
is($srv->get_raw('get memc.sess.key.abc'), "END\r\n",
   'and the key is not there afterwards');
is($srv->store('add', 'memc.sess.key.abc', '', 0, 2678400), "STORED\r\n",
   'so a second add is STORED again');
$srv->mem_set('memc.sess.key.live', 'data', 0, 1440);
is($srv->store('add', 'memc.sess.key.live', '', 0, 2678400),
   "NOT_STORED\r\n", 'the same add on a live key: NOT_STORED');
is($srv->get_raw('get memc.sess.key.live'),
   "VALUE memc.sess.key.live 0 4\r\ndata\r\nEND\r\n", 'live key intact');

# the 30-day boundary: 2592000 is relative, 2592001 is absolute (1970)
is($srv->mem_set('d30', 'x', 0, 2592000), "STORED\r\n", 'ttl 2592000');
is($srv->get_raw('get d30'), "VALUE d30 0 1\r\nx\r\nEND\r\n",
   '2592000 (30 days) is relative: item alive');
is($srv->mem_set('d30p', 'x', 0, 2592001), "STORED\r\n", 'ttl 2592001');
is($srv->get_raw('get d30p'), "END\r\n",
   '2592001 is an absolute time in 1970: already expired');
is($srv->mem_set('past', 'x', 0, int(time) - 10), "STORED\r\n",
   'absolute time in the past');
is($srv->get_raw('get past'), "END\r\n", 'absolute past: expired');
is($srv->mem_set('future', 'x', 0, int(time) + 86400 * 40), "STORED\r\n",
   'absolute time 40 days ahead');
is($srv->get_raw('get future'), "VALUE future 0 1\r\nx\r\nEND\r\n",
   'absolute future: alive');

# metadump shows absolute expiry times
{
    my $raw = $srv->metadump(qr/^key=d30 .*^key=forever |^key=forever .*^key=d30 /ms);
    my $now = $srv->stats->{time};
    my ($e) = $raw =~ /^key=d30 exp=(\d+) /m;
    ok(defined $e && abs($e - ($now + 2592000)) <= 5,
       'relative ttl reported as absolute exp time');
    like($raw, qr/^key=forever exp=-1 /m, 'ttl 0 reported as exp=-1');
}

# bad exptime
is($srv->store('set', 'bad', 'x', 0, 'abc'),
   "CLIENT_ERROR bad command line format\r\n", 'non-numeric exptime');
is($srv->read_line, "ERROR\r\n", '(the data line then is an unknown command)');

# expiry counters: an expired item fetched counts as get_expired
{
    $srv->cmd('stats reset');
    $srv->mem_set('ex', 'x', 0, 1);
    ok(MemcTest::wait_until(sub { !defined $srv->mem_get('ex') }, 4,
                            'ttl 1 item to expire'), 'ttl 1 item expired');
    my $st = $srv->stats;
    ok($st->{get_expired} >= 1, "get_expired counted ($st->{get_expired})");
}

done_testing();
