#!/usr/bin/perl
# ms (meta set): HD / NS / EX / NF, the flags b c C F I k O q T and the
# M modes (E add, A append, P prepend, R replace, S set), the data block
# and its errors (bad data chunk, object too large), a missing or bad
# <datalen>, and which errors swallow the data block and which do not.

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
my $BADTOK = "CLIENT_ERROR bad token in command line format\r\n";
my $INVAL  = "CLIENT_ERROR invalid flag\r\n";
my $TOOBIG = "SERVER_ERROR object too large for cache\r\n";

sub ex  { return exchange($srv, @_) }
sub rep { return mcmd($srv, @_) }

# data that must survive everything below
ex("ms keep$_ 6 F$_\r\nvalue$_\r\n") for 1 .. 10;
my $keep_raw = $srv->get_raw('get ' . join ' ', map { "keep$_" } 1 .. 10);
sub still_ok {
    my ($what) = @_;
    is($srv->get_raw('get ' . join ' ', map { "keep$_" } 1 .. 10),
       $keep_raw, "stored data intact after $what");
}

# --- plain set ----------------------------------------------------------
is(ex("ms a 3\r\nabc\r\n"), "HD\r\n", 'ms: HD');
is($srv->get_raw('get a'), "VALUE a 0 3\r\nabc\r\nEND\r\n",
   'classic get reads it; flags 0');
is(ex("ms a 5\r\nhello\r\n"), "HD\r\n", 'ms overwrites');
is(rep('mg a v'), "VA 5\r\nhello\r\n", 'new value');
is(ex("ms a 0\r\n\r\n"), "HD\r\n", 'ms with datalen 0');
is(rep('mg a v s'), "VA 0 s0\r\n\r\n", 'empty value');
{
    my $v = "x\r\ny\r\nHD\r\n\0" x 100;
    my $n = length $v;
    is(ex("ms a $n\r\n$v\r\n"), "HD\r\n", 'value with CRLF, NUL, HD inside');
    is(rep('mg a v'), "VA $n\r\n$v\r\n", 'binary value byte for byte');
    my $big = join '', map { chr(($_ * 7) % 256) } 1 .. 1_000_000;
    is(ex("ms big 1000000\r\n$big\r\n"), "HD\r\n", 'ms of 1,000,000 bytes');
    is(rep('mg big v s'), "VA 1000000 s1000000\r\n$big\r\n",
       'and mg of it, byte for byte');
    # data sent in pieces, several commands in one write
    $srv->send("ms p1 10\r\n01234");
    $srv->send("56789\r");
    is(ex("\nms p2 2\r\nab\r\nms p3 1 q\r\nc\r\nms p4 1 k\r\nd\r\n"),
       "HD\r\nHD\r\nHD kp4\r\n", 'split data block; pipelined ms');
    is($srv->get_raw('get p1 p2 p3 p4'),
       "VALUE p1 0 10\r\n0123456789\r\nVALUE p2 0 2\r\nab\r\n"
       . "VALUE p3 0 1\r\nc\r\nVALUE p4 0 1\r\nd\r\nEND\r\n",
       'all four stored');
}

# --- F (client flags), T (TTL) ------------------------------------------
is(ex("ms f 1 F77\r\nx\r\n"), "HD\r\n", 'F77');
is($srv->get_raw('get f'), "VALUE f 77 1\r\nx\r\nEND\r\n", 'flags 77');
is(ex("ms f 1 F4294967295\r\nx\r\n"), "HD\r\n", 'F 2^32-1');
is(rep('mg f f'), "HD f4294967295\r\n", 'flags 2^32-1 back');
is(ex("ms f 1\r\nx\r\n"), "HD\r\n", 'no F');
is(rep('mg f f'), "HD f0\r\n", 'flags reset to 0 when F is not given');
is(ex("ms t 1 T100\r\nx\r\n"), "HD\r\n", 'T100');
is_ttl(rep('mg t t'), "HD t{100}\r\n", 'TTL 100');
is(ex("ms t 1 T0\r\nx\r\n"), "HD\r\n", 'T0');
is(rep('mg t t'), "HD t-1\r\n", 'T0: never expires');
is(ex("ms t 1 T100\r\nx\r\n"), "HD\r\n", 'T100 again');
is(ex("ms t 1\r\nx\r\n"), "HD\r\n", 'no T');
is(rep('mg t t'), "HD t-1\r\n", 'no T: never expires');
is(ex("ms t 1 T-1\r\nx\r\n"), "HD\r\n", 'T-1 answers HD');
is(rep('mg t v'), "EN\r\n", 'T-1: expired at once');

