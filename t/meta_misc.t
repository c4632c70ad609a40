#!/usr/bin/perl
# mn (meta no-op) and me (meta debug); meta and classic commands on the
# same data and the same connection (cas tokens work across both);
# pipelines mixing every meta command with opaques; and the stats
# counters each meta command moves in memcached 1.6.18.

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

sub ex  { return exchange($srv, @_) }
sub rep { return mcmd($srv, @_) }

# --- mn -----------------------------------------------------------------
is(rep('mn'), "MN\r\n", 'mn: MN');
is(rep('mn foo bar'), "MN\r\n", 'mn ignores anything after it');
is(ex("mn\n"), "MN\r\n", 'mn ended by a bare LF');
is(ex("mn\r\nmn\r\nmn\r\n"), "MN\r\nMN\r\nMN\r\n", 'three mn, three MN');
is(rep('MN'), "ERROR\r\n", 'MN is no command');
is(rep('mx'), "ERROR\r\n", 'unknown m-command: ERROR');

# --- me -----------------------------------------------------------------
{
    ex("ms dbg 5\r\nhello\r\n");
    my $r = rep('me dbg');
    like($r, qr/\AME dbg exp=-1 la=\d+ cas=\d+ fetch=no cls=1 size=\d+\r\n\z/,
         'me: exp la cas fetch cls size; fetch=no before any read');
    my ($c) = $r =~ / cas=(\d+) /;
    my ($size) = $r =~ / size=(\d+)/;
    my ($la) = $r =~ / la=(\d+)/;
    ok($la <= 2, "la is seconds since the last access ($la)");
    is(rep('me dbg') =~ s/ la=\d+ / la=* /r,
       "ME dbg exp=-1 la=* cas=$c fetch=no cls=1 size=$size\r\n",
       'me itself is no fetch');
    is(rep('mg dbg c'), "HD c$c\r\n", 'cas= is the item cas');
    like(rep('me dbg'), qr/\AME dbg exp=-1 la=\d+ cas=$c fetch=yes cls=1 size=$size\r\n\z/,
         'after mg: fetch=yes');
    ex("ms dbg 105\r\n" . ('h' x 105) . "\r\n");
    like(rep('me dbg'), qr/ size=(\d+)\r\n\z/, 'size of a bigger value');
    my ($size2) = rep('me dbg') =~ / size=(\d+)/;
    is($size2 - $size, 100, 'size grows with the value, byte for byte');
    ex("ms dbg 5000\r\n" . ('h' x 5000) . "\r\n");
    my ($cls) = rep('me dbg') =~ / cls=(\d+)/;
    ok($cls > 1, "a 5000-byte item lives in a bigger slab class ($cls)");
    ex("ms dbgt 1 T100\r\nx\r\n");
    $r = rep('me dbgt');
    ok($r =~ /\AME dbgt exp=(-?\d+) la=\d+ cas=\d+ fetch=no cls=1 size=\d+\r\n\z/
       && abs($1) >= 98 && abs($1) <= 100,
       'TTL 100: exp is +-100 (1.6.18 prints it negated)') or diag(esc($r));
    is(rep('me nothere'), "EN\r\n", 'me of a missing key: EN');
    is(rep('me'), $BADFMT, 'me without a key: bad command line format');
    is(rep('me ' . ('k' x 251)), $BADFMT, 'me with a 251-byte key');
    is(rep('me ' . ('k' x 250)), "EN\r\n", 'me with a 250-byte key');
    my $b = encode_base64("d\x00bg", '');
    ex("ms $b 1 b\r\nx\r\n");
    like(rep("me $b b"), qr/\AME \Q$b\E exp=-1 la=\d+ cas=\d+ fetch=no cls=1 size=\d+\r\n\z/,
         'me b: the key printed in base64 (no b token)');
    is(rep('me ab b'), $BADFMT, 'me b with bad base64: bad command line format');
    like(rep('me Zm9vYmFy b'), qr/\AEN\r\n\z/, 'me b miss: EN');
}

