#!/usr/bin/perl
# TLS on the replication link (doc/replication.txt, "TLS"):
#  - with repl_tls and a CA both nodes verify each other; the link says
#    which protocol and cipher it uses; nothing readable crosses the wire
#    (a relay records every byte; the same check on a plain pair finds the
#    values, so the check can fail);
#  - a full copy of many items, a burst of live writes, a link cut with a
#    partial resync and a kill -9 with a full resync all work over TLS;
#  - a peer whose certificate another CA signed, and a plain-text peer,
#    never link and get no data; tls_failures counts them;
#  - TLS and a shared secret together (the proof is bound to the TLS
#    session): same secret links, different secrets do not;
#  - repl_tls=1 without a certificate, or with a bad one, refuses to start.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time);
use MemcTest;
use MemcPair;

require_pair_build();
my $openssl = (grep { -x "$_/openssl" } split /:/, $ENV{PATH})[0];
plan skip_all => 'the openssl command is not installed' unless $openssl;
my $TMO = 2;
my $dir = tmp_dir();

sub run_openssl {
    my @args = @_;
    my $out = `$openssl/openssl @args 2>&1`;
    die "openssl @args failed: $out" if $?;
}

# a CA and a node certificate it signs (ECDSA P-256: quick to make)
sub make_ca {
    my ($name) = @_;
    run_openssl("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
        . " -nodes -keyout $dir/$name.key -out $dir/$name.pem -days 2"
        . " -subj /CN=$name");
    return "$dir/$name.pem";
}

