#!/usr/bin/perl
# Chunked items (doc/items.txt): a value larger than slab_chunk_max is
# chained from chunks of the largest class, as in memcached.  Values on
# both sides of each chunk boundary, with several slab_chunk_max, come
# back byte-exact over text, meta, binary, UDP and TLS, pipelined or
# trickled in over several reads; append/prepend across boundaries; the
# chunks show in "stats slabs" and move with slabs reassign; -e saves and
# loads them; a pair copies large values by stream and by full copy.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(sleep);
use IO::Select;
use IO::Socket::INET;
use MemcTest;
use MemcBin;

my $HDR = 56;                   # struct item_chunk before each chunk's data

# every byte value, shifted by $seed, so that a misplaced chunk shows
sub blob {
    my ($len, $seed) = @_;
    my $pat = join '', map { chr(($_ * 31 + $seed) % 256) } 0 .. 4093;
    my $s = $pat x (int($len / length $pat) + 1);
    return substr($s, 0, $len);
}

# n, or less for the 512 KB chunks so that values stay under 1 MB
sub small { return $_[0] < 1_000_000 ? $_[0] : $_[0] - 600_000; }

sub get_is {
    my ($srv, $key, $want, $what) = @_;
    my $got = $srv->mem_get($key);
    ok(defined $got && $got eq $want, $what)
        or diag("$key: got " . (defined $got ? length($got) . ' bytes'
                                             : 'nothing')
                . ', want ' . length($want));
}

sub slab_used {
    my ($srv, $size) = @_;
    my $st = $srv->stats('slabs');
    for my $k (keys %$st) {
        next unless $k =~ /^(\d+):chunk_size$/ && $st->{$k} == $size;
        return $st->{"$1:used_chunks"} // 0;
    }
    return 0;
}

for my $cm (1024, 4096, 524288) {
    my $srv = MemcTest->start('-o', "slab_chunk_max=$cm");
    my $room = $cm - $HDR;      # value bytes in a full chunk
    my @sizes = grep { $_ > 0 && $_ <= 1_000_000 }
        ($room - 80, $room - 60, $room - 59, $room - 58, $room,
         2 * $room - 3, 2 * $room - 2, 2 * $room + 1, 11_000, 600_000,
         1_000_000);
    my $i = 0;
    for my $n (@sizes) {
        my $v = blob($n, ++$i);
        is($srv->mem_set("k$n", $v, $i), "STORED\r\n",
           "chunk_max $cm: set $n bytes");
        get_is($srv, "k$n", $v, "chunk_max $cm: get $n bytes back");
    }
    cmp_ok(slab_used($srv, $cm), '>', 0,
           "chunk_max $cm: the largest class holds chunks");

    # meta set and get
    my $mv = blob(small(3 * $room + 7), 99);
    $srv->send("ms meta " . length($mv) . " F5\r\n$mv\r\n");
    is($srv->read_line, "HD\r\n", "chunk_max $cm: ms stored");
    $srv->send("mg meta v f s\r\n");
    is($srv->read_line, "VA " . length($mv) . " f5 s" . length($mv) . "\r\n",
       "chunk_max $cm: mg header");
    is($srv->read_bytes(length($mv) + 2), "$mv\r\n",
       "chunk_max $cm: mg value");

    # binary set and get
    {
        my $s = $srv->new_sock;
        my $bv = blob(2 * $room + 33, 7);
        my $r = bin_cmd($srv, $s, 'SET', key => 'bin', value => $bv,
                        extras => set_extras(3, 0));
        is($r && $r->{status}, 0, "chunk_max $cm: binary set");
        $r = bin_cmd($srv, $s, 'GET', key => 'bin');
        ok($r && $r->{status} == 0 && $r->{value} eq $bv,
           "chunk_max $cm: binary get");
    }

    # pipelined: five sets in one write, then one multi-get
    my @pv = map { blob(2 * $room + $_, $_) } 1 .. 5;
    $srv->send(join '', map { "set p$_ 0 0 " . length($pv[$_ - 1])
                              . "\r\n$pv[$_ - 1]\r\n" } 1 .. 5);
    is_deeply([map { $srv->read_line } 1 .. 5], [("STORED\r\n") x 5],
              "chunk_max $cm: five pipelined sets");
    $srv->send("get p1 p2 p3 p4 p5\r\n");
    my (undef, $got) = $srv->read_values;
    ok(@$got == 5 && !grep({ $got->[$_]{value} ne $pv[$_] } 0 .. 4),
       "chunk_max $cm: multi-get of five");

    # one value trickled in over several reads, split inside chunks
    {
        my $tv = blob(small(3 * $room + 11), 5);
        my $s = $srv->new_sock;
        my $msg = "set trickle 0 0 " . length($tv) . "\r\n$tv\r\n";
        my @cut = grep { $_ < length $msg }
            (7, $room - 3, $room + 5, 2 * $room + 1);
        push @cut, length $msg;
        my $at = 0;
        for my $c (@cut) {
            $srv->send(substr($msg, $at, $c - $at), $s);
            $at = $c;
            sleep 0.05;
        }
        is($srv->read_line($s), "STORED\r\n", "chunk_max $cm: trickled set");
        get_is($srv, 'trickle', $tv, "chunk_max $cm: trickled value");
    }

    # append and prepend across chunk boundaries
    {
        my $a = blob($room - 10, 1);
        my $b = blob(25, 2);
        my $c = blob(small($room + 40) - $room, 3);
        $srv->mem_set('ap', $a);
        is($srv->store('append', 'ap', $b), "STORED\r\n",
           "chunk_max $cm: append past a boundary");
        get_is($srv, 'ap', "$a$b", "chunk_max $cm: appended value");
        is($srv->store('prepend', 'ap', $c), "STORED\r\n",
           "chunk_max $cm: prepend");
        get_is($srv, 'ap', "$c$a$b", "chunk_max $cm: prepended value");
    }

    # a value not followed by "\r\n" is refused, the next command works
    {
        my $n = 2 * $room;
        $srv->send("set bad 0 0 $n\r\n" . blob($n, 4) . "XY");
        like($srv->read_line, qr/^CLIENT_ERROR bad data chunk/,
             "chunk_max $cm: bad data chunk");
        like($srv->cmd('version'), qr/^VERSION /, "chunk_max $cm: in sync");
        is($srv->mem_get('bad'), undef, "chunk_max $cm: nothing stored");
    }

    # deleting every chunked item gives all its chunks back
    for my $k ((map { "k$_" } @sizes), qw(meta bin trickle ap),
               map { "p$_" } 1 .. 5) {
        $srv->cmd("delete $k");
    }
    is(slab_used($srv, $cm), 0, "chunk_max $cm: all chunks freed");
    $srv->stop;
}