# --- classic and meta on the same data ---------------------------------
{
    is($srv->mem_set('cl', 'abc', 5), "STORED\r\n", 'classic set');
    my $r = rep('mg cl f v s c');
    like($r, qr/\AVA 3 f5 s3 c(\d+)\r\nabc\r\n\z/, 'mg reads it, flags 5');
    my ($cas) = $r =~ / c(\d+)/;
    is($srv->store('cas', 'cl', 'xyz', 6, 0, undef, $cas + 1), "EXISTS\r\n",
       'classic cas with a wrong token');
    is($srv->store('cas', 'cl', 'xyz', 6, 0, undef, $cas), "STORED\r\n",
       'classic cas with the token from mg c');
    is(rep('mg cl f v'), "VA 3 f6\r\nxyz\r\n", 'mg sees the cas store');

    is(ex("ms mm 2 F9 T0\r\nxy\r\n"), "HD\r\n", 'ms');
    is($srv->get_raw('get mm'), "VALUE mm 9 2\r\nxy\r\nEND\r\n",
       'classic get reads it');
    my (undef, undef, $gcas) = $srv->mem_get('mm');
    is(ex("ms mm 2 C" . ($gcas + 1) . "\r\nzz\r\n"), "EX\r\n",
       'ms C with a wrong token');
    is(ex("ms mm 2 C$gcas F3\r\nzz\r\n"), "HD\r\n",
       'ms C with the token from gets');
    is($srv->get_raw('get mm'), "VALUE mm 3 2\r\nzz\r\nEND\r\n", 'stored');

    is($srv->store('append', 'mm', '!'), "STORED\r\n", 'classic append');
    is(ex("ms mm 1 MP\r\n<\r\n"), "HD\r\n", 'ms MP');
    is(rep('mg mm v f'), "VA 4 f3\r\n<zz!\r\n", 'both applied');
    is($srv->cmd('delete mm'), "DELETED\r\n", 'classic delete');
    is(rep('mg mm v'), "EN\r\n", 'mg: gone');
    ex("ms mm 1\r\nq\r\n");
    is(rep('md mm'), "HD\r\n", 'md');
    is($srv->get_raw('get mm'), "END\r\n", 'get: gone');

    $srv->mem_set('tch', 'v', 1);
    is($srv->cmd('touch tch 100'), "TOUCHED\r\n", 'classic touch');
    is_ttl(rep('mg tch t f'), "HD t{100} f1\r\n", 'mg t sees the TTL');
    is(rep('mg tch T0 t'), "HD t-1\r\n", 'mg T0');
    is($srv->get_raw('gat 200 tch'), "VALUE tch 1 1\r\nv\r\nEND\r\n",
       'classic gat');
    is_ttl(rep('mg tch t'), "HD t{200}\r\n", 'mg t sees it');

    # a stale item (md I) is still served by classic get, with a new cas
    $srv->mem_set('stl', 'old', 2);
    my $c0 = $srv->mem_cas('stl');
    is(rep('md stl I'), "HD\r\n", 'md I');
    my ($v, $f, $c1) = $srv->mem_get('stl');
    ok(defined $v && $v eq 'old' && $f == 2 && $c1 > $c0,
       'classic gets: the stale value with a new cas');
    is($srv->store('cas', 'stl', 'new', 2, 0, undef, $c1), "STORED\r\n",
       'classic cas with it');
    is(rep('mg stl v'), "VA 3\r\nnew\r\n", 'fresh again: no X');

    # the vivified stub (mg N) is an empty item for classic commands
    like(rep('mg viv N30'), qr/\AHD W\r\n\z/, 'mg N: stub');
    is($srv->get_raw('get viv'), "VALUE viv 0 0\r\n\r\nEND\r\n",
       'classic get: empty value');
    is($srv->store('add', 'viv', 'x'), "NOT_STORED\r\n",
       'classic add: the stub exists');
    is($srv->store('set', 'viv', 'filled'), "STORED\r\n", 'classic set');
    is(rep('mg viv v'), "VA 6\r\nfilled\r\n", 'no Z after the set');
}

# --- one connection, both protocols pipelined ---------------------------
{
    my $s = $srv->new_sock;
    my $got = exchange($srv,
        "set p1 0 0 1 noreply\r\nx\r\n"
        . "mg p1 v q Oa\r\n"
        . "mg p2 v q Ob\r\n"
        . "get p1\r\n"
        . "ms p2 2 Oc\r\nyy\r\n"
        . "incr p3 1\r\n"
        . "ma p3 N0 J41 v Od\r\n"
        . "incr p3 1\r\n"
        . "md p1 Oe\r\n"
        . "delete p1\r\n"
        . "mg p1 k Of\r\n"
        . "me p9\r\n"
        . "mn\r\n", $s);
    is($got, "VA 1 Oa\r\nx\r\n"
             . "VALUE p1 0 1\r\nx\r\nEND\r\n"
             . "HD Oc\r\n"
             . "NOT_FOUND\r\n"
             . "VA 2 Od\r\n41\r\n"
             . "42\r\n"
             . "HD Oe\r\n"
             . "NOT_FOUND\r\n"
             . "EN kp1 Of\r\n"
             . "EN\r\n"
             . "MN\r\n",
       'classic and meta commands pipelined on one connection');
}

