#!/usr/bin/perl
# mg (meta get): HD / VA / EN replies, every return flag (b c f h k l
# O q s t u v) echoed in request order, the item-changing flags N
# (vivify), R (recache win) and T (touch), the W / X / Z reply flags,
# base64 keys, and the error replies for bad flags and tokens.

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

sub rep { return mcmd($srv, @_) }

# --- hit: HD without v, VA <size> with v ------------------------------
is(exchange($srv, "ms foo 3\r\nbar\r\n"), "HD\r\n", 'ms stores');
is(rep('mg foo'), "HD\r\n", 'mg without flags: bare HD');
is(rep('mg foo v'), "VA 3\r\nbar\r\n", 'mg v: VA <size>, data block');
is(rep('mg foo s'), "HD s3\r\n", 'mg s: size without the value');
is(rep('mg foo k'), "HD kfoo\r\n", 'mg k: key');
is(rep('mg foo f'), "HD f0\r\n", 'mg f: client flags 0 by default');
is(rep('mg foo t'), "HD t-1\r\n", 'mg t: -1 when the item never expires');
is(rep('mg foo Oabc'), "HD Oabc\r\n", 'mg O: opaque echoed with its O');
is(rep('mg foo O'), "HD O\r\n", 'empty opaque echoed as a bare O');

{
    my $cas = $srv->mem_cas('foo');
    is(rep('mg foo c'), "HD c$cas\r\n", 'mg c: the same cas as gets');
    is(rep('mg foo s v c f t k O123'),
       "VA 3 s3 c$cas f0 t-1 kfoo O123\r\nbar\r\n",
       'many flags: echoed in request order after VA <size>');
    is(rep('mg foo O9 k t f c v s'),
       "VA 3 O9 kfoo t-1 f0 c$cas s3\r\nbar\r\n",
       'another order: reply follows the request order');
    is(rep('mg foo v   k  '), "VA 3 kfoo\r\nbar\r\n",
       'extra spaces between flags are ignored');
}

# --- client flags and values ------------------------------------------
is(exchange($srv, "ms fl 2 F4294967295\r\nxy\r\n"), "HD\r\n", 'ms F max');
is(rep('mg fl f v'), "VA 2 f4294967295\r\nxy\r\n", 'flags 2^32-1 back');
is(exchange($srv, "ms fl 0 F7\r\n\r\n"), "HD\r\n", 'empty value');
is(rep('mg fl v s f'), "VA 0 s0 f7\r\n\r\n", 'empty value: VA 0, bare CRLF');
{
    my $v = join('', map { chr } 0 .. 255) . "\r\nEN\r\nVA 1\r\n";
    $v x= 1000;
    my $n = length $v;
    is(exchange($srv, "ms bin $n\r\n$v\r\n"), "HD\r\n", "ms $n binary bytes");
    is(rep('mg bin v s'), "VA $n s$n\r\n$v\r\n",
       'binary value with CRLF and reply words inside, byte for byte');
}

# --- miss: EN; only k and O are echoed; q hides it --------------------
is(rep('mg miss'), "EN\r\n", 'miss: EN');
is(rep('mg miss v'), "EN\r\n", 'miss with v: EN');
is(rep('mg miss k O55'), "EN kmiss O55\r\n", 'miss echoes k and O');
is(rep('mg miss s v c f t k h l O77'), "EN kmiss O77\r\n",
   'miss: s c f t h l are not echoed, k and O in request order');
is(rep('mg miss O1 k'), "EN O1 kmiss\r\n", 'miss: O before k kept');
is(rep('mg miss v q'), '', 'q: a miss sends nothing');
is(rep('mg miss q k O5'), '', 'q: nothing even with k and O');
is(rep('mg foo q v'), "VA 3\r\nbar\r\n", 'q: a hit is still sent (VA)');
is(rep('mg foo q'), "HD\r\n", 'q: a hit is still sent (HD)');
is(rep('mg foo q x'), $INVAL, 'q: errors are still sent');

