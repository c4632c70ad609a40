#!/usr/bin/perl
# ma (meta arithmetic): HD / VA / NF / EX, modes I + D - (incr, decr),
# N (create on miss) with J (initial value), D (delta), C (compare
# cas), q, and the return flags c k O t v; non-numeric values, 64-bit
# wrap, decrement floor, and the error replies.

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
my $BADMODE = "CLIENT_ERROR invalid mode for ma M token\r\n";
my $NONNUM =
    "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";

sub ex  { return exchange($srv, @_) }
sub rep { return mcmd($srv, @_) }

# --- miss ---------------------------------------------------------------
is(rep('ma cnt'), "NF\r\n", 'ma of a missing key: NF');
is(rep('ma cnt v'), "NF\r\n", 'NF with v: no value');
is(rep('ma cnt k O1 c t v'), "NF kcnt O1\r\n",
   'NF echoes k and O only');
is(rep('ma cnt O1 k'), "NF O1 kcnt\r\n", 'in request order');
is(rep('ma cnt MD'), "NF\r\n", 'decr of a missing key: NF');
is(rep('mg cnt v'), "EN\r\n", 'nothing created');

# --- N / J: create on miss ----------------------------------------------
is(rep('ma cnt N0 v'), "VA 1\r\n0\r\n",
   'N on a miss: created with the default initial value 0');
is(rep('ma cnt v'), "VA 1\r\n1\r\n", 'then incremented by 1');
is(rep('ma cnt N0 v'), "VA 1\r\n2\r\n", 'N on a hit: a normal incr');
is(rep('ma j1 N0 J10 v'), "VA 2\r\n10\r\n", 'J10: initial value 10');
is(rep('ma j1 N0 J10 v'), "VA 2\r\n11\r\n", 'J ignored on a hit');
is(rep('ma j2 N0 J5 MD v'), "VA 1\r\n5\r\n",
   'decr mode creates with J as well, no delta applied');
is(rep('ma j3 N100 J7 k O1 t v'), "VA 1 kj3 O1 t100\r\n7\r\n",
   'N100: TTL 100, flags in request order');
is_ttl(rep('mg j3 t v'), "VA 1 t{100}\r\n7\r\n", 'the created item');
is(rep('ma j4 N0 J18446744073709551615 v'),
   "VA 20\r\n18446744073709551615\r\n", 'J 2^64-1');
is(rep('ma j5 N0 J1'), "HD\r\n", 'created without v: HD');
is($srv->get_raw('get j5'), "VALUE j5 0 1\r\n1\r\nEND\r\n",
   'a plain item with flags 0');
is(rep('ma j6 J9 v'), "NF\r\n", 'J without N: NF');

# --- modes and delta ----------------------------------------------------
ex("ms n 2\r\n10\r\n");
is(rep('ma n'), "HD\r\n", 'incr: HD');
is(rep('mg n v'), "VA 2\r\n11\r\n", 'by 1');
is(rep('ma n MI v'), "VA 2\r\n12\r\n", 'MI: incr');
is(rep('ma n M+ v D8'), "VA 2\r\n20\r\n", 'M+ with D8');
is(rep('ma n MD v'), "VA 2\r\n19\r\n", 'MD: decr by 1');
is(rep('ma n M- v D9'), "VA 2\r\n10\r\n", 'M- with D9');
is(rep('ma n M- v D100'), "VA 1\r\n0\r\n", 'decr stops at 0');
is(rep('ma n MD v'), "VA 1\r\n0\r\n", 'and stays 0');
is(rep('ma n D18446744073709551615 v'), "VA 20\r\n18446744073709551615\r\n",
   'D 2^64-1');
