#!/usr/bin/perl
# A pair replicates as before while its clients use TLS (-Z), with the
# replication link on TLS too (repl_tls=1): tls.c's two users at once.
# Writes over TLS on either node reach the other (read back there over
# TLS and on the plain notls: port), values larger than a TLS record
# included; refresh_certs on a node leaves its link alone; hostile TLS
# clients on one node do not disturb replication.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use MemcTest;
use MemcPair;
use MemcTLS qw(tls_skip_reason self_signed tls_sock);

my $why = tls_skip_reason();
plan skip_all => $why if $why;
MemcPair::require_pair_build();

my $dir = MemcTest::tmp_dir();
my ($cert, $key) = self_signed($dir, 'node', 'pair-node');
my ($A, $B) = MemcPair::start_pair(
    tls => [$cert, $key], linked => 1,
    o => ['repl_tls=1', "repl_tls_cert=$cert", "repl_tls_key=$key"]);
like(MemcPair::stat_of($A, 'link_tls') // '', qr/^TLS/,
     'the replication link runs TLS');

my $ta = tls_sock($A->{tls_port}) or BAIL_OUT('TLS connect to A failed');
my $tb = tls_sock($B->{tls_port}) or BAIL_OUT('TLS connect to B failed');

# --- writes over TLS reach the peer -----------------------------------------
my $big = 'x' x 100_000;
my $ok = 1;
for my $i (1 .. 100) {
    my $v = $i % 10 ? "value-$i" : "$big-$i";
    $ok &&= $A->store('set', "ka$i", $v, $i, 0, $ta) eq "STORED\r\n";
}
ok($ok, '100 sets over TLS on A (every tenth 100 KB)');
ok(MemcPair::wait_value($B, 'ka100', "$big-100", 20),
   'B has the last one (plain port)');
my $same = 1;
for my $i (1 .. 100) {
    my ($v, $f) = $B->mem_get("ka$i", $tb);
    $same &&= defined $v && $v eq ($i % 10 ? "value-$i" : "$big-$i")
              && $f == $i;
}
ok($same, 'B serves all 100 over TLS, values and flags intact');

is($B->cmd('delete ka5', $tb), "DELETED\r\n", 'delete over TLS on B');
is($B->cmd('incr ka7n 1', $tb), "NOT_FOUND\r\n", 'incr of a missing key');
$B->store('set', 'kb', 'from-b', 0, 0, $tb);
ok(MemcPair::wait_value($A, 'ka5', undef) &&
   MemcPair::wait_value($A, 'kb', 'from-b'),
   'B\'s delete and set reach A');

# --- refresh_certs and hostile TLS clients leave the link alone ----------
my $reconnects = MemcPair::stat_of($A, 'reconnects');
is($A->cmd('refresh_certs', $ta), "OK\r\n", 'refresh_certs on A');
my @junk;
for (1 .. 10) {
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$A->{tls_port}")
        or die $!;
    MemcTest::_write_all($s, "garbage that is not TLS\r\n");
    push @junk, $s;
}
ok(MemcTest::wait_until(sub {
    ($A->stats(undef, $A->new_sock)->{ssl_handshake_errors} // 0) >= 10 }, 10),
   'ten garbage handshakes on A refused and counted');
$A->store('set', 'after', 'still-linked', 0, 0, $ta);
ok(MemcPair::wait_value($B, 'after', 'still-linked'),
   'a write after both reaches B');
is(MemcPair::stat_of($A, 'reconnects'), $reconnects,
   'the link did not reconnect');
is(MemcPair::stat_of($A, 'link_state'), 'linked', 'still linked');

ok($A->is_alive && $B->is_alive, 'both nodes running');
done_testing();
