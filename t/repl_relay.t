#!/usr/bin/perl
# A relay between the two nodes must not get past the shared-secret
# handshake (doc/replication.txt, "Handshake and authentication",
# "What a relay can do").  The test is a stranger that reaches both
# nodes' replication ports while they are not linked (each node's -x
# points where nothing listens, as when the real peer is briefly away),
# dials both, and forwards every line each node sends to the other, so
# that each node's proof is presented to the other as if it were the
# peer's.  When neither node speaks first, the relay starts the
# exchange with a PAIR line of its own to A.  It then tries to obtain
# data (a full copy passing through it) and to inject a record into
# both.  With proofs bound to direction and both nonces, and the side
# that accepted answering only after checking the dialler's proof, the
# relay gets no item data, injects nothing, and a node counts an
# auth failure.

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

my $SECRET_VALUE = 'RELAYED-SECRET-VALUE-5a1c';
my $secret = secret_file('secret',
                         test_secret('correct horse battery staple 1'));
my ($pa, $pb, $ra, $rb) = free_ports(4);
my ($nowhere_a, $nowhere_b) = closed_ports(2);
my @o = ("repl_secret_file=$secret", 'repl_initial_sync_timeout=1',
         'repl_timeout=3');
my $A = MemcPair::Node->create(name => 'A', port => $pa, repl_port => $ra,
                               dial => $nowhere_a, o => \@o);
my $B = MemcPair::Node->create(name => 'B', port => $pb, repl_port => $rb,
                               dial => $nowhere_b, o => \@o);
$_->spawn for $A, $B;
ok($A->wait_ready(15) && $B->wait_ready(15), 'both nodes serve, unlinked');
$A->mem_set('secret_data', $SECRET_VALUE);
$B->mem_set('secret_data_b', $SECRET_VALUE);

sub dial_node {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 2)
        or die "connect $port: $!";
    binmode $s;
    $s->blocking(0);
    return $s;
}

my %sock = (A => dial_node($ra), B => dial_node($rb));
my %other = (A => 'B', B => 'A');
my %seen = (A => '', B => '');      # what each node sent the relay
my %open = (A => 1, B => 1);
my $sel = IO::Select->new(values %sock);
my $kicked = 0;
my $linked_seen = 0;
my $t0 = time;
while (time - $t0 < 6 && ($open{A} || $open{B})) {
    for my $s ($sel->can_read(0.1)) {
        my ($who) = grep { $sock{$_} == $s } keys %sock;
        my $n = sysread($s, my $buf, 65536);
        if (!$n) {
            $open{$who} = 0;
            $sel->remove($s);
            next;
        }
        $seen{$who} .= $buf;
        syswrite($sock{ $other{$who} }, $buf) if $open{ $other{$who} };
    }
    if (!$kicked && time - $t0 > 1 && $seen{A} eq '' && $seen{B} eq '') {
        # nobody speaks first: open with a PAIR line of our own
        syswrite($sock{A}, "PAIR 3 " . ('5e' x 32) . "\r\n");
        $kicked = 1;
    }
    for my $n ($A, $B) {
        $linked_seen++ if (stat_of($n, 'link_state') // '') eq 'linked';
    }
}
# Inject a record into both, as a peer would send it.
my $v = int(time * 1000) << 20;
for my $who (qw(A B)) {
    next unless $open{$who};
    syswrite($sock{$who}, "S injected_$who 0 0 $v 4\r\nevil\r\n");
}
for my $who (qw(A B)) {
    next unless $open{$who};
    my $rest = MemcTest::_drain($sock{$who}, 1);
    $seen{$who} .= $rest;
}

my $all = $seen{A} . $seen{B};
my @records = grep { /^(?:S|s|D|d|SYNC|SYNCED|RESUME|HELLO) / }
              split /\r?\n/, $all;
ok(!@records && index($all, $SECRET_VALUE) < 0,
   'the relay received no item data nor anything sent after authentication')
    or diag('A sent: ' . esc($seen{A}) . "\nB sent: " . esc($seen{B}));
is($linked_seen, 0, 'neither node reported a link meanwhile');
for my $n ($A, $B) {
    for my $who (qw(A B)) {
        ok(!defined $n->item("injected_$who"),
           'no injected record on ' . $n->name . " (sent to $who)");
    }
}
my $fails = (stat_of($A, 'auth_failures') // 0)
          + (stat_of($B, 'auth_failures') // 0);
cmp_ok($fails, '>', 0, "the relay was counted as an auth failure ($fails)");
like($A->log_text . $B->log_text, qr/auth/i, 'and logged');
$A->mem_set('after', 'relay');
is(($A->item('after') // {})->{value}, 'relay', 'A still serves');

done_testing();