is(rep('ma n v'), "VA 1\r\n0\r\n", 'incr past 2^64-1 wraps to 0');
is(rep('ma n D0 v'), "VA 1\r\n0\r\n", 'D0');
is(rep('ma n Mi v'), $BADMODE, 'Mi: lower case is not a mode (1.6.18)');
is(rep('ma n Md v'), $BADMODE, 'Md neither');
is(rep('ma n Mx v'), $BADMODE, 'Mx');
is(rep('ma n ME v'), $BADMODE, 'ME (an ms mode)');
is(rep('ma n MII v'), $BADFLAG, 'M with two letters');
is(rep('ma n M v'), $BADFLAG, 'M without a letter');
is(rep('ma n D v'), $BADFLAG, 'D without a number');
is(rep('ma n Dx v'), $BADFLAG, 'D with junk');
is(rep('ma n D-1 v'), $BADFLAG, 'D negative');
is(rep('ma n D18446744073709551616 v'), $BADFLAG, 'D 2^64');
is(rep('ma n J v'), $BADFLAG, 'J without a number');
is(rep('ma n Jx N0 v'), $BADFLAG, 'J with junk');
is(rep('ma n N v'), $BADFLAG, 'N without a number');
is(rep('mg n v'), "VA 20\r\n0" . (' ' x 19) . "\r\n",
   'no bad flag changed the value (0, padded to the 20 digits it had)');

# --- the stored text: grows, and shrinks with space padding -------------
ex("ms g 2\r\n99\r\n");
is(rep('ma g v'), "VA 3\r\n100\r\n", '99 + 1 = 100');
is(rep('mg g v s'), "VA 3 s3\r\n100\r\n", 'the item grew to 3 bytes');
is(rep('ma g MD D95 v'), "VA 1\r\n5\r\n", 'decr to one digit');
is(rep('mg g v s'), "VA 3 s3\r\n5  \r\n",
   'the stored text keeps its length, padded with spaces');
is($srv->get_raw('get g'), "VALUE g 0 3\r\n5  \r\nEND\r\n",
   'classic get sees the padding');
is(rep('ma g v'), "VA 1\r\n6\r\n", 'a padded number still counts');

# --- return flags: c k O t v, in request order --------------------------
{
    ex("ms r 2 T0\r\n10\r\n");
    my $r = rep('ma r v c t k O7');
    like($r, qr/\AVA 2 c(\d+) t-1 kr O7\r\n11\r\n\z/, 'VA with c t k O');
    my ($cas) = $r =~ / c(\d+) /;
    is(rep('mg r c'), "HD c$cas\r\n", 'c is the cas after the change');
    $r = rep('ma r O7 k t c');
    like($r, qr/\AHD O7 kr t-1 c(\d+)\r\n\z/, 'HD with flags, request order');
    my ($cas2) = $r =~ / c(\d+)/;
    ok($cas2 > $cas, 'each incr gives a new cas');
    is(rep('ma r O'), "HD O\r\n", 'empty opaque');
    is(rep('ma r O' . ('o' x 32)), "CLIENT_ERROR opaque token too long\r\n",
       'opaque of 33 bytes');
}

# --- T (TTL) ------------------------------------------------------------
ex("ms tt 1\r\n1\r\n");
is(rep('ma tt T100 t'), "HD t100\r\n", 'T100 then t: t100');
is_ttl(rep('mg tt t v'), "VA 1 t{100}\r\n2\r\n", 'the TTL stays');
is(rep('ma tt T0 t v'), "VA 1 t-1\r\n3\r\n", 'T0: no TTL');
is(rep('mg tt t'), "HD t-1\r\n", 'kept');

# --- C (compare cas) ----------------------------------------------------
{
    ex("ms cc 1\r\n5\r\n");
    my $cas = mcas($srv, 'cc');
    is(rep('ma cc C' . ($cas + 1) . ' v'), "EX\r\n", 'C mismatch: EX');
    is(rep('ma cc C1 k O3 v'), "EX kcc O3\r\n", 'EX echoes k and O');
    is(rep('mg cc v'), "VA 1\r\n5\r\n", 'EX changed nothing');
    is(rep("ma cc C$cas v"), "VA 1\r\n6\r\n", 'C match: applied');
    is(rep("ma cc C$cas v"), "EX\r\n", 'the old cas is stale now');
    is(rep("ma nocc C$cas v"), "NF\r\n", 'C on a miss: NF');
    is(rep('ma cc Cx'), $BADFLAG, 'C with junk');
}

