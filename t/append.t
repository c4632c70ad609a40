#!/usr/bin/perl
# append / prepend: concatenation, misses, flags and exptime ignored.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;

my $srv = MemcTest->start();

is($srv->mem_set('k', 'middle', 42), "STORED\r\n", 'set base value');
is($srv->store('append', 'k', '-end'), "STORED\r\n", 'append STORED');
is($srv->store('prepend', 'k', 'start-'), "STORED\r\n", 'prepend STORED');
is($srv->get_raw('get k'), "VALUE k 42 16\r\nstart-middle-end\r\nEND\r\n",
   'appended and prepended value, original flags kept');

is($srv->store('append', 'k', '!', 7, 0), "STORED\r\n",
   'append with other flags');
is($srv->store('prepend', 'k', '>', 9, 0), "STORED\r\n",
   'prepend with other flags');
is($srv->get_raw('get k'), "VALUE k 42 18\r\n>start-middle-end!\r\nEND\r\n",
   'flags given to append/prepend are ignored');

# misses
is($srv->store('append', 'nokey', 'x'), "NOT_STORED\r\n",
   'append on missing key: NOT_STORED');
is($srv->store('prepend', 'nokey', 'x'), "NOT_STORED\r\n",
   'prepend on missing key: NOT_STORED');
is($srv->get_raw('get nokey'), "END\r\n", 'missing key still missing');

# empty pieces and empty base
is($srv->mem_set('e', ''), "STORED\r\n", 'empty base');
is($srv->store('append', 'e', ''), "STORED\r\n", 'append empty to empty');
is($srv->get_raw('get e'), "VALUE e 0 0\r\n\r\nEND\r\n", 'still empty');
is($srv->store('append', 'e', 'a'), "STORED\r\n", 'append to empty');
is($srv->store('prepend', 'e', ''), "STORED\r\n", 'prepend empty');
is($srv->get_raw('get e'), "VALUE e 0 1\r\na\r\nEND\r\n", 'value "a"');

# binary data
{
    my $b1 = "\0\r\n";
    my $b2 = "\r\nEND\r\n";
    $srv->mem_set('bin', 'X');
    is($srv->store('append', 'bin', $b1), "STORED\r\n", 'append binary');
    is($srv->store('prepend', 'bin', $b2), "STORED\r\n", 'prepend binary');
    is($srv->get_raw('get bin'),
       "VALUE bin 0 " . length("${b2}X$b1") . "\r\n${b2}X$b1\r\nEND\r\n",
       'binary append/prepend byte for byte');
}

# append changes the cas unique
{
    $srv->mem_set('c', 'v');
    my $c1 = $srv->mem_cas('c');
    $srv->store('append', 'c', 'w');
    my $c2 = $srv->mem_cas('c');
    $srv->store('prepend', 'c', 'u');
    my $c3 = $srv->mem_cas('c');
    ok($c1 != $c2 && $c2 != $c3 && $c1 != $c3,
       "append and prepend change cas ($c1 $c2 $c3)");
}

# many appends build a large value
{
    $srv->mem_set('grow', '');
    my $piece = join '', map { chr(65 + $_ % 26) } 0 .. 999;
    my $bad = 0;
    for (1 .. 200) {
        my $r = $srv->store('append', 'grow', $piece);
        $bad++ unless $r eq "STORED\r\n";
    }
    is($bad, 0, '200 appends of 1000 bytes');
    is(scalar $srv->mem_get('grow'), $piece x 200, '200000-byte result');
}

# append that would exceed the item size limit
{
    $srv->mem_set('huge', 'x' x 1000000);
    is($srv->store('append', 'huge', 'y' x 100000),
       "NOT_STORED\r\n",
       'append past the item size limit: NOT_STORED');
    is(length($srv->mem_get('huge')), 1000000, 'original value kept');
}

# noreply
{
    my $s = $srv->new_sock;
    $srv->mem_set('nr', 'b', 0, 0, $s);
    $srv->send("append nr 0 0 1 noreply\r\nc\r\n", $s);
    $srv->send("prepend nr 0 0 1 noreply\r\na\r\n", $s);
    $srv->send("append nomiss 0 0 1 noreply\r\nc\r\n", $s);
    is($srv->get_raw('get nr nomiss', $s), "VALUE nr 0 3\r\nabc\r\nEND\r\n",
       'append/prepend noreply: silent, applied');
}

# append ignores its exptime: the item keeps its own
{
    $srv->mem_set('ttl', 'a', 0, 0);
    is($srv->store('append', 'ttl', 'b', 0, -1), "STORED\r\n",
       'append with negative exptime');
    is($srv->get_raw('get ttl'), "VALUE ttl 0 2\r\nab\r\nEND\r\n",
       'exptime of append is ignored');
}

done_testing();