# --- return flags: k O c, in request order ------------------------------
{
    my $r = ex("ms r 3 F77 T0 k O1 c\r\nabc\r\n");
    like($r, qr/\AHD kr O1 c(\d+)\r\n\z/, 'HD k O c in request order');
    my ($cas) = $r =~ / c(\d+)/;
    is(rep('mg r c'), "HD c$cas\r\n", 'c is the cas of the stored item');
    is($srv->mem_cas('r'), $cas, 'the same cas as gets');
    $r = ex("ms r 1 c Oxy k\r\nz\r\n");
    like($r, qr/\AHD c(\d+) Oxy kr\r\n\z/, 'c O k: reply in that order');
    my ($cas2) = $r =~ / c(\d+)/;
    ok($cas2 > $cas, 'a new store, a bigger cas');
    is(ex("ms r 1 ME k O2 c\r\nz\r\n"), "NS kr O2 c0\r\n",
       'failed store: NS, k and O echoed, c0');
    is(ex("ms r 1 O\r\nz\r\n"), "HD O\r\n", 'empty opaque');
    is(ex("ms r 1 O" . ('o' x 31) . "\r\nz\r\n"), 'HD O' . ('o' x 31)
       . "\r\n", 'opaque of 32 bytes');
    is(ex("ms r 1 O" . ('o' x 32) . "\r\nz\r\n"),
       "CLIENT_ERROR opaque token too long\r\n",
       'opaque of 33 bytes: too long, data swallowed');
}

# --- modes --------------------------------------------------------------
is(ex("ms m1 3 F7\r\nabc\r\n"), "HD\r\n", 'base value');
is(ex("ms m1 2 ME\r\nxx\r\n"), "NS\r\n", 'ME (add) on an existing key: NS');
is(rep('mg m1 v f'), "VA 3 f7\r\nabc\r\n", 'failed add changed nothing');
is(ex("ms m2 2 ME F3\r\nxx\r\n"), "HD\r\n", 'ME on a missing key: HD');
is(rep('mg m2 v f'), "VA 2 f3\r\nxx\r\n", 'added');
is(ex("ms m1 2 MA F99 T100\r\n-A\r\n"), "HD\r\n", 'MA (append)');
is(ex("ms m1 2 MP\r\nP-\r\n"), "HD\r\n", 'MP (prepend)');
is(rep('mg m1 v f t'), "VA 7 f7 t-1\r\nP-abc-A\r\n",
   'append/prepend: data joined; flags and TTL of the old item kept');
is(ex("ms m3 2 MA\r\nzz\r\n"), "NS\r\n", 'MA on a missing key: NS');
is(ex("ms m3 2 MP\r\nzz\r\n"), "NS\r\n", 'MP on a missing key: NS');
is(ex("ms m3 2 MR\r\nzz\r\n"), "NS\r\n", 'MR on a missing key: NS');
is(rep('mg m3 v'), "EN\r\n", 'nothing created');
is(ex("ms m1 2 MR F5\r\nRR\r\n"), "HD\r\n", 'MR (replace) on an existing key');
is(rep('mg m1 v f'), "VA 2 f5\r\nRR\r\n", 'replaced, with the new flags');
is(ex("ms m1 2 MS\r\nSS\r\n"), "HD\r\n", 'MS (set)');
is(rep('mg m1 v f'), "VA 2 f0\r\nSS\r\n", 'set');
is(ex("ms m1 2 Mx\r\nxx\r\n"), "CLIENT_ERROR invalid mode for ms M token\r\n",
   'Mx: invalid mode, data swallowed');
