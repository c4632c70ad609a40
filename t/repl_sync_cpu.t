#!/usr/bin/perl
# repl_sync=1: a connection whose reply waits for the peer's ack must not
# make its worker spin.  Two ways in: more input arriving while it waits
# (level-triggered EV_READ fired on every loop turn), and a wait entered
# right after a -R yield (its EV_WRITE fired on every turn).  The peer is
# stopped, so each wait lasts until repl_sync_timeout; the node's CPU
# time over that wait must stay small, and the replies still come.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX ();
use Time::HiRes qw(time sleep);
use MemcTest;
use MemcPair;

require_pair_build();

my $TICK = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;

# user + system CPU seconds of a process
sub cpu_of {
    my ($pid) = @_;
    my $st = MemcTest::slurp("/proc/$pid/stat") // return 0;
    $st =~ s/\A.*\) //s;
    my @f = split / /, $st;
    return ($f[11] + $f[12]) / $TICK;
}

my ($A, $B) = start_pair(linked => 1, repl_timeout => 10, args_a => ['-R', '1'],
                         o => ['repl_sync=1', 'repl_sync_timeout=3000']);
is($A->mem_set('warm', 'up'), "STORED\r\n", 'pair linked, sync mode');

kill 'STOP', $B->pid;
my $stopped = 1;
END { kill 'CONT', $B->pid if $stopped && $B; }

# 1. input arriving during the wait
{
    my $s = $A->new_sock;
    $A->send("set a 0 0 1\r\nx\r\n", $s);
    sleep 0.3;                      # the reply is held by now
    $A->send("get a\r\n", $s);      # stays in the socket: not read
    my $c0 = cpu_of($A->pid);
    sleep 1.5;
    my $used = cpu_of($A->pid) - $c0;
    cmp_ok($used, '<', 0.3, 'a wait with input pending: ' . sprintf('%.2f',
           $used) . ' s of CPU in 1.5 s');
    is($A->read_line($s, 5), "STORED\r\n", '... STORED after the timeout');
    is($A->read_line($s, 5), "VALUE a 0 1\r\n", '... then the get');
}

# 2. a wait entered right after a -R 1 yield
{
    my $s = $A->new_sock;
    $A->send("get a\r\nset b 0 0 1\r\ny\r\n", $s);
    sleep 0.3;
    my $c0 = cpu_of($A->pid);
    sleep 1.5;
    my $used = cpu_of($A->pid) - $c0;
    cmp_ok($used, '<', 0.3, 'a wait after a -R yield: ' . sprintf('%.2f',
           $used) . ' s of CPU in 1.5 s');
    like($A->drain($s, 5), qr/\AVALUE a 0 1\r\nx\r\nEND\r\nSTORED\r\n\z/,
         '... both replies, in order');
}

kill 'CONT', $B->pid;
$stopped = 0;
# Stopped past repl_timeout, B closes its clients and its port until it
# has caught up (doc/replication.txt): poll on fresh connections.
ok(wait_value($B, 'b', 'y', 20), 'the peer, continued, has b');

done_testing();
