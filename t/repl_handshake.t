#!/usr/bin/perl
# The replication handshake, message by message (doc/replication.txt,
# "Handshake and authentication"), seen by a stranger on either side:
#  - as the dialler: the node (which accepted) answers a PAIR line with
#    its own PAIR line only (version and nonce: no run id, node id or
#    wall clock before authentication), and nothing at all before it;
#  - lines out of turn before authentication (RESUME, HELLO, a record,
#    an overlong line) close the link and get nothing more;
#  - a peer of an old protocol (PAIR 1 ..., PAIR 2) gets a clear error line,
#    the node logs why and counts it (peer_mismatches);
#  - as the acceptor (the node's -x points at the test): the node dials,
#    sends PAIR and, with a secret, its AUTH after our PAIR; it sends
#    nothing more until our AUTH is checked; a bad AUTH is an auth
#    failure; a good one gets its HELLO.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(time);
use MemcTest;
use MemcPair;

require_pair_build();

my $SECRET = test_secret('correct horse battery staple 1');
my $secret = secret_file('secret', $SECRET);
my ($port, $rport) = free_ports(2);
my $lsn = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                Proto => 'tcp', Listen => 8, ReuseAddr => 1)
    or die "listen: $!";
my $A = MemcPair::Node->create(name => 'A', port => $port,
                               repl_port => $rport, dial => $lsn->sockport,
                               o => ["repl_secret_file=$secret",
                                     'repl_initial_sync_timeout=1',
                                     'repl_timeout=3']);
$A->spawn;
ok($A->wait_ready(15), 'the node serves after its initial-sync timeout');

my $NONCE = 'c0' x 32;

sub connect_repl {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $rport, Proto => 'tcp',
                                  Timeout => 2) or die "connect: $!";
    binmode $s;
    return $s;
}

# everything the node sends within $secs, and whether it closed
sub collect {
    my ($s, $secs) = @_;
    my $got = '';
    my $deadline = time + $secs;
    while (time < $deadline) {
        $got .= MemcTest::_drain($s, 0.1);
        return ($got, 1) if MemcTest::_closed($s, 0.05);
    }
    return ($got, 0);
}