# --- pipelines of meta commands: opaques match replies ----------------
{
    my $s = $srv->new_sock;
    my ($cmds, $want, $ctr) = ('', '', 0);
    for my $i (1 .. 40) {
        my $v = 'v' . ($i - 1);
        if ($i % 4 == 0) {
            $cmds .= "ms op$i " . length("v$i") . " O$i\r\nv$i\r\n";
            $want .= "HD O$i\r\n";
        } elsif ($i % 4 == 1) {
            $cmds .= 'mg op' . ($i - 1) . " v O$i\r\n";
            $want .= $i == 1 ? "EN O1\r\n"
                   : 'VA ' . length($v) . " O$i\r\n$v\r\n";
        } elsif ($i % 4 == 2) {
            $cmds .= "ma ctr N0 O$i v\r\n";
            $want .= 'VA ' . length($ctr) . " O$i\r\n$ctr\r\n";
            $ctr++;
        } else {
            $cmds .= "md nothere$i O$i q\r\n";
            $want .= "NF O$i\r\n";
        }
    }
    is(exchange($srv, $cmds, $s), $want,
       '40 pipelined meta commands: replies in order, opaques echoed');
}

# --- stats counters -------------------------------------------------------
{
    my @names = qw(cmd_get cmd_set cmd_touch cmd_meta get_hits get_misses
                   touch_hits touch_misses delete_hits delete_misses
                   incr_hits incr_misses decr_hits decr_misses cas_hits
                   cas_misses cas_badval curr_items);
    my $prev = $srv->stats;
    my @missing = grep { !defined $prev->{$_} } @names;
    is("@missing", '', 'stats has every counter used below');
    my $check = sub {
        my ($bytes, $want, $what) = @_;
        ex($bytes);
        my $now = $srv->stats;
        my %d;
        for (@names) {
            my $diff = ($now->{$_} // 0) - ($prev->{$_} // 0);
            $d{$_} = $diff if $diff;
        }
        $prev = $now;
        my $got = join ' ', map { "$_+$d{$_}" } sort keys %d;
        my $exp = join ' ', map { "$_+$want->{$_}" } sort keys %$want;
        is($got, $exp, "stats after $what");
    };
    $check->("ms sa 1\r\n1\r\n", {cmd_set => 1, curr_items => 1}, 'ms');
    $check->("mg sa v\r\n", {cmd_get => 1, get_hits => 1}, 'mg hit');
    $check->("mg sa\r\n", {cmd_get => 1, get_hits => 1}, 'mg hit without v');
    $check->("mg sz v\r\n", {cmd_get => 1, get_misses => 1}, 'mg miss');
    $check->("mg sz q\r\n", {cmd_get => 1, get_misses => 1}, 'mg q miss');
    $check->("mg sa T10\r\n", {cmd_touch => 1, touch_hits => 1},
            'mg T hit (a touch, not a get)');
    $check->("mg sz T10\r\n", {cmd_get => 1, get_misses => 1},
            'mg T miss (counted as a get miss)');
    $check->("mg sv N10\r\n", {cmd_get => 1, get_hits => 1, curr_items => 1},
            'mg N vivify (a hit)');
    $check->("ms sa 1 C1\r\n1\r\n", {cmd_set => 1, cas_badval => 1},
            'ms C mismatch');
    $check->("ms sq 1 C1\r\n1\r\n", {cmd_set => 1, cas_misses => 1},
            'ms C miss');
    my $cas = mcas($srv, 'sa');
    $prev = $srv->stats;
    $check->("ms sa 1 C$cas\r\n2\r\n", {cmd_set => 1, cas_hits => 1},
            'ms C match');
    $check->("ms sa 1 ME\r\n1\r\n", {cmd_set => 1}, 'ms ME NS');
    $check->("ms sa 1 q\r\n5\r\n", {cmd_set => 1}, 'ms q');
    $check->("ms sa 1\r\n5XY", {cmd_set => 1}, 'ms bad data chunk');
    $check->("ms sa 1 x\r\n5\r\n", {}, 'ms flag error');
    $check->("ma sa\r\n", {incr_hits => 1}, 'ma');
    $check->("ma sa MD\r\n", {decr_hits => 1}, 'ma MD');
    $check->("ma sn\r\n", {incr_misses => 1}, 'ma miss');
    $check->("ma sn MD\r\n", {decr_misses => 1}, 'ma MD miss');
    $check->("ma sn N0\r\n", {curr_items => 1}, 'ma N create');
    $check->("ma sa C1\r\n", {}, 'ma C mismatch');
    $check->("md sa I\r\n", {}, 'md I');
    $check->("md sa C1\r\n", {delete_misses => 1}, 'md C mismatch');
    $check->("md sa\r\n", {delete_hits => 1, curr_items => -1}, 'md hit');
    $check->("md sa\r\n", {delete_misses => 1}, 'md miss');
    $check->("mn\r\n", {}, 'mn');
    $check->("me sn\r\n", {cmd_meta => 1}, 'me hit');
    $check->("me sa\r\n", {cmd_meta => 1}, 'me miss');
    $check->("mg sa x\r\n", {}, 'mg error');
}

like($srv->cmd('version'), qr/\AVERSION \S+\r\n\z/, 'server answers');
done_testing();