# --- quiet pipeline terminated by mn ----------------------------------
{
    my $s = $srv->new_sock;
    $srv->send("mg foo q v k Oa\r\nmg miss1 q v k Ob\r\n"
               . "mg foo q k Oc\r\nmg miss2 q k Od\r\nmg fl q s Oe\r\n"
               . "mn\r\n", $s);
    my $got = '';
    while (defined(my $l = $srv->read_line($s))) {
        $got .= $l;
        last if $l eq "MN\r\n";
    }
    is($got, "VA 3 kfoo Oa\r\nbar\r\nHD kfoo Oc\r\nHD s0 Oe\r\nMN\r\n",
       'pipeline of mg q + mn: only the hits, in order, then MN');
    my @keys = map { "pk$_" } 1 .. 50;
    exchange($srv, "ms $_ 1\r\n1\r\n", $s) for grep { /[05]$/ } @keys;
    $srv->send(join('', map { "mg $_ q k\r\n" } @keys) . "mn\r\n", $s);
    $got = '';
    while (defined(my $l = $srv->read_line($s))) {
        $got .= $l;
        last if $l eq "MN\r\n";
    }
    is($got, join('', map { "HD k$_\r\n" } grep { /[05]$/ } @keys)
             . "MN\r\n", '50 quiet mg: 10 hits then MN');
}

# --- h (hit before), l (last access), u (no bump) ---------------------
is(exchange($srv, "ms hb 1\r\na\r\n"), "HD\r\n", 'fresh item');
like(rep('mg hb h l u'), qr/\AHD h0 l[01]\r\n\z/,
     'h0 before any fetch; l counts seconds since the last access');
is(rep('mg hb h u'), "HD h0\r\n", 'u: the fetch did not mark it hit');
is(rep('mg hb h'), "HD h0\r\n", 'h reports the state before this fetch');
is(rep('mg hb h'), "HD h1\r\n", 'after a fetch: h1');
is(rep('mg hb h u v'), "VA 1 h1\r\na\r\n", 'h with u and v');
{
    # l grows while nobody touches the item (u keeps it unbumped)
    exchange($srv, "ms la 1\r\na\r\n");
    my $r = '';
    my $ok = wait_until(sub {
        $r = rep('mg la l u');
        return $r =~ /\AHD l([1-9]\d*)\r\n\z/;
    }, 5, 'l to reach 1');
    ok($ok, 'l counts up to 1 after a second untouched') or diag(esc($r));
    like(rep('mg la l'), qr/\AHD l[1-9]\d*\r\n\z/,
         'l is the access time before this fetch');
    like(rep('mg la l'), qr/\AHD l[01]\r\n\z/, 'the fetch reset it');
}

# --- T: touch -----------------------------------------------------------
exchange($srv, "ms tt 2\r\nok\r\n");
is(rep('mg tt T100 t v'), "VA 2 t100\r\nok\r\n", 'T100 then t: t100');
is_ttl(rep('mg tt t'), "HD t{100}\r\n", 'the new TTL stays');
is_ttl(rep('mg tt t T40'), "HD t{100}\r\n",
       't before T: the TTL before the touch');
is_ttl(rep('mg tt t'), "HD t{40}\r\n", 'but the touch happened');
is(rep('mg tt T0 t'), "HD t-1\r\n", 'T0: never expires');
is(rep('mg tt T-1'), "HD\r\n", 'T-1 answers HD ...');
is(rep('mg tt v'), "EN\r\n", '... and expires the item at once');
is(rep('mg nott T10 t'), "EN\r\n", 'T on a miss: EN, nothing created');
is(rep('mg nott v'), "EN\r\n", 'still missing');

