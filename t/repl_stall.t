#!/usr/bin/perl
# A write a client gave up on must not win later.  Node B hangs
# (SIGSTOP); a client sends writes to B, times out, and writes the newer
# values to A.  When B wakes it executes the writes that sat in its
# sockets: before, each took a version from the clock at execution time,
# so the oldest write won on both nodes.  Now a write that waited in the
# kernel is versioned by the time its bytes arrived, and loses against
# anything newer; writes pipelined on one connection still apply in
# order.  Locks are not taken for a client that may be gone: requests
# whose client closed the connection while they waited are not run at
# all (stall_abandoned), and an add, incr or decr that waited for the
# hold 500 ms or more is refused (stall_refused_locks), so a lock
# released on A meanwhile, taken with add or with incr (pecl memcache's
# session lock), stays released.
# A stall longer than repl_timeout (A drops the link) closes B's client
# port until B has caught up: it never answers from its old copy.

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

my ($A, $B) = start_pair(linked => 1, repl_timeout => 4,
                           args => ['-o', 'repl_stall_gate=1']);

for my $k (qw(k lock)) {
    is($A->cmd("set $k 0 0 1\r\n1"), "STORED\r\n", "$k=1 via A");
    ok(wait_value($B, $k, '1', 10), "$k reached B");
}
# pecl memcache's lock: 0 when free, taken by the incr that answers 1
is($A->cmd("set ilock 0 0 1\r\n0"), "STORED\r\n", 'ilock=0 via A');
is($A->cmd("set ctr 0 0 2\r\n10"), "STORED\r\n", 'ctr=10 via A');
ok(wait_value($B, 'ctr', '10', 10) && wait_value($B, 'ilock', '0', 10),
   'ilock and ctr reached B');
$A->cmd("delete lock");
ok(wait_value($B, 'lock', undef, 10), 'lock released on B');

$B->sigstop;
# A client that times out on the hung B: its writes stay in B's socket.
my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $B->port)
    or die "connect B: $!";
print $c "set k 0 0 1\r\n2\r\nadd lock 0 0 1\r\nL\r\nincr ilock 1\r\n";
# One that gives up and closes: nothing it sent may run.
my $g = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $B->port)
    or die "connect B: $!";
print $g "set gone 0 0 1\r\nx\r\nincr ctr 5\r\n";
close $g;
# One that closes just before B wakes: its FIN, merged into the data,
# gives the bytes a receive time that looks fresh.
my $h = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $B->port)
    or die "connect B: $!";
print $h "set gone2 0 0 1\r\nx\r\n";
# One that waits for its increments.
my $q = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $B->port)
    or die "connect B: $!";
print $q "incr ilock 1\r\nma ilock\r\nincr ctr 1\r\n";
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
is($A->cmd("incr ilock 1"), "1\r\n", 'ilock taken on A');
is($A->cmd("set ilock 0 0 1\r\n0"), "STORED\r\n", 'ilock released on A');
# Long enough for the writes to be late (1 s), shorter than repl_timeout:
# the link stays up and A's k=3 waits in B's socket too.
select(undef, undef, undef, 1.5);
close $h;
select(undef, undef, undef, 0.02);
$B->sigcont;

my $got = '';
MemcTest::wait_until(sub {
    my $buf;
    $got .= $buf if sysread($p, $buf, 100);
    return $got eq "STORED\r\nSTORED\r\n";
}, 10);
is($got, "STORED\r\nSTORED\r\n", 'the waiting client got both answers');
close $p;
# three reply lines from $sock
sub three_lines {
    my ($sock) = @_;
    my $got = '';
    MemcTest::wait_until(sub {
        my $buf;
        $got .= $buf if sysread($sock, $buf, 300);
        return ($got =~ tr/\n//) >= 3;
    }, 10);
    return $got;
}
$got = three_lines($c);
like($got, qr/^STORED\r\nNOT_STORED\r\nSERVER_ERROR not applied[^\n]*\n\z/,
     'late set that lost: answered as done; add and incr that waited '
     . 'through the stall: refused') or diag($got);
close $c;
$got = three_lines($q);
like($got, qr/^SERVER_ERROR not applied: the request waited through a stall\r\nEX\r\nSERVER_ERROR not applied[^\n]*\n\z/,
     'incr and ma that waited through the stall: refused') or diag($got);
close $q;
ok(wait_linked($A, $B, 30), 'relinked');

for my $n ($A, $B) {
    ok(wait_value($n, 'k', '3', 10), $n->name . ' keeps the newest k')
        or diag('k on ' . $n->name . ': '
                . ($n->{last_item} ? $n->{last_item}{value} : 'miss'));
    ok(wait_value($n, 'lock', undef, 10),
       $n->name . ': the lock released on A stays released');
    ok(wait_value($n, 'pipe', 'b', 10),
       $n->name . ': pipelined writes applied in order');
    ok(wait_value($n, 'ilock', '0', 10),
       $n->name . ': the incr lock released on A stays released')
        or diag('ilock on ' . $n->name . ': '
                . ($n->{last_item} ? $n->{last_item}{value} : 'miss'));
    ok(wait_value($n, 'ctr', '10', 10),
       $n->name . ': no refused or dropped incr counted');
}
for my $n ($A, $B) {
    is($n->item('gone'), undef,
       $n->name . ': nothing from the client that closed while it waited');
    is($n->item('gone2'), undef,
       $n->name . ': nor from the one that closed just before the wake');
}
is(stat_of($B, 'stall_abandoned'), 2, 'B counted the connections it dropped');
is(stat_of($B, 'stall_refused_locks'), 5, 'B counted the locks it refused');
my ($same) = wait_same($A, $B, 'k', 10);
ok($same, 'k is the same item on both nodes');
my $late = stat_of($B, 'late_writes') // 0;
cmp_ok($late, '>=', 3, 'B counted the late writes');
is(stat_of($B, 'stalls'), 0, 'a stall shorter than repl_timeout is no stall');

# The reproducer of the bug report: a stall past repl_timeout.
$B->sigstop;
my $stopped_at = time;
$c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $B->port)
    or die "connect B: $!";
