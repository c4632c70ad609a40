#!/usr/bin/perl
# touch / gat / gats: replies, exptime changes, counters.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcTest;

my $srv = MemcTest->start();

sub exp_of {
    my ($key) = @_;
    my $l = $srv->metadump_line($key) // '';
    return $l =~ / exp=(-?\d+) / ? $1 : undef;
}

$srv->mem_set('t', 'val', 3, 0);
is($srv->cmd('touch t 100'), "TOUCHED\r\n", 'touch existing: TOUCHED');
is($srv->cmd('touch nope 100'), "NOT_FOUND\r\n", 'touch missing: NOT_FOUND');
is($srv->get_raw('get t'), "VALUE t 3 3\r\nval\r\nEND\r\n",
   'touch keeps value and flags');
{
    my $now = $srv->stats->{time};
    my $e = exp_of('t');
    ok(defined $e && $e >= $now + 97 && $e <= $now + 102,
       "touch set exptime to now+100 (now $now exp=" . ($e // 'undef') . ")");
}
is($srv->cmd('touch t 0'), "TOUCHED\r\n", 'touch to 0');
is(exp_of('t'), -1, 'exptime 0 shows as exp=-1 (never)');

# gat / gats
is($srv->get_raw('gat 200 t'), "VALUE t 3 3\r\nval\r\nEND\r\n",
   'gat returns the value like get');
{
    my $now = $srv->stats->{time};
    my $e = exp_of('t');
    ok(defined $e && $e >= $now + 197 && $e <= $now + 202,
       'gat updated the exptime') or diag("now $now exp " . ($e // 'undef'));
}
like($srv->get_raw('gats 300 t'), qr/\AVALUE t 3 3 \d+\r\nval\r\nEND\r\n\z/,
     'gats returns the value like gets');
$srv->mem_set('u', 'v2', 4);
like($srv->get_raw('gat 0 t miss u t'),
     qr/\AVALUE t 3 3\r\nval\r\nVALUE u 4 2\r\nv2\r\nVALUE t 3 3\r\nval\r\nEND\r\n\z/,
     'gat with several keys: request order, misses skipped');
is($srv->get_raw('gat 10 miss'), "END\r\n", 'gat miss: END');
is($srv->get_raw('gats 10 miss'), "END\r\n", 'gats miss: END');

# errors
is($srv->cmd('touch'), "ERROR\r\n", 'touch without args');
is($srv->cmd('touch t'), "ERROR\r\n", 'touch without exptime');
is($srv->cmd('touch t abc'), "CLIENT_ERROR invalid exptime argument\r\n",
   'touch with bad exptime');
is($srv->cmd('touch t 99999999999999999999'),
   "CLIENT_ERROR invalid exptime argument\r\n", 'touch with huge exptime');
is($srv->cmd('gat'), "ERROR\r\n", 'gat without args');
is($srv->cmd('gats'), "ERROR\r\n", 'gats without args');
is($srv->cmd('gat abc t'), "CLIENT_ERROR invalid exptime argument\r\n",
   'gat with bad exptime');
is($srv->cmd('gats abc t'), "CLIENT_ERROR invalid exptime argument\r\n",
   'gats with bad exptime');
is($srv->cmd('touch ' . ('k' x 251) . ' 10'),
   "CLIENT_ERROR bad command line format\r\n", 'touch with 251-byte key');
is($srv->get_raw('get t'), "VALUE t 3 3\r\nval\r\nEND\r\n",
   'item intact after errors');

# noreply
{
    my $s = $srv->new_sock;
    $srv->send("touch t 500 noreply\r\ntouch nope 5 noreply\r\n", $s);
    is($srv->cmd('version', $s) =~ /^VERSION / ? 'ok' : 'bad', 'ok',
       'touch noreply: no reply bytes before the next answer');
    my $now = $srv->stats->{time};
    my $e = exp_of('t');
    ok(defined $e && $e >= $now + 497 && $e <= $now + 502,
       'touch noreply applied') or diag("now $now exp " . ($e // 'undef'));
}

# negative exptime expires at once
$srv->mem_set('gone1', 'x');
is($srv->cmd('touch gone1 -1'), "TOUCHED\r\n", 'touch -1: TOUCHED');
is($srv->get_raw('get gone1'), "END\r\n", 'then the item is gone');
$srv->mem_set('gone2', 'x');
is($srv->get_raw('gat -1 gone2'), "VALUE gone2 0 1\r\nx\r\nEND\r\n",
   'gat -1 returns the value');
is($srv->get_raw('get gone2'), "END\r\n", 'then the item is gone');

# touch extends life: a short ttl made long survives past the short one
{
    $srv->mem_set('short', 'x', 0, 2);
    $srv->mem_set('ctrl', 'x', 0, 2);
    is($srv->cmd('touch short 100'), "TOUCHED\r\n", 'touch 2s item to 100s');
    my $t0 = time;
    ok(MemcTest::wait_until(sub { !defined $srv->mem_get('ctrl') }, 6,
                            'control item to expire'),
       'untouched control item expired');
    is(scalar $srv->mem_get('short'), 'x', 'touched item still there');
    # gat can shorten it again
    is($srv->get_raw('gat 1 short'), "VALUE short 0 1\r\nx\r\nEND\r\n",
       'gat 1');
    ok(MemcTest::wait_until(sub { !defined $srv->mem_get('short') }, 5,
                            'gat-shortened item to expire'),
       'item expired after gat shortened it');
}

# counters
{
    $srv->cmd('stats reset');
    $srv->mem_set('c', 'x');
    $srv->cmd('touch c 10');
    $srv->cmd('touch none 10');
    $srv->get_raw('gat 10 c');
    $srv->get_raw('gats 10 none');
    my $st = $srv->stats;
    is($st->{cmd_touch}, 4, 'cmd_touch counts touch, gat and gats');
    is($st->{touch_hits}, 2, 'touch_hits');
    is($st->{touch_misses}, 2, 'touch_misses');
}

done_testing();