# --- N: vivify on miss --------------------------------------------------
{
    my $r = rep('mg viv N30 s v t c');
    like($r, qr/\AVA 0 s0 t30 c\d+ W\r\n\r\n\z/,
         'N on a miss: empty item with TTL 30, W (won)');
    my ($cas) = $r =~ / c(\d+) /;
    is_ttl(rep('mg viv N30 s v t c'), "VA 0 s0 t{30} c$cas Z\r\n\r\n",
           'second N: the stub, Z (someone else won)');
    is(rep('mg viv v'), "VA 0 Z\r\n\r\n", 'plain mg sees Z too');
    is(rep('mg viv k q'), "HD kviv Z\r\n", 'q does not hide it');
    is($srv->get_raw('get viv'), "VALUE viv 0 0\r\n\r\nEND\r\n",
       'classic get sees the empty stub');
    is(exchange($srv, "ms viv 2 T100\r\nok\r\n"), "HD\r\n",
       'the winner stores the value');
    is(rep('mg viv v t N30'), "VA 2 t100\r\nok\r\n",
       'after the store: no Z, N does nothing on a hit');
    like(rep('mg viv2 N0 t c'), qr/\AHD t-1 c\d+ W\r\n\z/,
         'N0: the stub never expires; HD without v');
}

# --- R: recache win when the TTL is below the token ---------------------
exchange($srv, "ms rc 2 T100\r\nok\r\n");
is_ttl(rep('mg rc R50 v t'), "VA 2 t{100}\r\nok\r\n",
       'R50 with TTL 100: no win');
is_ttl(rep('mg rc R200 v t'), "VA 2 t{100} W\r\nok\r\n",
       'R200 with TTL 100: W');
is_ttl(rep('mg rc R200 v t'), "VA 2 t{100} Z\r\nok\r\n",
       'next R200: Z, only one winner');
is_ttl(rep('mg rc t'), "HD t{100} Z\r\n", 'and Z on any mg');
exchange($srv, "ms rc 2 T0\r\nok\r\n");
is(rep('mg rc R999999 v t'), "VA 2 t-1\r\nok\r\n",
   'no TTL: R never wins; a new store cleared Z');
is(rep('mg rcmiss R30 v'), "EN\r\n", 'R on a miss: EN');
exchange($srv, "ms rc2 1 T100\r\nx\r\n");
like(rep('mg rc2 R200 N30 T300 t'), qr/\AHD t300 W\r\n\z/,
     'R, N and T together on a hit: T applied, W from R');

# --- X / W / Z after md I (stale) -------------------------------------
{
    exchange($srv, "ms st 3 T0\r\nold\r\n");
    my $c0 = mcas($srv, 'st');
    is(rep('md st I T30'), "HD\r\n", 'md I marks stale');
    my $r = rep('mg st c t v');
    like($r, qr/\AVA 3 c(\d+) t30 X W\r\nold\r\n\z/,
         'stale: old data, X, and W to the first fetcher');
    my ($c1) = $r =~ / c(\d+) /;
    ok($c1 > $c0, 'md I gave a new cas');
    is_ttl(rep('mg st c t v'), "VA 3 c$c1 t{30} Z X\r\nold\r\n",
           'second fetch: Z X (Z first), no W');
    is(rep('mg st R100 N10 v'), "VA 3 Z X\r\nold\r\n",
       'R and N do not win again');
    is(rep('mg st q'), "HD Z X\r\n", 'q: stale hit still sent');
}

# --- base64 keys --------------------------------------------------------
{
    is(rep('mg Zm9v b k v'), "VA 3 kfoo\r\nbar\r\n",
       'b: Zm9v decodes to foo (stored with a plain key, k plain)');
    my $bk = "\x00\x01 \r\n\xff";
    my $b64 = encode_base64($bk, '');
    like(exchange($srv, "ms $b64 2 b k c\r\nhi\r\n"),
         qr/\AHD k\Q$b64\E b c\d+\r\n\z/,
         'ms b: binary key; k returns base64 then b, then c');
    is(rep("mg $b64 b k v s"), "VA 2 k$b64 b s2\r\nhi\r\n",
       'mg b: binary key with NUL, space, CR, LF round-trips');
    is(rep("mg $b64 b q k O1"), "HD k$b64 b O1\r\n", 'k then b, then O');
    is(rep("mg $b64 b O1 k"), "HD O1 k$b64 b\r\n", 'O then k and its b');
    my $miss = encode_base64("nope\x00", '');
    is(rep("mg $miss b k O9 v"), "EN k$miss b O9\r\n",
       'miss with b: key echoed base64 with b');
    is(exchange($srv, "ms Zm9vMg== 1 b\r\nF\r\n"), "HD\r\n",
       'store under base64 of "foo2"');
    is(rep('mg foo2 k v'), "VA 1 kZm9vMg== b\r\nF\r\n",
       'a key stored with b stays binary: plain mg gets k base64 + b');
    is(rep('mg foo b'), "CLIENT_ERROR error decoding key\r\n",
       'b with a key that is not base64');
    is(rep('mg Zm9 b v'), "CLIENT_ERROR error decoding key\r\n",
       'b with a truncated base64 key');
    my $long = encode_base64('z' x 187, '');     # 252 characters
    is(rep("mg $long b v"), $BADFMT,
       'b: the encoded key may not pass 250 characters');
    my $ok = encode_base64('z' x 186, '');       # 248 characters
    is(exchange($srv, "ms $ok 1 b\r\nL\r\n"), "HD\r\n", '248-char b64 key');
    is(rep("mg $ok b v"), "VA 1\r\nL\r\n", 'and mg of it');
    is(rep('mg ' . ('z' x 186) . ' v'), "VA 1\r\nL\r\n",
       'it is the decoded key that is stored');
}

