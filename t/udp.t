#!/usr/bin/perl
# The UDP port (-U): off by default; memcached's 8-byte frame on text,
# meta and binary requests; a reply cut into framed datagrams; bad frames
# (short, multi-datagram, a value cut short, a bad magic byte, a line
# without end) dropped and counted with
# nothing carried over to the next datagram; a reply over the bound
# dropped and counted; commands that need a connection refused; quit
# leaves the port up; writes made over UDP replicate to the peer.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use IO::Select;
use MemcTest;
use MemcPair;

require_pair_build();

sub free_udp_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'udp') or die "udp bind: $!";
    my $p = $s->sockport;
    close $s;
    return $p;
}

sub udp_sock {
    my ($port) = @_;
    return IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                 Proto => 'udp')
        || die "udp socket: $!";
}

# Send one datagram with header (id, seq, total); collect the reply's
# datagrams until all arrived or $wait seconds pass.  Returns
# (message, [headers]) or () when nothing came.
sub udp_req {
    my ($u, $id, $payload, %o) = @_;
    my $total = $o{total} // 1;
    send($u, pack('nnnn', $id, 0, $total, 0) . $payload, 0) or die "send";
    my $sel = IO::Select->new($u);
    my (%parts, $count, @hdrs);
    while (!defined $count || keys %parts < $count) {
        last unless $sel->can_read($o{wait} // 3);
        my $d;
        recv($u, $d, 65536, 0);
        my ($rid, $seq, $n, $res) = unpack('nnnn', $d);
        next if $rid != $id;
        push @hdrs, [$rid, $seq, $n, $res];
        $count = $n;
        $parts{$seq} = substr($d, 8);
        return ('', \@hdrs) if $n == 0;
    }
    return () unless defined $count;
    return (join('', map { $parts{$_} // '' } 0 .. $count - 1), \@hdrs);
}

# --- off by default ----------------------------------------------------------
{
    my $p = MemcTest::free_port();
    my $srv = MemcTest->start({ args => ['-l', '127.0.0.1', '-p', $p],
                                port => $p, no_default_args => 1 });
    is($srv->stats('settings')->{udpport}, 0, 'UDP off by default');
    unlike(join('', $srv->cmd_lines('stats conns')), qr/:UDP UDP/,
           'no UDP socket without -U');
}

my $uport = free_udp_port();
my $srv = MemcTest->start('-U', $uport, '-I', '2m');
my $u = udp_sock($uport);

is($srv->stats('settings')->{udpport}, $uport, 'stats settings udpport');

# --- text, meta and binary over UDP -------------------------------------------
my ($msg, $h) = udp_req($u, 0x1234, "set k 5 0 3\r\nabc\r\n");
is($msg, "STORED\r\n", 'text set over UDP');
is_deeply($h->[0], [0x1234, 0, 1, 0], 'reply header: id, seq 0, 1, 0');
($msg) = udp_req($u, 7, "get k\r\n");
is($msg, "VALUE k 5 3\r\nabc\r\nEND\r\n", 'text get over UDP');
is(scalar $srv->mem_get('k'), 'abc', 'the UDP set is seen on TCP');
($msg) = udp_req($u, 8, "set a 0 0 1\r\nx\r\nget a k\r\nincr nope 1\r\n");
is($msg, "STORED\r\nVALUE a 0 1\r\nx\r\nVALUE k 5 3\r\nabc\r\nEND\r\n"
       . "NOT_FOUND\r\n", 'several requests in one datagram: one message');
($msg) = udp_req($u, 9, "mg k v f\r\nmn\r\n");
is($msg, "VA 3 f5\r\nabc\r\nMN\r\n", 'meta over UDP');
{
    my $key = 'bk';
    my $bin = pack('CCnCCnNNNN', 0x80, 0x00, length $key, 0, 0, 0,
                   length $key, 0xdead, 0, 0) . $key;
    $srv->mem_set($key, 'binval');
    ($msg) = udp_req($u, 10, $bin);
    my ($magic, $op, $kl, $el, $dt, $st, $tl, $opq) =
        unpack('CCnCCnNN', $msg);
    is($magic, 0x81, 'binary response over UDP');
    is($st, 0, 'binary get found');
    is($opq, 0xdead, 'binary opaque echoed');
    is(substr($msg, 24 + $el), 'binval', 'binary value');
}

# --- a reply of many datagrams -----------------------------------------------
{
    my $big = join '', map { chr(65 + $_ % 26) } 1 .. 20000;
    $srv->mem_set('big', $big);
    my ($m, $hs) = udp_req($u, 300, "get big\r\n");
    is($m, "VALUE big 0 20000\r\n$big\r\nEND\r\n",
       '20000-byte value in one message');
    is(scalar @$hs, 15, '15 datagrams of 1392 bytes');
    is_deeply([sort { $a <=> $b } map { $_->[1] } @$hs], [0 .. 14],
              'sequence numbers 0..14');
    ok(!(grep { $_->[2] != 15 || $_->[3] != 0 } @$hs),
       'each says 15 datagrams, reserved 0');
}

# --- a datagram of 32000 keys: one message of 368 datagrams, served for
# CPU in proportion to its keys (walking the reply once per key made it
# quadratic: four times the CPU of four datagrams of 8000 keys).  The
# client may miss datagrams of such a burst; the count in each header
# tells the size of the message. ---------------------------------------------
{
    use Socket qw(SOL_SOCKET SO_RCVBUF);
    my $ub = udp_sock($uport);
    setsockopt($ub, SOL_SOCKET, SO_RCVBUF, 8 << 20);
    my $cpu = sub {
        my $st = $srv->stats;
        return $st->{rusage_user} + $st->{rusage_system};
    };
    my $burst = sub {
        my ($id, $keys) = @_;
        send($ub, pack('nnnn', $id, 0, 1, 0) . 'get' . (' a' x $keys)
             . "\r\n", 0) or die "send";
        my ($total, $got) = (0, 0);
        my $sel = IO::Select->new($ub);
        while ($sel->can_read(2)) {
            my $d;
            recv($ub, $d, 65536, 0);
            my ($rid, $seq, $n) = unpack('nnn', $d);
            $total = $n if $rid == $id;
            last if $rid == $id && ++$got == $total;
        }
        return $total;
    };
    my $c0 = $cpu->();
    $burst->(401 + $_, 8000) for 0 .. 3;
    my $small = $cpu->() - $c0;
    $c0 = $cpu->();
    is($burst->(400, 32000), 368, '32000 hits: one message of 368 datagrams');
    my $big = $cpu->() - $c0;
    cmp_ok($big, '<', 2 * $small + 0.1,
           "CPU: ${big}s for 32000 keys, ${small}s for 4 x 8000");
    is($srv->stats("extras")->{udp_replies_dropped}, 0, 'nothing dropped');
}

# --- bad frames --------------------------------------------------------------
my $bad0 = $srv->stats("extras")->{udp_bad_frames};
is($bad0, 0, 'no bad frame yet');
send($u, pack('nnn', 1, 0, 1), 0);
($msg) = udp_req($u, 11, "get k\r\n", total => 2, wait => 0.5);
ok(!defined $msg, 'multi-datagram request: no reply');
($msg) = udp_req($u, 12, "set cut 0 0 10\r\nabc", wait => 0.5);
ok(!defined $msg, 'a value cut short: no reply');
($msg) = udp_req($u, 13, "get k", wait => 0.5);
ok(!defined $msg, 'a line without its end: no reply');
($msg) = udp_req($u, 14, "\r\nget k\r\n");
like($msg, qr/^ERROR\r\nVALUE k /,
     'the next datagram starts afresh (no value carried over)');
ok(!defined scalar $srv->mem_get('cut'), 'the cut-short set stored nothing');
is($srv->stats("extras")->{udp_bad_frames}, 4, 'four bad frames counted');
# Garbage a TCP connection would be closed for, without a reply: counted.
{
    my $ver = pack('CCnCCnNNNN', 0x80, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0);
    my $junk = pack('C', 0x81) . ("\0" x 23);
    ($msg) = udp_req($u, 15, $ver . $junk);
    ok(defined $msg && unpack('C', $msg) == 0x81,
       'a binary request before a bad magic byte is answered');
    ($msg) = udp_req($u, 16, 'x' x 3000, wait => 0.5);
    ok(!defined $msg, 'an endless line: no reply');
    is($srv->stats("extras")->{udp_bad_frames}, 6,
       'a bad magic byte and an endless line are bad frames');
}

# --- the reply bound ---------------------------------------------------------
{
    my $huge = 'h' x (1024 * 1024 + 2000);
    $srv->mem_set('huge', $huge);
    my $d0 = $srv->stats("extras")->{udp_replies_dropped};
    ($msg) = udp_req($u, 15, "get huge\r\n", wait => 0.5);
    ok(!defined $msg, 'a reply over 1 MB is not sent');
    is($srv->stats("extras")->{udp_replies_dropped}, $d0 + 1, 'and is counted');
}

# --- connection-only commands, quit ------------------------------------------
($msg) = udp_req($u, 16, "watch\r\n");
is($msg, "CLIENT_ERROR not available over UDP\r\n", 'watch refused');
($msg) = udp_req($u, 17, "lru_crawler metadump all\r\n");
is($msg, "CLIENT_ERROR not available over UDP\r\n", 'metadump refused');
($msg) = udp_req($u, 18, "quit\r\n", wait => 0.5);
ok(!defined $msg, 'quit: no reply');
($msg) = udp_req($u, 19, "get a\r\n");
is($msg, "VALUE a 0 1\r\nx\r\nEND\r\n", 'the port serves on after quit');
like(join('', $srv->cmd_lines('stats conns')),
     qr/STAT \d+:UDP UDP\r\nSTAT \d+:addr udp:127\.0\.0\.1:$uport\r\n/,
     'stats conns lists the UDP socket as memcached does');
ok($srv->is_alive, 'server alive');
$srv->stop;

# --- options -------------------------------------------------------------------
{
    my $out = `${\ memc_bin()} -U 1 -S 2>&1`;
    like($out, qr/Cannot enable UDP while using binary SASL/, '-U with -S refused');
}

# --- replication -------------------------------------------------------------
{
    my $pu = free_udp_port();
    my ($a, $b) = start_pair(linked => 1, args_a => ['-U', $pu]);
    my $ua = udp_sock($pu);
    ($msg) = udp_req($ua, 20, "set viaudp 3 0 4\r\nudp!\r\ndelete k\r\n");
    is($msg, "STORED\r\nNOT_FOUND\r\n", 'set over UDP on A');
    ok(MemcTest::wait_until(sub {
        my ($v, $f) = $b->mem_get('viaudp');
        return defined $v && $v eq 'udp!' && $f == 3;
    }, 10, 'viaudp on B'), 'a write made over UDP reaches the peer');
}

done_testing();
