#!/usr/bin/perl
# A write a client gave up on must not win later.  Node B hangs
# (SIGSTOP); a client sends writes to B, gives up (closes), and writes
# the newer values to A.  When B wakes it executes the writes that sat in
# its sockets: before, each took a version from the clock at execution
# time, so the oldest write won on both nodes.  Now a write that waited
# in the kernel is versioned by the time its bytes arrived, and loses
# against anything newer; writes pipelined on one connection still apply
# in order; a lock key (add) released on A meanwhile stays released.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use MemcTest;
use MemcPair;

require_pair_build();

my ($A, $B) = start_pair(linked => 1, repl_timeout => 2);

for my $k (qw(k lock)) {
    is($A->cmd("set $k 0 0 1\r\n1"), "STORED\r\n", "$k=1 via A");
    ok(wait_value($B, $k, '1', 10), "$k reached B");
}
$A->cmd("delete lock");
ok(wait_value($B, 'lock', undef, 10), 'lock released on B');

$B->sigstop;
# Clients that give up on the hung B: their writes stay in B's sockets.
my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $B->port)
    or die "connect B: $!";
print $c "set k 0 0 1\r\n2\r\nadd lock 0 0 1\r\nL\r\n";
close $c;
# One that waits: two writes of one key, pipelined; the second must win.
my $p = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $B->port)
    or die "connect B: $!";
print $p "set pipe 0 0 1\r\na\r\nset pipe 0 0 1\r\nb\r\n";
select(undef, undef, undef, 0.3);
# The clients then go to A: the newer value, and the lock taken and
# released there.
is($A->cmd("set k 0 0 1\r\n3"), "STORED\r\n", 'k=3 via A while B hangs');
is($A->cmd("add lock 0 0 1\r\nA"), "STORED\r\n", 'lock taken on A');
is($A->cmd("delete lock"), "DELETED\r\n", 'lock released on A');
# Past repl_timeout, A drops the link, as a long stall would make it.
ok(MemcTest::wait_until(sub {
    my $st = $A->repl_stats;
    return $st && $st->{link_state} ne 'linked';
}, 20), 'A dropped the link to the hung B');
$B->sigcont;

my $got = '';
MemcTest::wait_until(sub {
    my $buf;
    $got .= $buf if sysread($p, $buf, 100);
    return $got eq "STORED\r\nSTORED\r\n";
}, 10);
is($got, "STORED\r\nSTORED\r\n", 'the waiting client got both answers');
close $p;
ok(wait_linked($A, $B, 30), 'relinked');

for my $n ($A, $B) {
    ok(wait_value($n, 'k', '3', 10), $n->name . ' keeps the newest k')
        or diag('k on ' . $n->name . ': '
                . ($n->{last_item} ? $n->{last_item}{value} : 'miss'));
    ok(wait_value($n, 'lock', undef, 10),
       $n->name . ': the lock released on A stays released');
    ok(wait_value($n, 'pipe', 'b', 10),
       $n->name . ': pipelined writes applied in order');
}
my ($same) = wait_same($A, $B, 'k', 10);
ok($same, 'k is the same item on both nodes');
my $late = stat_of($B, 'late_writes') // 0;
cmp_ok($late, '>=', 4, 'B counted the late writes');

# A write that did not wait still wins over an older one, as before.
is($B->cmd("set k 0 0 1\r\n4"), "STORED\r\n", 'k=4 via B');
ok(wait_value($A, 'k', '4', 10), 'reached A');
ok(wait_value($B, 'k', '4', 10), 'B has it');

done_testing;
