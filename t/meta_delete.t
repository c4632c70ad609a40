#!/usr/bin/perl
# md (meta delete): HD / NF / EX, the flags b C I k O q T, invalidation
# (I: the item stays, stale, with a new cas; mg then answers X with W
# once and Z after), and the error replies.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;
use MemcMeta;
use MIME::Base64 qw(encode_base64);

my $srv = MemcTest->start();
my $BADFMT = "CLIENT_ERROR bad command line format\r\n";
my $BADFLAG = "CLIENT_ERROR invalid or duplicate flag\r\n";

sub ex  { return exchange($srv, @_) }
sub rep { return mcmd($srv, @_) }

# --- hit, miss, k and O -------------------------------------------------
ex("ms d1 1\r\na\r\n");
is(rep('md d1'), "HD\r\n", 'md of a stored key: HD');
is(rep('mg d1 v'), "EN\r\n", 'gone');
is($srv->get_raw('get d1'), "END\r\n", 'gone for classic get too');
is(rep('md d1'), "NF\r\n", 'md of a missing key: NF');
ex("ms d1 1\r\na\r\n");
is(rep('md d1 k O9'), "HD kd1 O9\r\n", 'HD echoes k and O');
is(rep('md d1 k O9'), "NF kd1 O9\r\n", 'NF echoes k and O');
ex("ms d1 1\r\na\r\n");
is(rep('md d1 O9 k'), "HD O9 kd1\r\n", 'in request order');
is(rep('md d1 Oabc'), "NF Oabc\r\n", 'O alone');
is(rep('md d1 O' . ('o' x 32)), "CLIENT_ERROR opaque token too long\r\n",
   'opaque of 33 bytes: too long');

# --- q: HD hidden, NF and EX sent -----------------------------------------
ex("ms d2 1\r\na\r\n");
is(rep('md d2 q'), '', 'q: HD hidden');
is(rep('mg d2 v'), "EN\r\n", 'but deleted');
is(rep('md d2 q'), "NF\r\n", 'q: NF sent');
is(rep('md d2 q k O1'), "NF kd2 O1\r\n", 'q: NF with k and O');
ex("ms d2 1\r\na\r\n");
is(rep('md d2 q C1'), "EX\r\n", 'q: EX sent');
is(ex("md d2 q\r\nmd d2 q\r\nmd d2 q k\r\nmn\r\n"), "NF\r\nNF kd2\r\nMN\r\n",
   'quiet deletes then mn: only the failures and MN');

# --- C: compare cas -------------------------------------------------------
{
    ex("ms c1 1\r\na\r\n");
    my $cas = mcas($srv, 'c1');
    is(rep('md c1 C' . ($cas + 1)), "EX\r\n", 'C above: EX');
    is(rep('md c1 C' . ($cas - 1)), "EX\r\n", 'C below: EX');
    is(rep('mg c1 v'), "VA 1\r\na\r\n", 'EX deleted nothing');
    is(rep("md c1 C$cas k"), "HD kc1\r\n", 'C equal: HD');
    is(rep('mg c1 v'), "EN\r\n", 'deleted');
    is(rep("md c1 C$cas"), "NF\r\n", 'C on a missing key: NF');
    is(rep('md c1 Cx'), $BADFLAG, 'C with junk');
    is(rep('md c1 C'), $BADFLAG, 'C without a number');
}

# --- T without I: a plain delete -----------------------------------------
ex("ms t1 1 T100\r\na\r\n");
is(rep('md t1 T5'), "HD\r\n", 'md T5 without I');
is(rep('mg t1 v'), "EN\r\n", 'deleted, not re-timed');

