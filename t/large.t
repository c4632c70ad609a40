#!/usr/bin/perl
# Large values: -I 2m allows a 1.5 MB binary value; the default 1 MB
# limit refuses a value of 1048576 bytes and swallows its data.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;

sub blob {
    my ($len, $seed) = @_;
    my $s = '';
    my $x = $seed;
    while (length $s < $len) {
        $x = ($x * 1103515245 + 12345) % 2147483648;
        $s .= pack('N', $x) . "\r\n\0";
    }
    return substr($s, 0, $len);
}

{
    my $srv = MemcTest->start('-I', '2m');
    is($srv->stats('settings')->{item_size_max}, 2097152,
       '-I 2m: item_size_max 2097152');
    my $v = blob(1_500_000, 7);
    is($srv->mem_set('big', $v, 123), "STORED\r\n", '1.5 MB value stored');
    my ($raw, $items) = do {
        $srv->send("get big\r\n");
        $srv->read_values;
    };
    is(scalar @$items, 1, 'one VALUE back');
    ok($items->[0] && $items->[0]{value} eq $v, '1.5 MB round trip, binary-safe');
    is($items->[0]{flags}, 123, 'flags kept');
    like($raw, qr/\AVALUE big 123 1500000\r\n/, 'VALUE line');
    like($raw, qr/\r\nEND\r\n\z/, 'END after the data');

    my $v2 = blob(2_000_000, 9);
    is($srv->mem_set('big2', $v2), "STORED\r\n", '2,000,000 bytes under -I 2m');
    is(scalar $srv->mem_get('big2'), $v2, 'round trip');
    is($srv->mem_set('toobig', blob(2_097_152, 3)),
       "SERVER_ERROR object too large for cache\r\n",
       '2 MB exactly is over the limit (item overhead)');
    is($srv->mem_set('toobig', blob(3_000_000, 3)),
       "SERVER_ERROR object too large for cache\r\n", '3 MB refused');
    like($srv->cmd('version'), qr/\AVERSION /, 'data swallowed, line in sync');

    # several large values pipelined
    my @vals = map { blob(600_000 + $_, $_) } 1 .. 5;
    $srv->send(join '', map { "set p$_ 0 0 " . length($vals[$_ - 1])
                              . "\r\n$vals[$_ - 1]\r\n" } 1 .. 5);
    my @r = map { $srv->read_line } 1 .. 5;
    is_deeply(\@r, [("STORED\r\n") x 5], 'five 600 KB sets pipelined');
    $srv->send("get p1 p2 p3 p4 p5\r\n");
    my (undef, $got) = $srv->read_values;
    is_deeply([map { $_->{value} } @$got], \@vals, 'multi-get of five');

    # append growing past 1 MB is fine under -I 2m
    $srv->mem_set('grow', blob(900_000, 1));
    is($srv->store('append', 'grow', blob(900_000, 2)), "STORED\r\n",
       'append to 1.8 MB');
    is(length $srv->mem_get('grow'), 1_800_000, 'length 1.8 MB');
    $srv->stop;
}

{
    my $srv = MemcTest->start();
    is($srv->stats('settings')->{item_size_max}, 1048576,
       'default item_size_max 1048576');
    my $near = blob(1_048_576 - 1024, 5);
    is($srv->mem_set('near', $near), "STORED\r\n",
       '1 MB - 1 KB value fits under the default limit');
    is(scalar $srv->mem_get('near'), $near, 'round trip');
    is($srv->mem_set('over', blob(1_048_576, 6)),
       "SERVER_ERROR object too large for cache\r\n",
       '1048576-byte value: object too large');
    like($srv->cmd('version'), qr/\AVERSION /,
         'next command on the same connection works');
    is($srv->get_raw('get over'), "END\r\n", 'nothing stored');
    is(scalar $srv->mem_get('near'), $near, 'earlier value intact');
    ok($srv->stats->{store_too_large} >= 1, 'store_too_large counted');
    $srv->stop;
}

done_testing();
