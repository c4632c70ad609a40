#!/usr/bin/perl
# Bounded fuzz of the binary protocol: several clients in parallel open
# many short connections and send valid frames with flipped bytes,
# truncated frames, frames with random lengths (up to a cap on what is
# actually sent), random opcodes and plain garbage.  Afterwards the
# server must answer VERSION and NOOP on a fresh connection, every item
# stored before the fuzz must be intact (value, flags, CAS), and every
# fuzz connection must be gone.
#
# Reproduce a run with FUZZ_SEED=<seed printed below>; FUZZ_TIME sets
# the seconds of fuzzing (default 8, at most 20).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);
use MemcTest;
use MemcBin;

my $SEED = $ENV{FUZZ_SEED} // 20240611;
$SEED =~ /^\d+$/ or BAIL_OUT("FUZZ_SEED must be a number");
my $TIME = $ENV{FUZZ_TIME} // 8;
$TIME = 20 if $TIME > 20;
my $WORKERS = 4;
diag("fuzz seed $SEED (FUZZ_SEED=$SEED to repeat), ${TIME}s,"
     . " $WORKERS clients");

my $srv = MemcTest->start();

# --- data that must survive ----------------------------------------------
my $ws = $srv->new_sock;
my %before;
for my $i (1 .. 100) {
    my $k = "keep-$i";
    my $v = join '', map { chr(($i * 31 + $_) % 256) } 1 .. ($i * 37 % 3000);
    my $r = bin_cmd($srv, $ws, 'SET', key => $k,
                    extras => set_extras($i * 7, 0), value => $v);
    $before{$k} = [$v, $i * 7, $r ? $r->{cas} : 0];
}
is($srv->mem_set('keep-text', 'text value', 3), "STORED\r\n",
   'text item stored');
is(scalar(grep { $_->[2] } values %before), 100,
   '100 binary items stored before the fuzz');

# --- a small deterministic PRNG (xorshift32), per client ----------------
sub prng {
    my ($seed) = @_;
    my $x = ($seed * 2654435761 + 1) % 4294967296 || 1;
    return sub {
        $x ^= ($x << 13) & 0xffffffff;
        $x ^= $x >> 17;
        $x ^= ($x << 5) & 0xffffffff;
        return $x % $_[0];
    };
}

# opcodes whose valid forms could wipe the data under test (FLUSH,
# FLUSHQ) are never generated
my @OPS = grep { $_ != 0x08 && $_ != 0x18 } values %MemcBin::OP;
my %EXT = (0x01 => 8, 0x02 => 8, 0x03 => 8, 0x11 => 8, 0x12 => 8,
           0x13 => 8, 0x05 => 20, 0x06 => 20, 0x15 => 20, 0x16 => 20,
           0x1c => 4, 0x1d => 4, 0x1e => 4, 0x23 => 4, 0x24 => 4);
my %VAL = map { $_ => 1 } 0x01, 0x02, 0x03, 0x0e, 0x0f, 0x11, 0x12, 0x13,
                          0x19, 0x1a, 0x21, 0x22;

sub rbytes {
    my ($r, $n) = @_;
    return join '', map { chr $r->(256) } 1 .. $n;
}

sub valid_frame {
    my ($r) = @_;
    my $op = $OPS[$r->(scalar @OPS)];
    my $key = $op == 0x21 || $op == 0x22 ? 'PLAIN' : 'fz' . $r->(40);
    $key = '' if $op == 0x0a || $op == 0x0b || $op == 0x07 || $op == 0x17
        || $op == 0x20 || ($op == 0x10 && $r->(2));
    $key = (qw(settings items slabs reset bogus))[$r->(5)] if $op == 0x10
        && length $key;
    my $ext = $EXT{$op} ? rbytes($r, $EXT{$op}) : '';
    $ext = pack('NN', $r->(1000), $r->(3)) if $EXT{$op} && $EXT{$op} == 8;
    my $val = $VAL{$op} ? rbytes($r, $r->(4) ? $r->(60) : $r->(3000)) : '';
    return bin_req($op, key => $key, extras => $ext, value => $val,
                   opaque => $r->(4294967295), cas => $r->(4) ? 0 : $r->(50));
}

sub flipped {
    my ($r) = @_;
    my $f = valid_frame($r);
    for (1 .. 1 + $r->(4)) {
        my $pos = $r->(3) ? $r->(24) : $r->(length $f);
        substr($f, $pos, 1) = chr(ord(substr($f, $pos, 1)) ^ (1 << $r->(8)));
    }
    # never turn it into a FLUSH
    substr($f, 1, 1) = "\x0a" if substr($f, 1, 1) =~ /[\x08\x18]/;
    return $f;
}

sub random_header {
    my ($r) = @_;
    my $op = $r->(256);
    $op = 0x55 if $op == 0x08 || $op == 0x18;
    my $keylen = (0, 1, 5, 250, 251, 300, 16361, 65535, $r->(65536))[$r->(9)];
    my $extlen = (0, 4, 8, 20, 255, $r->(256))[$r->(6)];
    my $bodylen = (0, 1, $keylen, $keylen + $extlen, $keylen + $extlen - 1,
                   $r->(70000), 0x7fffffff, 0xffffffff,
                   $r->(4294967296))[$r->(9)];
    $bodylen = 0 if $bodylen < 0;
    my $send = $r->(2) ? $bodylen : $r->(300);
    $send = 4096 if $send > 4096;     # cap on what is actually sent
    return bin_req($op, magic => $r->(8) ? 0x80 : $r->(256),
                   keylen => $keylen, extlen => $extlen, bodylen => $bodylen,
                   datatype => $r->(4) ? 0 : $r->(256),
                   vbucket => $r->(65536), opaque => $r->(4294967295))
        . rbytes($r, $send);
}