# Memory as memcached accounts it: twenty 11,000-byte values take three
# 4 KB chunks each, not a 1 MB chunk each, and no class above
# slab_chunk_max exists.
{
    my $srv = MemcTest->start('-o', 'slab_chunk_max=4096');
    $srv->mem_set("m$_", blob(11_000, $_)) for 1 .. 20;
    my $sl = $srv->stats('slabs');
    cmp_ok($sl->{total_malloced}, '<', 8 * 1024 * 1024,
           "20 x 11 KB take $sl->{total_malloced} bytes of pages, not 20 MB");
    my @big = grep { /^\d+:chunk_size$/ && $sl->{$_} > 4096 } keys %$sl;
    is(scalar @big, 0, 'no slab class above slab_chunk_max');
    get_is($srv, "m$_", blob(11_000, $_), "m$_ intact") for 1, 20;
    $srv->stop;
}

# The page mover rescues chunks: free chunks in the 4 KB class (every
# other item deleted), then its first page goes to the global pool; the
# live chunks in it are copied out, the values stay intact.
{
    my $srv = MemcTest->start('-m', '64', '-o', 'slab_chunk_max=4096');
    my $n = 300;
    $srv->send(join '', map { "set r$_ 0 0 11000 noreply\r\n"
                              . blob(11_000, $_) . "\r\n" } 1 .. $n);
    like($srv->cmd('version'), qr/^VERSION/, "$n chunked items stored");
    $srv->cmd("delete r$_") for grep { $_ % 2 == 0 } 1 .. $n;
    my $sl = $srv->stats('slabs');
    my ($id) = map { /^(\d+):/ } grep { /^\d+:chunk_size$/
                                        && $sl->{$_} == 4096 } keys %$sl;
    is($srv->cmd("slabs reassign $id 0"), "OK\r\n", "slabs reassign $id 0");
    ok(wait_until(sub { ($srv->stats->{slabs_moved} // 0) >= 1 }, 20),
       'the page moved');
    my $st = $srv->stats;
    cmp_ok($st->{slab_reassign_chunk_rescues}, '>', 0,
           "chunks rescued ($st->{slab_reassign_chunk_rescues})");
    cmp_ok($st->{slab_global_page_pool}, '>', 0, 'page in the global pool');
    my $bad = grep { ($srv->mem_get("r$_") // '') ne blob(11_000, $_) }
              grep { $_ % 2 } 1 .. $n;
    is($bad, 0, 'every live value intact after the move');
    $srv->stop;
}

# UDP: a chunked value cut into framed datagrams, reassembled exact.
{
    my $up = do {
        my $t = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => 0, Proto => 'udp')
            or die "udp bind: $!";
        my $p = $t->sockport;
        close $t;
        $p;
    };
    my $srv = MemcTest->start('-U', $up, '-o', 'slab_chunk_max=4096');
    my $v = blob(11_000, 21);
    $srv->mem_set('u', $v, 4);
    my $u = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $up,
                                  Proto => 'udp') or die "udp: $!";
    send($u, pack('nnnn', 7, 0, 1, 0) . "get u\r\n", 0) or die "send: $!";
    my $sel = IO::Select->new($u);
    my (%part, $count);
    while (!defined $count || keys %part < $count) {
        last unless $sel->can_read(5);
        my $d;
        recv($u, $d, 65536, 0);
        my ($id, $seq, $n) = unpack('nnn', $d);
        next unless $id == 7;
        $count = $n;
        $part{$seq} = substr($d, 8);
    }
    my $msg = join '', map { $part{$_} // '' } 0 .. ($count // 1) - 1;
    ok($msg eq "VALUE u 4 11000\r\n$v\r\nEND\r\n",
       'UDP: 11,000-byte chunked value in ' . ($count // 0) . ' datagrams');
    $srv->stop;
}

# TLS: a chunked value through the session's gathered writes.
SKIP: {
    require MemcTLS;
    my $why = MemcTLS::tls_skip_reason();
    skip $why, 2 if $why;
    my ($cert, $key) = MemcTLS::self_signed(tmp_dir(), 'chunked');
    my $srv = MemcTLS::tls_server($cert, $key, '-o', 'slab_chunk_max=4096');
    my $s = MemcTLS::tls_sock($srv->{tls_port}) or die "tls: $@";
    my $v = blob(50_000, 22);
    print $s "set t 0 0 50000\r\n$v\r\n";
    is(scalar <$s>, "STORED\r\n", 'TLS: 50 KB set read into chunks');
    print $s "get t\r\n";
    my $want = "VALUE t 0 50000\r\n$v\r\nEND\r\n";
    my $got = '';
    while (length $got < length $want) {
        my $n = sysread($s, $got, length($want) - length($got),
                        length $got);
        last unless $n;
    }
    ok($got eq $want, 'TLS: 50 KB chunked value back');
    $srv->stop;
}

# -e: chunked values saved to the memory file and loaded back, into
# chunks of another slab_chunk_max.
{
    my $file = tmp_dir() . '/mem';
    my $srv = MemcTest->start('-e', $file, '-o', 'slab_chunk_max=4096');
    my @v = map { blob(5_000 * $_, 30 + $_) } 1 .. 4;
    $srv->mem_set("e$_", $v[$_ - 1], $_) for 1 .. 4;
    $srv->stop('USR1');
    $srv = MemcTest->start('-e', $file, '-o', 'slab_chunk_max=1024');
    my $bad = grep { ($srv->mem_get("e$_") // '') ne $v[$_ - 1] } 1 .. 4;
    is($bad, 0, '-e: four chunked values back after a restart');
    $srv->stop;
}

# A pair: large values cross by the stream and by the full copy.
SKIP: {
    eval { require MemcPair; MemcPair->import; 1 } or skip 'no MemcPair', 4;
    my $built = eval { MemcPair::require_pair_build(); 1 };
    skip 'pair build not available', 4 unless $built;
    my ($A, $B) = MemcPair::start_pair(linked => 1,
                                       o => ['slab_chunk_max=4096']);
    my $v1 = blob(11_000, 11);
    my $v2 = blob(700_000, 12);
    $A->mem_set('s1', $v1, 1);
    $A->mem_set('s2', $v2, 2);
    ok(MemcPair::wait_value($B, 's1', $v1, 20), 'stream: 11 KB value on B');
    ok(MemcPair::wait_value($B, 's2', $v2, 20), 'stream: 700 KB value on B');
    $B->kill9;
    my $v3 = blob(9_999, 13);
    $A->mem_set('c1', $v3, 3);
    $A->store('append', 's1', $v3);
    $B->restart;
    ok(MemcPair::wait_value($B, 'c1', $v3, 30), 'full copy: 10 KB value on B');
    ok(MemcPair::wait_value($B, 's1', "$v1$v3", 30),
       'full copy: appended value on B');
}

done_testing();
