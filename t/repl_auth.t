#!/usr/bin/perl
# Pair replication security (doc/replication.txt, "Handshake and
# authentication", "Topology and options"):
#  - the same secret on both nodes: they link and data crosses;
#  - different secrets: they never link, auth_failures grows, no data
#    crosses (each opens its client port after the initial-sync timeout);
#  - a plain TCP client on the replication port (garbage, a fake PAIR
#    line with a bad AUTH, or no AUTH at all, an old protocol's PAIR)
#    gets no item data, nothing but the node's own PAIR line, and is
#    closed;
#  - without a secret, a replication listener on a non-loopback address
#    (repl_listen=0.0.0.0) refuses to start; a secret under 16 bytes is
#    refused too;
#  - replication commands sent to a CLIENT port are unknown commands
#    (ERROR) and change nothing.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use MemcTest;
use MemcPair;

require_pair_build();

my $TMO = 2;
my $SECRET_VALUE = 'TOP-SECRET-VALUE-93e1';

my $s1 = secret_file('secret1',
                     test_secret('correct horse battery staple 1'));
my $s2 = secret_file('secret2',
                     test_secret('correct horse battery staple 2'));

# --- same secret ---------------------------------------------------------
my ($A, $B) = start_pair(o => ["repl_secret_file=$s1"], repl_timeout => $TMO,
                         linked => 1);
ok(1, 'same secret: the pair links');
$A->mem_set('secret_data', $SECRET_VALUE);
ok(wait_value($B, 'secret_data', $SECRET_VALUE, 5),
   'same secret: data crosses');
is($A->repl_stats->{auth_failures}, 0, 'same secret: no auth failures');

# --- strangers on the replication port -------------------------------------
# Returns (closed, bytes received).
sub talk_repl {
    my ($port, $send, $wait) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 2)
        or return (0, "connect failed: $!");
    binmode $s;
    eval { MemcTest::_write_all($s, $send, 2) } if length $send;
    # read until the server closes (or $wait seconds pass)
    my $got = '';
    my $deadline = time + $wait;
    my $closed = 0;
    while (time < $deadline) {
        my $d = MemcTest::_drain($s, 0.2);
        $got .= $d;
        if (MemcTest::_closed($s, 0.05)) {
            $closed = 1;
            last;
        }
    }
    close $s;
    return ($closed, $got);
}

