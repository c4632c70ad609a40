#!/usr/bin/perl
# SIGTERM / SIGINT (and SIGUSR1) stop the server cleanly with exit
# status 0; SIGHUP does not stop it.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcTest;

for my $sig ('TERM', 'INT', 'USR1') {
    my $srv = MemcTest->start();
    my $c = $srv->new_sock;
    $srv->mem_set('k', 'v', 0, 0, $c);
    my $port = $srv->port;
    my $t0 = time;
    my $st = $srv->stop($sig, 10);
    my $took = time - $t0;
    ok(!$srv->{killed}, "SIG$sig: exited by itself (no SIGKILL needed)");
    is($st, 0, "SIG$sig: exit status 0");
    ok($took < 5, sprintf("SIG$sig: exited within 5s (%.2fs)", $took));
    ok($srv->closed_within($c, 2), "SIG$sig: client connection closed");
    my $again = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Proto => 'tcp',
                                      Timeout => 1);
    ok(!$again, "SIG$sig: port no longer accepts");
}

# SIGHUP is not a stop signal
{
    my $srv = MemcTest->start();
    $srv->mem_set('k', 'v');
    kill 'HUP', $srv->pid;
    # give it the chance to die if it were going to
    ok(!MemcTest::wait_until(sub { !$srv->is_alive }, 1),
       'SIGHUP: still running');
    is($srv->get_raw('get k'), "VALUE k 0 1\r\nv\r\nEND\r\n",
       'SIGHUP: still serving its data');
    is($srv->stop('TERM'), 0, 'then SIGTERM: exit 0');
}

# a busy server (client in the middle of a big write) still exits
{
    my $srv = MemcTest->start();
    my $c = $srv->new_sock;
    $srv->send("set half 0 0 100000\r\n" . ('x' x 50000), $c);
    like($srv->cmd('version'), qr/\AVERSION /, 'other connections answer');
    is($srv->stop('TERM', 10), 0, 'SIGTERM with a half-sent value: exit 0');
}

done_testing();