# --- the node accepts: we dial -------------------------------------------
{
    my $s = connect_repl();
    my ($first) = collect($s, 0.5);
    is($first, '', 'the accepting node says nothing before our PAIR');
    MemcTest::_write_all($s, "PAIR 3 $NONCE\r\n", 2);
    my $line = MemcTest::_read_line($s, 3) // '';
    like($line, qr/\APAIR 3 [0-9a-f]{64}\r\n\z/,
         'it answers with PAIR, its version and a nonce only')
        or diag(esc($line));
    my $run = hex(stat_of($A, 'run_id') // '0');
    my ($rest) = collect($s, 0.5);
    is($rest, '', 'and nothing more before our AUTH');
    my $all = $first . $line . $rest;
    unlike($all, qr/\b$run\b/, 'its run id is not revealed');
    unlike($all, qr/\b1[0-9]{12}\b/, 'nor its wall clock');
    close $s;
}

my @out_of_turn = (
    ['RESUME instead of PAIR', "RESUME 0 0 0\r\n"],
    ['HELLO instead of PAIR', "HELLO 12345 7 " . int(time * 1000)
                              . " 1048576\r\n"],
    ['a record instead of PAIR', "S k 0 0 1 1\r\nx\r\n"],
    ['a PAIR with a short nonce', "PAIR 3 abcd\r\n"],
    ['a PAIR with extra fields', "PAIR 3 $NONCE 1 2\r\n"],
    ['an overlong line', 'PAIR 3 ' . ('a' x 4000) . "\r\n"],
    ['HELLO instead of AUTH', "PAIR 3 $NONCE\r\nHELLO 12345 7 "
                              . int(time * 1000) . " 1048576\r\n"],
    ['RESUME instead of AUTH', "PAIR 3 $NONCE\r\nRESUME 0 0 0\r\n"],
);
for my $c (@out_of_turn) {
    my ($name, $bytes) = @$c;
    my $s = connect_repl();
    MemcTest::_write_all($s, $bytes, 2);
    my ($got, $closed) = collect($s, 5);
    ok($closed, "$name: the link is closed");
    like($got, qr/\A(?:PAIR 3 [0-9a-f]{64}\r\n)?\z/,
         "$name: nothing but the node's PAIR line was sent")
        or diag(esc($got));
}
ok(!defined $A->item('k'), 'the record out of turn was not applied');

# --- an old peer: protocol 1, and 2 (the build before issue #17) -------------
for my $v (1, 2) {
    my $m0 = stat_of($A, 'peer_mismatches') // 0;
    my $s = connect_repl();
    MemcTest::_write_all($s, $v == 1 ? "PAIR 1 1234567890123 7 $NONCE "
                                       . int(time * 1000) . "\r\n"
                                     : "PAIR 2 $NONCE\r\n", 2);
    my ($got, $closed) = collect($s, 5);
    ok($closed, "PAIR $v: the link is closed");
    like($got, qr/\AERROR [^\r\n]*protocol[^\r\n]*3[^\r\n]*\r\n\z/,
         "PAIR $v: the old peer gets a clear error line") or diag(esc($got));
    like(stat_of($A, 'last_error') // '', qr/protocol.*$v.*3/,
         'last_error says which protocols');
    cmp_ok(stat_of($A, 'peer_mismatches') // 0, '>', $m0,
           'peer_mismatches counts it');
    like($A->log_text, qr/protocol $v\b.*\b3\b/, 'the log says so');
}

# --- the node dials: we accept ------------------------------------------------
# the node's next dial that opens with a line: (socket, that line);
# dials it gave up on meanwhile (closed in our backlog) are skipped
sub accept_dial {
    my $deadline = time + 15;
    my $sel = IO::Select->new($lsn);
    while (time < $deadline) {
        next unless $sel->can_read(0.5);
        my $c = $lsn->accept or next;
        binmode $c;
        my $line = MemcTest::_read_line($c, 3);
        return ($c, $line) if defined $line;
        close $c;
    }
    return;
}

{
    my $f0 = stat_of($A, 'auth_failures') // 0;
    my ($c, $line) = accept_dial();
    ok($c, 'the node dials us');
    $line //= '';
    my ($dn) = $line =~ /\APAIR 3 ([0-9a-f]{64})\r\n\z/;
    ok($dn, 'the dialler opens with PAIR, version and nonce only')
        or diag(esc($line));
    MemcTest::_write_all($c, "PAIR 3 $NONCE\r\n", 2);
    my $auth = MemcTest::_read_line($c, 3) // '';
    like($auth, qr/\AAUTH [0-9a-f]{64}\r\n\z/, 'then its AUTH');
    my ($rest) = collect($c, 0.5);
    is($rest, '', 'and nothing more until its AUTH is answered');
    MemcTest::_write_all($c, 'AUTH ' . ('ab' x 32) . "\r\n", 2);
    my ($got, $closed) = collect($c, 5);
    ok($closed && $got eq '', 'a bad AUTH from the acceptor: closed, '
       . 'nothing sent') or diag(esc($got));
    ok(wait_until(sub { (stat_of($A, 'auth_failures') // 0) > $f0 }, 5),
       'counted as an auth failure');
}

SKIP: {
    eval { require Digest::SHA; 1 } or skip 'no Digest::SHA', 3;
    my ($c, $line) = accept_dial();
    ok($c, 'the node dials us again');
    $line //= '';
    my ($dn) = $line =~ /\APAIR 3 ([0-9a-f]{64})\r\n\z/;
    MemcTest::_write_all($c, "PAIR 3 $NONCE\r\n", 2);
    my $auth = MemcTest::_read_line($c, 3) // '';
    my $want = Digest::SHA::hmac_sha256_hex(
        "paircached-v2|dial|$dn|$NONCE", $SECRET);
    is($auth, "AUTH $want\r\n", 'its AUTH is HMAC(secret, '
       . '"paircached-v2|dial|" dialler nonce "|" acceptor nonce)');
    my $ours = Digest::SHA::hmac_sha256_hex(
        "paircached-v2|accept|$NONCE|$dn", $SECRET);
    MemcTest::_write_all($c, "AUTH $ours\r\n", 2);
    my $hello = MemcTest::_read_line($c, 3) // '';
    like($hello, qr/\AHELLO \d+ \d+ \d+ \d+ \d+ [01]\r\n\z/,
         'a good AUTH from the acceptor gets the HELLO') or diag(esc($hello));
    close $c;
}

done_testing();