sub no_item_data {
    my ($got, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my @records = grep { /^(?:S|D|T|F|SYNC|SYNCED|ACK) / } split /\r?\n/, $got;
    ok(!@records && index($got, $SECRET_VALUE) < 0
       && index($got, 'secret_data') < 0, "$name: no item data received")
        or diag('received: ' . esc($got));
    # the accepting node answers a PAIR with its own (version and nonce),
    # or an old protocol's with an error line; its AUTH only ever follows
    # a valid proof from the dialler
    like($got, qr/\A(?:PAIR 3 [0-9a-f]{64}\r\n|ERROR [^\r\n]*\r\n)?\z/,
         "$name: nothing but the server's own PAIR line")
        or diag('received: ' . esc($got));
}

{
    my $f0 = $A->repl_stats->{auth_failures} // 0;
    my $nonce = '00' x 32;
    my $ms = int(time * 1000);
    my @cases = (
        ['garbage', "GET / HTTP/1.0\r\n\r\n"],
        ['a memcached command', "get secret_data\r\nstats\r\n"],
        ['a malformed PAIR line', "PAIR 3 0123456789abcdef\r\n"],
        ['an old protocol\'s PAIR line',
         "PAIR 1 1234567890123456789 7 $nonce $ms\r\n"],
        ['a fake PAIR line and a bad AUTH',
         "PAIR 3 $nonce\r\nAUTH " . ('ab' x 32) . "\r\n"],
        ['a fake PAIR line and AUTH none', "PAIR 3 $nonce\r\nAUTH none\r\n"],
        ['a fake PAIR line then silence', "PAIR 3 $nonce\r\n"],
        ['a fake PAIR line then HELLO',
         "PAIR 3 $nonce\r\nHELLO 1234567890123456781 11 $ms 1048576 "
         . "67108864 0\r\n"
         . "RESUME 0 0 0 0\r\n"],
        ['a fake PAIR line then records',
         "PAIR 3 $nonce\r\nSYNC 0\r\n"
         . "S injected 0 0 99999999999999 1\r\nx\r\nSYNCED 1\r\n"],
        ['silence', ''],
    );
    for my $c (@cases) {
        my ($name, $send) = @$c;
        my $t0 = time;
        my ($closed, $got) = talk_repl($A->repl_port, $send, $TMO + 4);
        ok($closed, sprintf('%s: the replication port closed the '
                            . 'connection (after %.1fs)', $name, time - $t0));
        no_item_data($got, $name);
    }
    ok(!defined $A->item('injected') && !defined $B->item('injected'),
       'records after a bad handshake created nothing');
    my $f1 = $A->repl_stats->{auth_failures} // 0;
    cmp_ok($f1, '>', $f0, "A counted the failed AUTH ($f0 -> $f1)");
    ok(wait_linked($A, $B, 5), 'the real link is still up');
    $A->mem_set('still', 'linked');
    ok(wait_value($B, 'still', 'linked', 5), 'and data still crosses');
}

# --- replication commands on a CLIENT port ---------------------------------
{
    $A->mem_set('victim', 'alive', 0, 0);
    ok(wait_value($B, 'victim', 'alive', 5), 'victim on both');
    my $nonce = '11' x 32;
    my $ms = int(time * 1000);
    my @lines = (
        "PAIR 3 $nonce",
        'AUTH ' . ('cd' x 32),
        "HELLO 1234567890123456789 7 $ms 1048576 67108864 0",
        'S inj 0 0 1 1',
        'x',
        'D victim 18446744073709551615',
        'T victim 1 18446744073709551615',
        'F 18446744073709551615 0',
        'SYNC 1',
        'SYNCED 1',
        "PING $ms 0",
        'ACK 0',
    );
    for my $node ($A, $B) {
        my $s = $node->new_sock;
        for my $l (@lines) {
            is($node->cmd($l, $s), "ERROR\r\n",
               'client port of ' . $node->name . ': "' . esc($l)
               . '" is an unknown command');
        }
        close $s;
    }
    for my $node ($A, $B) {
        ok(!defined $node->item('inj'), 'no key created on ' . $node->name);
        my $it = $node->item('victim');
        is($it && $it->{value}, 'alive',
           'D/T/F on the client port did nothing on ' . $node->name);
    }
    my $dump = $A->cmd_lines('lru_crawler metadump all');
    like($dump, qr/^key=victim exp=-1 /m, 'victim still never expires');
}

# --- different secrets -------------------------------------------------------
{
    my ($C, $D) = start_pair(o_a => ["repl_secret_file=$s1"],
                             o_b => ["repl_secret_file=$s2"],
                             o => ['repl_initial_sync_timeout=2'],
                             repl_timeout => $TMO, start_timeout => 15);
    ok(1, 'different secrets: both open their client ports after the '
       . 'initial-sync timeout');
    $C->mem_set('wrong_secret', 'must not cross');
    $D->mem_set('wrong_secret_d', 'must not cross either');
    my ($linked, $seen) = never_link($C, $D, 4);
    is($linked, 0, 'different secrets: never linked (4 s of polling)');
    cmp_ok($seen->{auth_failures}, '>', 0, 'auth_failures grows');
    ok(!defined $D->item('wrong_secret'), 'no data crossed C -> D');
    ok(!defined $C->item('wrong_secret_d'), 'no data crossed D -> C');
    like($C->log_text . $D->log_text, qr/auth/i,
         'the logs mention the failed authentication');
}

# --- refusing to start -------------------------------------------------------
must_refuse('repl_listen=0.0.0.0 without a secret',
            ['repl_listen=0.0.0.0'], qr/secret|loopback/i);
my $short = secret_file('short', 'tooshort');
must_refuse('a secret of 8 bytes', ["repl_secret_file=$short"],
            qr/16|short|secret/i);
must_refuse('a missing secret file',
            ['repl_secret_file=' . tmp_dir() . '/no-such-file'],
            qr/no-such-file|secret/i);

done_testing();
