#!/usr/bin/perl
# The address a node dials (-x) must be protected like the one it
# listens on (doc/replication.txt, "Topology and options"): a peer off
# loopback without a secret or TLS with repl_tls_ca would be dialled,
# and its records applied, with no authentication at all.  So:
#  - -x 10.1.2.3:11212 without a secret: the server refuses to start,
#    with a failure status and a message that says why;
#  - an address off loopback with a secret: it starts (and serves after its initial-sync
#    timeout, as nothing answers there);
#  - -x 127.0.0.1:N and -x localhost:N without a secret: still allowed.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;
use MemcPair;

require_pair_build();

must_refuse('-x 10.1.2.3:11212 without a secret', [],
            qr/10\.1\.2\.3.*(?:secret|loopback)/i,
            peer => '10.1.2.3:11212');
must_refuse('-x [2001:db8::1]:11212 without a secret', [],
            qr/2001:db8::1.*(?:secret|loopback)/i,
            peer => '[2001:db8::1]:11212');

my $secret = secret_file('secret',
                         test_secret('correct horse battery staple 1'));

# A node that must start: it serves after its initial-sync timeout.
sub starts {
    my ($name, $peer, @o) = @_;
    my ($port, $rport) = free_ports(2);
    my ($dial) = closed_ports(1);
    my $n = MemcPair::Node->create(
        name => $name, port => $port, repl_port => $rport, dial => $dial,
        peer => $peer, o => ['repl_initial_sync_timeout=1', @o]);
    eval { $n->spawn };
    ok(!$@ && $n->wait_ready(15), "$name: the server starts and serves")
        or diag($@ . ($n->{start_error} // '') . $n->log_text);
    $n->kill9 if $n->is_alive;
}

starts('-x 192.0.2.1:11212 (TEST-NET-1) with a secret', '192.0.2.1:11212',
       "repl_secret_file=$secret");
starts('-x 127.0.0.1 without a secret', undef);
{
    my ($p) = closed_ports(1);
    starts('-x localhost without a secret', "localhost:$p");
}

done_testing();