is(ex("ms m1 2 Ms\r\nxx\r\n"), "CLIENT_ERROR invalid mode for ms M token\r\n",
   'mode letters are upper case only (1.6.18)');
is(ex("ms m1 2 MI\r\nxx\r\n"), "CLIENT_ERROR invalid mode for ms M token\r\n",
   'MI (an ma mode) is not an ms mode');
is(ex("ms m1 2 MSS\r\nxx\r\n"), "CLIENT_ERROR incorrect length for M token\r\n",
   'M with two letters');
is(ex("ms m1 2 M\r\nxx\r\n"), "CLIENT_ERROR incorrect length for M token\r\n",
   'M without a letter');
is(rep('mg m1 v'), "VA 2\r\nSS\r\n", 'bad modes changed nothing');

# --- C (compare cas), q -------------------------------------------------
{
    ex("ms c1 3\r\nabc\r\n");
    my $cas = mcas($srv, 'c1');
    is(ex("ms c1 3 C" . ($cas + 1000) . "\r\nnew\r\n"), "EX\r\n",
       'C mismatch: EX');
    is(ex("ms nocas 3 C$cas\r\nnew\r\n"), "NF\r\n", 'C on a missing key: NF');
    is(rep('mg nocas v'), "EN\r\n", 'NF stored nothing');
    is(ex("ms c1 3 C$cas k c\r\nnew\r\n") =~ s/ c\d+\r\n/ c*\r\n/r,
       "HD kc1 c*\r\n", 'C match: HD');
    is(rep('mg c1 v'), "VA 3\r\nnew\r\n", 'stored');
    is(ex("ms c1 3 C$cas\r\nnew\r\n"), "EX\r\n", 'the old cas is stale now');
    $cas = mcas($srv, 'c1');
    is(ex("ms c1 1 MA C1\r\nX\r\n"), "EX\r\n", 'MA with a wrong C: EX');
    is(ex("ms c1 1 MP C1\r\nX\r\n"), "EX\r\n", 'MP with a wrong C: EX');
    is(ex("ms nn 1 MA C1\r\nX\r\n"), "NS\r\n", 'MA with C on a miss: NS');
    is(ex("ms c1 1 MA C$cas\r\nX\r\n"), "HD\r\n", 'MA with the right C');
    $cas = mcas($srv, 'c1');
    is(ex("ms c1 1 MR C1\r\nX\r\n"), "EX\r\n", 'MR with a wrong C: EX');
    is(ex("ms c1 1 MR C$cas\r\nR\r\n"), "HD\r\n", 'MR with the right C');
    is(rep('mg c1 v'), "VA 1\r\nR\r\n", 'replaced');
    is(ex("ms c1 3 Cx\r\nabc\r\n"), $BADTOK, 'C with junk');
    is(ex("ms c1 3 C\r\nabc\r\n"), $BADTOK, 'C without a number');

    # q hides HD only
    is(ex("ms q1 1 q\r\na\r\n"), '', 'q: HD hidden');
    is(rep('mg q1 v'), "VA 1\r\na\r\n", 'but stored');
    is(ex("ms q1 1 q ME\r\nb\r\n"), "NS\r\n", 'q: NS still sent');
    is(ex("ms q9 1 q MR\r\nb\r\n"), "NS\r\n", 'q: NS (replace miss)');
    is(ex("ms q1 1 q C1\r\nb\r\n"), "EX\r\n", 'q: EX still sent');
    is(ex("ms q9 1 q C1\r\nb\r\n"), "NF\r\n", 'q: NF still sent');
    is(ex("ms q1 1 q k O1 c\r\nc\r\n"), '', 'q: HD hidden with k O c');
    is(ex("ms q1 1 q x\r\nc\r\n"), $INVAL, 'q: errors still sent');
    is(ex("ms q1 2 q\r\nabc\r\n"), "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
       'q: bad data chunk still sent');
    is(ex("ms q2 1 q\r\na\r\nms q3 1 q\r\nb\r\nmn\r\n"), "MN\r\n",
       'quiet sets then mn: only MN');
}