# --- q ------------------------------------------------------------------
ex("ms qq 1\r\n1\r\n");
is(rep('ma qq q'), '', 'q: HD hidden');
is(rep('ma qq q v'), '', 'q: VA is hidden too (unlike mg)');
is(rep('mg qq v'), "VA 1\r\n3\r\n", 'both incrs done');
is(rep('ma nope q'), "NF\r\n", 'q: NF sent');
is(rep('ma qq q C1'), "EX\r\n", 'q: EX sent');
is(rep('ma qq q Dx'), $BADFLAG, 'q: errors sent');
is(rep('ma qq q N0'), '', 'q with N on a hit: hidden');
is(rep('ma qn q N0'), "HD\r\n",
   'q with N on a miss: the create answers HD anyway (1.6.18)');
is(rep('ma qn2 q N0 v'), "VA 1\r\n0\r\n", '... and VA with v');
is(rep('ma qn2 q N0 v'), '', 'then, on a hit, nothing');
is(ex("ma qq q\r\nma qq q MD\r\nma nope q k\r\nmn\r\n"), "NF knope\r\nMN\r\n",
   'quiet pipeline: only the miss, then MN');
is(rep('mg qq v'), "VA 1\r\n4\r\n", 'N0 +1, then +1 -1');

# --- non-numeric values ---------------------------------------------------
ex("ms txt 3\r\nabc\r\n");
is(rep('ma txt'), $NONNUM, 'ma of text');
is(rep('ma txt MD v'), $NONNUM, 'decr of text');
is(rep('ma txt q'), $NONNUM, 'sent with q');
is(rep('mg txt v'), "VA 3\r\nabc\r\n", 'unchanged');
ex("ms e 0\r\n\r\n");
is(rep('ma e v'), $NONNUM, 'ma of an empty value');
ex("ms neg 2\r\n-1\r\n");
is(rep('ma neg v'), $NONNUM, 'ma of "-1"');

# --- classic and meta on the same numbers ---------------------------------
$srv->mem_set('mix', '41', 3);
is(rep('ma mix v'), "VA 2\r\n42\r\n", 'ma on a classic set');
is($srv->cmd('incr mix 8'), "50\r\n", 'classic incr after ma');
is(rep('ma mix MD D50 v'), "VA 1\r\n0\r\n", 'ma decr');
is($srv->get_raw('get mix'), "VALUE mix 3 2\r\n0 \r\nEND\r\n",
   'flags kept, text padded');

# --- base64 keys ----------------------------------------------------------
{
    my $b = encode_base64("c\x00nt", '');
    is(rep("ma $b b N0 J4 v k"), "VA 1 k$b b\r\n4\r\n",
       'ma b: N/J with a binary key; k in base64 + b');
    is(rep("ma $b b v"), "VA 1\r\n5\r\n", 'incr it');
    is(rep("mg $b b v"), "VA 1\r\n5\r\n", 'mg b reads it');
    is(rep('ma ZW5j b v k'), "NF kZW5j b\r\n", 'NF with a base64 key');
    is(rep('ma enc b v'), $BADFLAG,
       'bad base64: invalid or duplicate flag (no decode error in ma)');
}

# --- errors ---------------------------------------------------------------
is(rep('ma'), "ERROR\r\n", 'ma without a key: ERROR');
is(rep('ma n x'), $BADFLAG, 'unknown flag');
is(rep('ma n E5'), $BADFLAG, 'E is not a 1.6.18 flag');
is(rep('ma n v v'), $BADFLAG, 'duplicate v');
is(rep('ma n D1 D2'), $BADFLAG, 'duplicate D');
is(rep('ma ' . ('k' x 251)), $BADFMT, 'key of 251 bytes');
is(rep('ma ' . ('k' x 250)), "NF\r\n", 'key of 250 bytes');
is(rep('ma n ' . join(' ', ('x') x 17)), $BADFLAG, '17 flag tokens');
is(rep('ma n ' . join(' ', ('v') x 18)),
   "CLIENT_ERROR options flags too long\r\n", '18 flag tokens');
is(rep('MA n'), "ERROR\r\n", 'MA (upper case) is unknown');

done_testing();
