#!/usr/bin/perl
# TLS on the client ports (-Z), beyond memcached's own ssl_*.t files:
#  - values larger than a TLS record and than ssl_wbuf_size, both ways,
#    and pipelined requests, through IO::Socket::SSL;
#  - the plain "notls:" listener beside it serves the same data and the
#    TLS fields of stats;
#  - hostile clients: plain text or garbage on the TLS port is a failed
#    handshake (closed, counted); a client that stalls in the handshake
#    holds no worker (-t 1: others are served meanwhile) and is closed
#    after the handshake deadline (idle_timeout=3 here, shorter than
#    the 10 s default), counted too;
#  - refresh_certs with a broken certificate: memcached's error, the old
#    certificate stays; without -Z: "Error TLS not enabled".

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use MemcTest;
use MemcTLS qw(tls_skip_reason self_signed tls_server tls_sock);

my $why = tls_skip_reason();
plan skip_all => $why if $why;

my $dir = MemcTest::tmp_dir();
my ($cert, $key) = self_signed($dir, 'server', 'paircached-test');
my $srv = tls_server($cert, $key, '-t', '1', '-o', 'idle_timeout=3');
my $tport = $srv->{tls_port};

# idle_timeout=3 closes idle plain connections too: a fresh one each time
sub st { return $srv->stats($_[0], $srv->new_sock) }
sub errors { return st()->{ssl_handshake_errors} }

# --- data through TLS -------------------------------------------------------
{
    my $s = tls_sock($tport) or BAIL_OUT("TLS connect failed");
    is($srv->cmd('version', $s), "VERSION " . (st()->{version}) . "\r\n",
       'version over TLS');
    my $big = join('', map { chr(65 + $_ % 26) } 0 .. 300_000);
    is($srv->store('set', 'big', $big, 7, 0, $s), "STORED\r\n",
       '300 KB value sent over TLS (many records)');
    my ($v, $f) = $srv->mem_get('big', $s);
    ok(defined $v && $v eq $big && $f == 7,
       '... and read back whole over TLS (many writes)');
    is($srv->mem_get('big', $srv->new_sock), $big,
       '... the plain notls: listener sees it');

    my $batch = join('', map { "set p$_ 0 0 3 noreply\r\nv$_\r\n" }
                         10 .. 99) . "get " . join(' ', map { "p$_" } 10 .. 99)
                . "\r\n";
    $srv->send($batch, $s);
    my ($raw, $items) = $srv->read_values($s);
    is(scalar @$items, 90, '90 pipelined sets and a 90-key get in one write');
}

# --- stats on the plain listener -------------------------------------------
{
    my $st = st();
    ok(defined $st->{ssl_handshake_errors}, 'stats: ssl_handshake_errors');
    ok(defined $st->{time_since_server_cert_refresh},
       'stats: time_since_server_cert_refresh');
    ok(!exists $st->{ssl_new_sessions},
       'stats: no ssl_new_sessions without ssl_session_cache');
    is(st('settings')->{ssl_enabled}, 'yes', 'stats settings: ssl_enabled');
}

# --- hostile clients ----------------------------------------------------------
{
    my $e0 = errors();
    my $p = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$tport") or die $!;
    MemcTest::_write_all($p, "get big\r\n");
    ok(MemcTest::_closed($p, 5), 'plain text on the TLS port: closed');
    my $g = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$tport") or die $!;
    MemcTest::_write_all($g, "\x16\x03\x01\x00\x05garbage-garbage");
    ok(MemcTest::_closed($g, 5), 'a bogus TLS record: closed');
    ok(MemcTest::wait_until(sub { errors() >= $e0 + 2 }, 5),
       '... both counted in ssl_handshake_errors');
}
{
    my $e0 = errors();
    # silent clients and one that sends half a ClientHello, then stops
    my @stalled = map { IO::Socket::INET->new(PeerAddr => "127.0.0.1:$tport")
                        or die $! } 1 .. 20;
    MemcTest::_write_all($stalled[0], "\x16\x03\x01\x02\x00\x01\x00\x01");
    my $t0 = time;
    my $ok = 1;
    for my $i (1 .. 5) {
        my $s = tls_sock($tport);
        $ok &&= $s && $srv->cmd('version', $s) =~ /^VERSION /;
    }
    ok($ok, 'five TLS clients served while 20 handshakes stall (-t 1)');
    ok(!MemcTest::_closed($stalled[1], 0.01) &&
       !MemcTest::_closed($stalled[0], 0.01),
       '... the stalled ones still open meanwhile');
    my $closed = 0;
    for my $p (@stalled) {
        $closed++ if MemcTest::_closed($p, 10);
    }
    is($closed, 20, 'stalled handshakes closed after the deadline');
    cmp_ok(time - $t0, '>=', 2.5, '... not before idle_timeout (3 s)');
    ok(MemcTest::wait_until(sub { errors() >= $e0 + 20 }, 5),
       '... and counted in ssl_handshake_errors');
    ok($srv->is_alive, 'server alive');
}

# --- refresh_certs ------------------------------------------------------------
{
    my $s = tls_sock($tport);
    is($srv->cmd('refresh_certs', $s), "OK\r\n", 'refresh_certs: OK');
    rename($cert, "$cert.good") or die $!;
    open my $fh, '>', $cert or die $!;
    print $fh "not a certificate\n";
    close $fh;
    like($srv->cmd('refresh_certs', $s),
         qr/^Error loading the certificate chain: \Q$cert\E : .*\r\n\z/,
         'refresh_certs with a broken file: memcached\'s error line');
    my $n = tls_sock($tport);
    ok($n && $srv->cmd('version', $n) =~ /^VERSION/,
       '... new connections still get the old certificate');
    rename("$cert.good", $cert) or die $!;
    my $plain = MemcTest->start();
    is($plain->cmd('refresh_certs'), "Error TLS not enabled\r\n",
       'refresh_certs without -Z: "Error TLS not enabled"');
    $plain->stop;
}

ok($srv->is_alive, 'server still running');
done_testing();