# --- I (invalidate): lower cas accepted, item stale ---------------------
{
    ex("ms iv 1 T100\r\na\r\n");
    my $cas = mcas($srv, 'iv');
    is(ex("ms iv 1 C" . ($cas + 5) . " I\r\nb\r\n"), "EX\r\n",
       'C above the item cas with I: EX');
    is(ex("ms iv 1 C" . ($cas - 1) . " I T0\r\nb\r\n"), "HD\r\n",
       'C below the item cas with I: stored');
    my $r = rep('mg iv c t v');
    ok($r =~ /\AVA 1 c(\d+) t(\d+) X W\r\nb\r\n\z/ && $2 >= 98 && $2 <= 100,
       'the new value is stale (X W); old TTL kept, T ignored')
        or diag(esc($r));
    my ($c2) = $r =~ / c(\d+)/;
    is(ex("ms iv 1 C" . ($c2 - 1) . " I\r\nc\r\n"), "HD\r\n",
       'another stale store');
    is_ttl(rep('mg iv c t v') =~ s/ c\d+ / c* /r,
           "VA 1 c* t{100} Z X\r\nc\r\n",
           'still stale, and the win already handed out stays (Z)');
    $c2 = mcas($srv, 'iv');
    is(ex("ms iv 1 C$c2 I\r\nd\r\n"), "HD\r\n", 'C equal with I: stored');
    is(rep('mg iv v'), "VA 1\r\nd\r\n", 'a normal store: no longer stale');
    is(ex("ms iv 1 I\r\ne\r\n"), "HD\r\n", 'I without C: a plain set');
    is(rep('mg iv v'), "VA 1\r\ne\r\n", 'not stale');
}

# --- b (base64 key) -----------------------------------------------------
{
    my $key = "bin\x00key \r\n\x7f\xff";
    my $b = encode_base64($key, '');
    is(ex("ms $b 3 b k O1\r\nabc\r\n"), "HD k$b b O1\r\n",
       'ms b: k returns the base64 key and b');
    is(rep("mg $b b v"), "VA 3\r\nabc\r\n", 'mg b reads it');
    my $sp = encode_base64('sp ace', '');
    is(ex("ms $sp 1 b\r\nQ\r\n"), "HD\r\n", 'key "sp ace" via base64');
    is($srv->get_raw('get sp ace'), "END\r\n",
       'classic get cannot name a key with a space');
    is(rep("mg $sp b v k"), "VA 1 k$sp b\r\nQ\r\n", 'mg b can');
    is(ex("ms Zm9v 1 b\r\nF\r\n"), "HD\r\n", 'base64 of foo');
    is($srv->get_raw('get foo'), "VALUE foo 0 1\r\nF\r\nEND\r\n",
       'classic get of the decoded key');
    is(ex("ms bad!! 1 b\r\na\r\n"), "CLIENT_ERROR error decoding key\r\n",
       'bad base64: error decoding key, data swallowed');
    is(ex("ms ab 1 b\r\na\r\n"), "CLIENT_ERROR error decoding key\r\n",
       'two base64 chars are no key');
    my $long = encode_base64('z' x 187, '');
    is(ex("ms $long 1 b\r\na\r\n"), $BADFMT . "ERROR\r\n",
       'encoded key over 250: bad format, data not swallowed');
}
still_ok('ms flags and modes');

# --- bad data chunks ----------------------------------------------------
is(ex("ms bd 3\r\nold\r\n"), "HD\r\n", 'old value');
is(ex("ms bd 3\r\nabcde\r\n"), "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
   'data longer than datalen: bad data chunk, the rest is a command');
is(rep('mg bd v'), "VA 3\r\nold\r\n", 'old value kept');
is(ex("ms bd 3\r\nabcXY"), "CLIENT_ERROR bad data chunk\r\n",
   'right length, not ended by CRLF: bad data chunk only');
is(ex("ms bd 1 k O1 c\r\nabc\r\n"), "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
   'bad data chunk: no k/O/c');
is(ex("ms bd 3 q\r\nabcde\r\n"), "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
   'bad data chunk with q');
is(ex("ms new 2\r\nabc\r\n"), "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
   'bad data chunk on a new key');