# --- I: invalidate --------------------------------------------------------
{
    ex("ms st 3 T0 F4\r\nold\r\n");
    my $c0 = mcas($srv, 'st');
    is(rep('md st I T30 k O1'), "HD kst O1\r\n", 'md I: HD');
    my $r = rep('mg st c f t v');
    like($r, qr/\AVA 3 c(\d+) f4 t30 X W\r\nold\r\n\z/,
         'stale: value and flags kept, TTL from T, X W');
    my ($c1) = $r =~ / c(\d+) /;
    ok($c1 > $c0, "md I gave a new cas ($c0 -> $c1)");
    is_ttl(rep('mg st c t v'), "VA 3 c$c1 t{30} Z X\r\nold\r\n",
           'next fetch: Z X');
    like($srv->get_raw('gets st'), qr/\AVALUE st 4 3 $c1\r\nold\r\nEND\r\n\z/,
         'classic gets: the item with its new cas');
    is(rep('md st I'), "HD\r\n", 'md I again');
    like(rep('mg st v t'), qr/\AVA 3 t(?:30|29|28) X W\r\nold\r\n\z/,
         'a new invalidation hands out W again; I without T keeps the TTL');
    is(rep('md st I T0'), "HD\r\n", 'md I T0');
    is(rep('mg st t'), "HD t-1 X W\r\n", 'T0: no TTL any more; W again');
    is(rep('md st I C1'), "EX\r\n", 'md I with a wrong C: EX');
    my $c2 = mcas($srv, 'st');
    is(rep("md st I C$c2"), "HD\r\n", 'md I with the right C');
    like(rep('mg st c'), qr/\AHD c(\d+) X W\r\n\z/, 'stale, W');
    is(rep('md st I q'), '', 'md I q: HD hidden');
    is(rep('mg st q'), "HD X W\r\n", 'but done');
    is(rep('md nothere I'), "NF\r\n", 'md I of a missing key: NF');
    is(rep('md nothere I q'), "NF\r\n", 'NF even with q');
    is(rep('mg nothere v'), "EN\r\n", 'md I creates nothing');

    # the recache: the W winner stores with the cas it saw
    $r = rep('mg st c v');
    my ($c3) = $r =~ / c(\d+)/;
    like(ex("ms st 3 C$c3 T100\r\nnew\r\n"), qr/\AHD\r\n\z/,
         'ms with the stale item cas: stored');
    is_ttl(rep('mg st v t'), "VA 3 t{100}\r\nnew\r\n",
           'fresh: no X, no Z');
    is(rep('md st'), "HD\r\n", 'md without I deletes');
    is(rep('mg st v'), "EN\r\n", 'gone');

    ex("ms st 1 T100\r\na\r\n");
    is(rep('md st I T-1'), "HD\r\n", 'md I T-1');
    is(rep('mg st v'), "EN\r\n", 'expired at once');

    ex("ms st 1\r\na\r\n");
    rep('md st I');
    is(rep('md st'), "HD\r\n", 'md of a stale item: HD');
    is(rep('mg st v'), "EN\r\n", 'deleted');
}

# --- b (base64 key) -------------------------------------------------------
{
    my $b = encode_base64("k\x00 y\r\n", '');
    ex("ms $b 1 b\r\nz\r\n");
    is(rep("md $b b k O1"), "HD k$b b O1\r\n", 'md b: HD, k in base64 + b');
    is(rep("md $b b k"), "NF k$b b\r\n", 'NF, k in base64 + b');
    ex("ms foo 1\r\nz\r\n");
    is(rep('md Zm9v b'), "HD\r\n", 'md b of plain foo');
    is($srv->get_raw('get foo'), "END\r\n", 'gone');
    is(rep('md ab b'), $BADFLAG,
       'bad base64: invalid or duplicate flag (md reports no decode error)');
    my $long = encode_base64('z' x 187, '');
    is(rep("md $long b"), $BADFMT, 'encoded key over 250: bad format');
}

# --- errors ---------------------------------------------------------------
ex("ms keep 4\r\nkeep\r\n");
is(rep('md'), "ERROR\r\n", 'md without a key: ERROR');
is(rep('md keep x'), $BADFLAG, 'unknown flag');
is(rep('md keep E5'), $BADFLAG, 'E is not a 1.6.18 flag');
is(rep('md keep I I'), $BADFLAG, 'duplicate I');
is(rep('md keep q q'), $BADFLAG, 'duplicate q');
is(rep('md keep Tx I'), $BADFLAG, 'T with junk');
is(rep('md keep extra words'), $BADFLAG, 'old "delete key 0" style words');
is(rep('md keep q x'), $BADFLAG, 'errors are sent with q');
is(rep('md ' . ('k' x 251)), $BADFMT, 'key of 251 bytes');
is(rep('md ' . ('k' x 250)), "NF\r\n", 'key of 250 bytes');
is(rep('md keep ' . join(' ', ('x') x 17)), $BADFLAG,
   '17 flag tokens: parsed');
is(rep('md keep ' . join(' ', ('q') x 18)),
   "CLIENT_ERROR options flags too long\r\n",
   '18 flag tokens: options flags too long');
is(rep('mg keep v'), "VA 4\r\nkeep\r\n", 'no error deleted anything');

done_testing();
