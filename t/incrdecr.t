#!/usr/bin/perl
# incr/decr: 64-bit wrap, floor at 0, errors, in-place length rules.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;

my $srv = MemcTest->start();

is($srv->mem_set('n', '10', 5, 0), "STORED\r\n", 'set 10');
is($srv->cmd('incr n 5'), "15\r\n", 'incr 5 -> 15');
is($srv->cmd('decr n 3'), "12\r\n", 'decr 3 -> 12');
is($srv->cmd('incr n 0'), "12\r\n", 'incr 0 -> unchanged');
is($srv->cmd('decr n 0'), "12\r\n", 'decr 0 -> unchanged');
is($srv->get_raw('get n'), "VALUE n 5 2\r\n12\r\nEND\r\n",
   'stored value updated, flags kept');

# floor at 0 on decr
is($srv->cmd('decr n 100'), "0\r\n", 'decr below zero stops at 0');
is($srv->cmd('decr n 1'), "0\r\n", 'decr of 0 stays 0');

# 64-bit wrap on incr
is($srv->mem_set('w', '18446744073709551615'), "STORED\r\n",
   'set 2^64-1');
is($srv->cmd('incr w 1'), "0\r\n", 'incr 2^64-1 by 1 wraps to 0');
is($srv->get_raw('get w'), "VALUE w 0 20\r\n0" . (' ' x 19) . "\r\nEND\r\n",
   'shorter result is space-padded in place to the old length');
is($srv->cmd('incr w 18446744073709551615'), "18446744073709551615\r\n",
   'incr by 2^64-1');
is($srv->cmd('incr w 18446744073709551615'), "18446744073709551614\r\n",
   'incr by 2^64-1 again wraps');
is($srv->mem_set('w2', '18446744073709551610'), "STORED\r\n", 'set');
is($srv->cmd('incr w2 10'), "4\r\n", '2^64-6 + 10 wraps to 4');

# length changes
$srv->mem_set('len', '99');
is($srv->cmd('incr len 1'), "100\r\n", '99 + 1 = 100');
is($srv->get_raw('get len'), "VALUE len 0 3\r\n100\r\nEND\r\n",
   'value grew from 2 to 3 bytes');
is($srv->cmd('decr len 1'), "99\r\n", '100 - 1 = 99');
is($srv->get_raw('get len'), "VALUE len 0 3\r\n99 \r\nEND\r\n",
   'shrunk value keeps its length, padded with a space');
is($srv->cmd('incr len 1'), "100\r\n", 'padded value still counts');
is($srv->cmd('incr len 900'), "1000\r\n", '100 + 900 = 1000');
is($srv->get_raw('get len'), "VALUE len 0 4\r\n1000\r\nEND\r\n",
   'grown to 4 bytes');

# what counts as numeric
for my $case (['012', '13'], [' 12', '13'], ['12 ', '13'],
              ['0', '1'], ['00000000000000000009', '10']) {
    my ($v, $want) = @$case;
    $srv->mem_set('num', $v);
    is($srv->cmd('incr num 1'), "$want\r\n", "incr of '$v' -> $want");
}
for my $v ('abc', '12a', '-5', '', '18446744073709551616',
           '123456789012345678901', '1.5', "\0") {
    $srv->mem_set('nn', $v);
    (my $show = $v) =~ s/\0/\\0/g;
    is($srv->cmd('incr nn 1'),
       "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
       "incr of '$show': non-numeric");
    is($srv->cmd('decr nn 1'),
       "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
       "decr of '$show': non-numeric");
    is(scalar $srv->mem_get('nn'), $v, "value '$show' unchanged");
}

# bad deltas
$srv->mem_set('d', '5');
for my $delta ('abc', '-1', '18446744073709551616', '1.5', '0x10', '1a',
               '99999999999999999999999') {
    is($srv->cmd("incr d $delta"),
       "CLIENT_ERROR invalid numeric delta argument\r\n",
       "incr delta '$delta': invalid numeric delta argument");
    is($srv->cmd("decr d $delta"),
       "CLIENT_ERROR invalid numeric delta argument\r\n",
       "decr delta '$delta': invalid numeric delta argument");
}
is($srv->get_raw('get d'), "VALUE d 0 1\r\n5\r\nEND\r\n",
   'value intact after bad deltas');

# missing key
is($srv->cmd('incr missing 1'), "NOT_FOUND\r\n", 'incr missing: NOT_FOUND');
is($srv->cmd('decr missing 1'), "NOT_FOUND\r\n", 'decr missing: NOT_FOUND');
is($srv->get_raw('get missing'), "END\r\n", 'incr does not create');

# wrong arity
is($srv->cmd('incr'), "ERROR\r\n", 'incr without args: ERROR');
is($srv->cmd('incr d'), "ERROR\r\n", 'incr without delta: ERROR');
is($srv->cmd('decr d'), "ERROR\r\n", 'decr without delta: ERROR');

# key too long
is($srv->cmd('incr ' . ('k' x 251) . ' 1'),
   "CLIENT_ERROR bad command line format\r\n", 'incr with 251-byte key');

# noreply
{
    my $s = $srv->new_sock;
    $srv->mem_set('q', '10', 0, 0, $s);
    $srv->send("incr q 5 noreply\r\n", $s);
    $srv->send("decr q 2 noreply\r\n", $s);
    $srv->send("incr nope 1 noreply\r\n", $s);
    is($srv->get_raw('get q', $s), "VALUE q 0 2\r\n13\r\nEND\r\n",
       'incr/decr noreply applied silently');
}

# exptime kept
{
    $srv->mem_set('keep', '1', 7, 1000);
    $srv->cmd('incr keep 1');
    my $meta = $srv->metadump_line('keep');
    my $st = $srv->stats;
    ok(defined $meta && $meta =~ /exp=(\d+)/ && $1 > $st->{time} + 900,
       'incr keeps the exptime') or diag($meta // 'no metadump line');
}

# stats
{
    my $st = $srv->stats;
    ok($st->{incr_hits} > 0 && $st->{decr_hits} > 0, 'incr/decr hits');
    ok($st->{incr_misses} >= 1 && $st->{decr_misses} >= 1,
       'incr/decr misses');
}

done_testing();