sub make_cert {
    my ($name, $ca) = @_;
    run_openssl("req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        . " -keyout $dir/$name.key -out $dir/$name.csr -subj /CN=$name");
    run_openssl("x509 -req -in $dir/$name.csr -CA $dir/$ca.pem"
        . " -CAkey $dir/$ca.key -CAcreateserial -out $dir/$name.pem -days 2");
    chmod 0600, "$dir/$name.key";
    return ("repl_tls_cert=$dir/$name.pem", "repl_tls_key=$dir/$name.key");
}

make_ca('pairca');
make_ca('rogueca');
my @tls_a = ('repl_tls=1', make_cert('nodea', 'pairca'),
             "repl_tls_ca=$dir/pairca.pem");
my @tls_b = ('repl_tls=1', make_cert('nodeb', 'pairca'),
             "repl_tls_ca=$dir/pairca.pem");
my @tls_rogue = ('repl_tls=1', make_cert('rogue', 'rogueca'),
                 "repl_tls_ca=$dir/rogueca.pem");

my $MARK = 'plaintext-marker-' . ('q' x 24);

# --- control: a plain pair through a capturing relay shows the value ----
{
    my $cap = "$dir/plain.cap";
    my ($A, $B) = start_pair(relay => 1, capture => $cap, linked => 1,
                             repl_timeout => $TMO);
    $A->mem_set('plainkey', $MARK);
    ok(wait_value($B, 'plainkey', $MARK, 5), 'plain pair: data crosses');
    ok(index(MemcTest::slurp($cap), $MARK) >= 0,
       'plain pair: the relay saw the value in clear (the check works)');
    is(stat_of($A, 'tls'), 'off', 'plain pair: tls off');
    is(stat_of($A, 'link_tls'), 'none', 'plain pair: link_tls none');
}

# --- a verified TLS pair ---------------------------------------------------
{
    my $cap = "$dir/tls.cap";
    my ($A, $B) = start_pair(relay => 1, capture => $cap, linked => 1,
                             repl_timeout => $TMO, o_a => \@tls_a,
                             o_b => \@tls_b);
    ok(1, 'TLS pair links');
    is(stat_of($A, 'tls'), 'verify', 'A: tls verify');
    # both dial at start and one link is closed as a duplicate: until
    # that settles a node may have no current link (link_tls none)
    for my $n ($A, $B) {
        MemcTest::wait_until(sub {
            (stat_of($n, 'link_tls') // '') =~ /^TLSv1\.[23] \S+$/;
        }, 10);
    }
    like(stat_of($A, 'link_tls'), qr/^TLSv1\.[23] \S+$/,
         'A: link_tls names protocol and cipher');
    like(stat_of($B, 'link_tls'), qr/^TLSv1\.[23] \S+$/, 'B: link_tls too');
    like($A->log_text . $B->log_text, qr/TLS established/,
         'the log says TLS is established');

    $A->mem_set('tlskey', $MARK);
    ok(wait_value($B, 'tlskey', $MARK, 5), 'TLS: A -> B');
    $B->mem_set('tlskey2', "b-$MARK");
    ok(wait_value($A, 'tlskey2', "b-$MARK", 5), 'TLS: B -> A');

    # a burst of live writes: the stream goes through the TLS session
    my $v = 'v' x 700;
    $A->send(join '', map { "set burst$_ 0 0 700 noreply\r\n$v\r\n" }
             1 .. 5000);
    is($A->cmd('version') =~ /^VERSION/ ? 1 : 0, 1, 'burst written to A');
    ok(wait_value($B, 'burst5000', $v, 10), 'burst: the last write on B');
    ok(wait_value($B, 'burst1', $v, 5), 'burst: the first write on B');
    ok(MemcTest::wait_until(sub {
        $A->stats('replication digest')->{digest} eq
            $B->stats('replication digest')->{digest} }, 10, 'digests'),
       'burst: digests agree');

    my $wire = MemcTest::slurp($cap);
    cmp_ok(length $wire, '>', 5000 * 700, 'the relay saw the traffic ('
           . length($wire) . ' bytes)');
    ok(index($wire, 'plaintext-marker') < 0, 'no value in clear on the wire');
    ok($wire !~ /(?:^|\n)(?:PAIR|SYNC|SYNCED|RESUME|PING|ACK) /,
       'no replication line in clear on the wire');
    ok(index($wire, 'burst') < 0, 'no key in clear on the wire');

    # a link cut: relinks over TLS with a partial resync
    my $p0 = stat_of($A, 'partial_syncs') + stat_of($B, 'partial_syncs');
    $_->relay->cut('close') for $A, $B;
    ok(MemcTest::wait_until(sub { (stat_of($A, 'link_state') // '') ne 'linked' },
                            10, 'A unlinked'), 'cut: A sees the link drop');
    $A->mem_set('during_cut', 'yes');
    $_->relay->restore for $A, $B;
    ok(wait_linked($A, $B, 15), 'cut: relinked over TLS');
    ok(wait_value($B, 'during_cut', 'yes', 5), 'cut: the write made during '
       . 'the cut arrives');
    cmp_ok(stat_of($A, 'partial_syncs') + stat_of($B, 'partial_syncs'), '>', $p0,
           'cut: caught up by a partial resync');

    # kill -9 B and restart it: a full copy over TLS of 20k items
    $B->kill9;
    $A->send(join '', map { "set many$_ 0 0 " . (100 + $_ % 900) .
                            " noreply\r\n" . ('m' x (100 + $_ % 900)) .
                            "\r\n" } 1 .. 20000);
    $A->cmd('version');
    my $f0 = stat_of($A, 'full_syncs');
    $B->restart;
    ok(wait_linked($A, $B, 20), 'restart: relinked over TLS');
    cmp_ok(stat_of($A, 'full_syncs'), '>', $f0, 'restart: A sent a full copy');
    ok(wait_value($B, 'many20000', 'm' x (100 + 20000 % 900), 10),
       'restart: B has the last item');
    ok(MemcTest::wait_until(sub {
        $A->stats('replication digest')->{digest} eq
            $B->stats('replication digest')->{digest} }, 10, 'digests'),
       'restart: digests agree after the full copy');
    is(stat_of($A, 'tls_failures'), 0, 'no TLS failures on A');

    # A connection that ends before sending a byte (what a relay whose
    # peer is down does) is not a TLS failure; one that sends plain text
    # is.
    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $A->repl_port, Proto => 'tcp')
        or die "connect: $!";
    close $c;
    ok(MemcTest::wait_until(sub { (stat_of($A, 'last_error') // '')
                                      =~ /before the TLS handshake/ }, 5,
                            'last_error'),
       'silent connection: last_error says it closed before the handshake');
    is(stat_of($A, 'tls_failures'), 0, 'silent connection: no TLS failure');
    $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                               PeerPort => $A->repl_port, Proto => 'tcp')
        or die "connect: $!";
    print $c "PAIR 1 2 3 4 5\r\n" x 20;
    close $c;
    ok(MemcTest::wait_until(sub { (stat_of($A, 'tls_failures') // 0) == 1 },
                            5, 'tls_failures'),
       'plain-text connection: one TLS failure');
}

# --- a certificate from another CA ---------------------------------------
{
    my ($C, $D) = start_pair(o_a => \@tls_a, o_b => \@tls_rogue,
                             o => ['repl_initial_sync_timeout=2'],
                             repl_timeout => $TMO, start_timeout => 15);
    $C->mem_set('secret_c', $MARK);
    $D->mem_set('secret_d', $MARK);
    my ($linked, $max) = never_link($C, $D, 3);
    is($linked, 0, 'rogue CA: never linked');
    cmp_ok($max->{tls_failures}, '>', 0, 'rogue CA: tls_failures counted');
    ok(!defined $D->item('secret_c'), 'rogue CA: no data C -> D');
    ok(!defined $C->item('secret_d'), 'rogue CA: no data D -> C');
    like($C->log_text . $D->log_text, qr/TLS handshake: .*certif/i,
         'rogue CA: the log names the certificate problem');
}

# --- a plain-text peer ------------------------------------------------------
{
    my ($C, $D) = start_pair(o_a => \@tls_a,
                             o => ['repl_initial_sync_timeout=2'],
                             repl_timeout => $TMO, start_timeout => 15);
    $C->mem_set('secret_c', $MARK);
    my ($linked, $max) = never_link($C, $D, 3);
    is($linked, 0, 'plain peer: never linked');
    cmp_ok(stat_of($C, 'tls_failures'), '>', 0, 'plain peer: tls_failures on the '
           . 'TLS node');
    ok(!defined $D->item('secret_c'), 'plain peer: no data');
}

# --- TLS plus a shared secret ------------------------------------------------
{
    my $s1 = secret_file('s1', 'the pair secret number one');
    my $s2 = secret_file('s2', 'another pair secret two');
    my ($A, $B) = start_pair(o_a => [@tls_a, "repl_secret_file=$s1"],
                             o_b => [@tls_b, "repl_secret_file=$s1"],
                             linked => 1, repl_timeout => $TMO);
    $A->mem_set('both', 'ok');
    ok(wait_value($B, 'both', 'ok', 5), 'TLS + same secret: data crosses');
    is(stat_of($A, 'auth_failures'), 0, 'TLS + same secret: no auth failure');

    my ($C, $D) = start_pair(o_a => [@tls_a, "repl_secret_file=$s1"],
                             o_b => [@tls_b, "repl_secret_file=$s2"],
                             o => ['repl_initial_sync_timeout=2'],
                             repl_timeout => $TMO, start_timeout => 15);
    $C->mem_set('secret_c', $MARK);
    my ($linked, $max) = never_link($C, $D, 3);
    is($linked, 0, 'TLS + different secrets: never linked');
    cmp_ok($max->{auth_failures}, '>', 0, 'TLS + different secrets: '
           . 'auth_failures counted');
    ok(!defined $D->item('secret_c'), 'TLS + different secrets: no data');
}

# --- refusing to start -------------------------------------------------------
must_refuse('repl_tls without a certificate', ['repl_tls=1'],
            qr/repl_tls_cert/);
{
    open my $fh, '>', "$dir/junk.pem" or die;
    print $fh "not a certificate\n";
    close $fh;
}
must_refuse('repl_tls with a bad certificate',
            ['repl_tls=1', "repl_tls_cert=$dir/junk.pem",
             "repl_tls_key=$dir/nodea.key"], qr/repl_tls_cert/);
must_refuse('repl_tls with a key that does not match',
            ['repl_tls=1', "repl_tls_cert=$dir/nodea.pem",
             "repl_tls_key=$dir/nodeb.key"], qr/repl_tls_key/);
must_refuse('repl_tls with a missing CA file',
            ['repl_tls=1', "repl_tls_cert=$dir/nodea.pem",
             "repl_tls_key=$dir/nodea.key", "repl_tls_ca=$dir/none.pem"],
            qr/repl_tls_ca/);

done_testing();