# --- errors -------------------------------------------------------------
is(rep('mg'), "ERROR\r\n", 'mg without a key: ERROR');
is(rep('mg foo x'), $INVAL, 'unknown flag x');
is(rep('mg foo E5'), $INVAL, 'E (explicit cas) is not a 1.6.18 mg flag');
is(rep('mg foo Z'), $INVAL, 'reply-only flag Z is not a request flag');
is(rep('mg foo W'), $INVAL, 'W neither');
is(rep('mg foo X'), $INVAL, 'X neither');
is(rep('mg foo S3'), $INVAL, 'S neither');
is(rep('mg foo 1'), $INVAL, 'a digit as flag');
is(rep('mg foo v v'), "CLIENT_ERROR duplicate flag\r\n", 'duplicate v');
is(rep('mg foo O1 O2'), "CLIENT_ERROR duplicate flag\r\n", 'duplicate O');
is(rep('mg foo T1 T2'), "CLIENT_ERROR duplicate flag\r\n", 'duplicate T');
is(rep('mg foo q q'), "CLIENT_ERROR duplicate flag\r\n", 'duplicate q');
is(rep('mg foo T'), $BADTOK, 'T without a number');
is(rep('mg foo Tx'), $BADTOK, 'T with junk');
is(rep('mg foo N'), $BADTOK, 'N without a number');
is(rep('mg foo Nabc'), $BADTOK, 'N with junk');
is(rep('mg foo R'), $BADTOK, 'R without a number');
is(rep('mg foo R1x'), $BADTOK, 'R with junk');
is(rep('mg foo O' . ('o' x 31)), 'HD O' . ('o' x 31) . "\r\n",
   'opaque token of 32 bytes (O + 31)');
is(rep('mg foo O' . ('o' x 32)), "CLIENT_ERROR opaque token too long\r\n",
   'opaque token of 33 bytes: too long');
is(rep('mg nokey O' . ('o' x 32)), "CLIENT_ERROR opaque token too long\r\n",
   'too long on a miss too');
is(rep('mg ' . ('k' x 251) . ' v'), $BADFMT, 'key of 251 bytes');
is(rep('mg ' . ('k' x 250) . ' v'), "EN\r\n", 'key of 250 bytes is fine');
is(rep('mg foo ' . join(' ', ('x') x 17)), $INVAL,
   '17 flag tokens: looked at (invalid flag)');
is(rep('mg foo ' . join(' ', ('v') x 18)),
   "CLIENT_ERROR options flags are too long\r\n",
   '18 flag tokens: options flags are too long');
is(rep('mg foo ' . join(' ', 1 .. 40)),
   "CLIENT_ERROR options flags are too long\r\n", '40 tokens');
is(rep('MG foo v'), "ERROR\r\n", 'MG (upper case) is unknown');
is(rep('mg foo v'), "VA 3\r\nbar\r\n", 'the connection still works');
is(exchange($srv, "mg foo s\nmg foo k\n"), "HD s3\r\nHD kfoo\r\n",
   'lines ended by a bare LF are accepted');

done_testing();