print $c "set k 0 0 1\r\n2\r\n";
close $c;
# a reader that waits through the stall: its get sat in B's socket
my $w = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $B->port)
    or die "connect B: $!";
print $w "get k\r\n";
is($A->cmd("set k 0 0 1\r\n5"), "STORED\r\n", 'k=5 via A while B hangs');
ok(MemcTest::wait_until(sub {
    my $st = $A->repl_stats;
    return $st && $st->{link_state} ne 'linked';
}, 20), 'A dropped the link to the hung B');
# A may drop it before B's stall reaches repl_timeout (B's last PING
# came up to a second before the stop)
my $left = $stopped_at + 4.5 - time;
select(undef, undef, undef, $left) if $left > 0;
$B->sigcont;
# From now on B answers k=5 or not at all, never its old copy.
my (%seen, $fresh);
{
    my $got = '';
    MemcTest::wait_until(sub {
        my $rin = '';
        vec($rin, fileno($w), 1) = 1;
        return 0 unless select($rin, undef, undef, 0.2) > 0;
        my $n = sysread($w, my $buf, 1024);
        return 1 unless $n;
        $got .= $buf;
        return $got =~ /END\r\n$/;
    }, 10);
    note("the waiting get: " . ($got eq '' ? 'closed' : $got));
    unlike($got, qr/^VALUE k \d+ 1\r\n[^5]/,
           'the get that waited through the stall is not answered from the '
           . 'old copy') or diag($got);
    close $w;
}
MemcTest::wait_until(sub {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $B->port, Timeout => 1);
    if (!$s) { $seen{refused}++; return 0; }
    print $s "get k\r\n";
    my ($buf, $got) = ('', '');
    my $deadline = time + 2;
    while (time < $deadline && $got !~ /END\r\n$/) {
        my $rin = '';
        vec($rin, fileno($s), 1) = 1;
        last unless select($rin, undef, undef, 0.2) >= 0;
        my $n = sysread($s, $buf, 1024);
        last if defined $n && $n == 0;
        $got .= $buf if $n;
    }
    close $s;
    if ($got =~ /^VALUE k \d+ 1\r\n(.)\r\nEND\r\n$/) {
        $seen{$1}++;
        $fresh = $1 eq '5';
        return $fresh;
    }
    $seen{$got eq '' ? 'closed' : 'other'}++;
    return 0;
}, 30);
ok($fresh, 'B serves k=5 again');
note(join ' ', map { "$_=$seen{$_}" } sort keys %seen);
is(join(',', grep { $_ ne '5' && $_ ne 'refused' && $_ ne 'closed' }
        sort keys %seen), '', 'B never answered from its old copy')
    or diag(join ' ', map { "$_=$seen{$_}" } sort keys %seen);
ok(wait_linked($A, $B, 30), 'relinked');
ok(wait_value($A, 'k', '5', 10), 'A keeps k=5');
is(stat_of($B, 'stalls'), 1, 'B counted the stall') or diag($B->log_tail(60));
like($B->log_text, qr/did not run for \d+ ms/, 'B logged it');

# A write that did not wait still wins over an older one, as before.
is($B->cmd("set k 0 0 1\r\n4"), "STORED\r\n", 'k=4 via B');
ok(wait_value($A, 'k', '4', 10), 'reached A');
ok(wait_value($B, 'k', '4', 10), 'B has it');

done_testing;