is(rep('mg new v'), "EN\r\n", 'nothing stored');
is(rep('mg bd v'), "VA 3\r\nold\r\n", 'old value still there');
still_ok('bad data chunks');

# --- datalen missing or bad: nothing to swallow --------------------------
is(rep('ms bd'), $BADFMT, 'ms without datalen');
is(rep('ms'), "ERROR\r\n", 'ms without key');
is(rep('ms bd abc'), $BADFMT, 'datalen not a number');
is(rep('ms bd -1'), $BADFMT, 'negative datalen');
is(rep('ms bd T0'), $BADFMT, 'a flag where datalen belongs');
is(ex("ms bd 3x\r\nabc\r\n"), $BADFMT . "ERROR\r\n",
   '3x: bad format; the data line is then a command');
is(ex("ms " . ('k' x 251) . " 1\r\na\r\n"), $BADFMT . "ERROR\r\n",
   'key of 251 bytes: bad format, data not swallowed');
is(ex("ms " . ('k' x 250) . " 1 k\r\na\r\n"), 'HD k' . ('k' x 250) . "\r\n",
   'key of 250 bytes');
is(ex("ms bd 1 " . join(' ', ('T1') x 17) . "\r\na\r\n"),
   "CLIENT_ERROR options flags too long\r\nERROR\r\n",
   '17 flag tokens: options flags too long, data not swallowed');
is(ex("ms bd 1 " . join(' ', ('x') x 16) . "\r\na\r\n"), $INVAL,
   '16 flag tokens: parsed (invalid flag), data swallowed');
is(rep('mg bd v'), "VA 3\r\nold\r\n", 'old value still there');

# --- flag errors after a good datalen swallow the data ------------------
for my $c (['x', $INVAL, 'unknown flag'],
           ['E5', $INVAL, 'E is not a 1.6.18 flag'],
           ['S3', $INVAL, 'S (old size flag)'],
           ['T', $BADTOK, 'T without a number'],
           ['Tx', $BADTOK, 'T with junk'],
           ['Fx', $BADFMT, 'F with junk'],
           ['F-1', $BADFMT, 'F negative'],
           ['q q', "CLIENT_ERROR duplicate flag\r\n", 'duplicate q'],
           ['T5 T6', "CLIENT_ERROR duplicate flag\r\n", 'duplicate T'],
           ['F1 F1', "CLIENT_ERROR duplicate flag\r\n", 'duplicate F']) {
    my ($flags, $want, $what) = @$c;
    is(ex("ms bd 3 $flags\r\nnew\r\n"), $want, "$what: error, data swallowed");
}
is(rep('mg bd v'), "VA 3\r\nold\r\n", 'no flag error stored anything');
still_ok('flag errors');

# --- too large: error, data swallowed, the old value unlinked -----------
{
    my $big = 'x' x 2_000_000;
    for my $mode ('', ' MS', ' ME', ' MA', ' MP', ' MR', ' q', ' C1') {
        ex("ms vict 1\r\nv\r\n");
        is(ex("ms vict 2000000$mode k O5 c\r\n$big\r\n"), $TOOBIG,
           "too large (flags '$mode k O5 c'): SERVER_ERROR, data swallowed");
        is(rep('mg vict v'), "EN\r\n", "...and the old value is gone");
    }
    is(ex("ms vict 1048577\r\n" . ('y' x 1048577) . "\r\n"), $TOOBIG,
       '1 MB + 1');
    $srv->send("ms vict 1500000\r\n");
    $srv->send('z' x 500_000) for 1 .. 3;
    is(ex("\r\n"), $TOOBIG, 'too-large data sent in pieces is swallowed');
    is(ex("ms vict 2000000 Mx\r\n$big\r\n"),
       "CLIENT_ERROR invalid mode for ms M token\r\n",
       'a flag error wins over the size; the data is swallowed');
    is(ex("ms vict 2000000 T\r\n$big\r\n"), $BADTOK, 'bad T with big data');
}
still_ok('too large values');

like($srv->cmd('version'), qr/\AVERSION \S+\r\n\z/, 'server answers');
done_testing();