sub one_frame {
    my ($r) = @_;
    my $kind = $r->(10);
    return valid_frame($r) if $kind < 3;
    return flipped($r) if $kind < 6;
    if ($kind < 8) {
        my $f = valid_frame($r);
        return substr($f, 0, $r->(length $f));    # truncated
    }
    return random_header($r) if $kind < 9;
    return rbytes($r, 1 + $r->(200));             # garbage
}

# --- the clients -----------------------------------------------------------
my $dir = MemcTest::tmp_dir();
my $NOOP_OPQ = 0x5eed5eed;
my $NOOP = bin_res('NOOP', opaque => $NOOP_OPQ);

sub client {
    my ($w) = @_;
    my $r = prng($SEED * 16 + $w);
    my ($conns, $frames, $bad, $synced) = (0, 0, 0, 0);
    my $end = time + $TIME;
    while (time < $end) {
        my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $srv->port, Proto => 'tcp',
                                      Timeout => 2) or next;
        $conns++;
        binmode $c;
        my $n = 1 + $r->(8);
        my $data = '';
        $data = valid_frame($r) if $r->(2);     # often start in sync
        $data .= one_frame($r) for 1 .. $n;
        $frames += $n;
        my $sentinel = $r->(4) == 0;
        $data .= bin_req('NOOP', opaque => $NOOP_OPQ) if $sentinel;
        $c->blocking(0);
        my $off = 0;
        my $wend = time + 0.2;
        while ($off < length $data && time < $wend) {
            my $k = syswrite($c, $data, length($data) - $off, $off);
            if (defined $k) { $off += $k; next; }
            last unless $!{EAGAIN} || $!{EWOULDBLOCK} || $!{EINTR};
            IO::Select->new($c)->can_write(0.05);
        }
        # read what comes back: until the sentinel NOOP, EOF or 100 ms
        my $in = '';
        my $rend = time + ($sentinel ? 0.1 : 0.01);
        my $sel = IO::Select->new($c);
        while (time < $rend) {
            my $left = $rend - time;
            last if $left <= 0;
            next unless $sel->can_read($left);
            my $k = sysread($c, $in, 65536, length $in);
            last if !defined $k && !$!{EAGAIN} && !$!{EINTR};
            last if defined $k && $k == 0;
            if ($sentinel && index($in, $NOOP) >= 0) { $synced++; last; }
        }
        # a connection that spoke binary gets only binary replies
        $bad++ if length $in && substr($data, 0, 1) eq "\x80"
                  && substr($in, 0, 1) ne "\x81";
        close $c;
    }
    open my $fh, '>', "$dir/fuzz-$w.txt" or return 1;
    print $fh "$conns $frames $bad $synced\n";
    close $fh;
    return 0;
}

my @kids;
for my $w (1 .. $WORKERS) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $rc = eval { client($w) } // 2;
        POSIX::_exit($rc);
    }
    push @kids, $pid;
}
my %st;
wait_until(sub {
    for my $p (@kids) {
        next if exists $st{$p};
        $st{$p} = $? if waitpid($p, POSIX::WNOHANG()) == $p;
    }
    return keys(%st) == @kids;
}, $TIME + 20, 'the fuzz clients');
kill 'KILL', grep { !exists $st{$_} } @kids;
is_deeply([map { $st{$_} // 'hung' } @kids], [(0) x $WORKERS],
          'every fuzz client finished');

my ($conns, $frames, $bad, $synced) = (0, 0, 0, 0);
for my $w (1 .. $WORKERS) {
    my ($c, $f, $b, $s) = split ' ', MemcTest::slurp("$dir/fuzz-$w.txt");
    $conns += $c // 0;
    $frames += $f // 0;
    $bad += $b // 0;
    $synced += $s // 0;
}
diag("fuzz: $frames frames on $conns connections;"
     . " $synced sentinel NOOPs came back");
cmp_ok($frames, '>=', 1000, 'thousands of frames sent')
    or diag('the machine may be very slow');
is($bad, 0, 'binary connections only ever got binary replies');
ok($synced > 0, 'some connections stayed in sync through the fuzz');

# --- the server after the fuzz -------------------------------------------
ok($srv->is_alive, 'server process still running');
{
    my $c = $srv->new_sock;
    my $v = bin_cmd($srv, $c, 'VERSION', opaque => 1);
    ok($v && $v->{status} == 0 && $v->{opaque} == 1 && length $v->{value},
       'fresh connection: VERSION answered');
    bin_is(bin_cmd($srv, $c, 'NOOP', opaque => 2), bin_res('NOOP', opaque => 2),
           'fresh connection: NOOP answered');
    like($srv->cmd('version', $srv->new_sock), qr/\AVERSION \S+\r\n\z/,
         'text version answered');
    my @bad;
    for my $k (sort keys %before) {
        my ($v, $f, $cas) = @{ $before{$k} };
        my $r = bin_cmd($srv, $c, 'GETK', key => $k);
        push @bad, $k unless $r && $r->{raw} eq bin_res('GETK',
            extras => pack('N', $f), key => $k, value => $v, cas => $cas);
    }
    is("@bad", '', 'all 100 items stored before the fuzz intact'
       . ' (value, flags, CAS)');
    is(scalar $srv->mem_get('keep-text'), 'text value', 'text item intact');
    bin_is(bin_cmd($srv, $ws, 'NOOP', opaque => 3),
           bin_res('NOOP', opaque => 3),
           'a connection held open through the fuzz still works');
}
ok(wait_until(sub { ($srv->stats->{curr_connections} // 99) <= 6 }, 10,
              'fuzz connections to close'),
   'every fuzz connection has been closed by the server');
like($srv->cmd('version'), qr/\AVERSION /, 'still answering at the end');

done_testing();
