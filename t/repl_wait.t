#!/usr/bin/perl
# repl_wait [timeout_ms]: the per-request form of synchronous replication.
# It answers OK once the peer has applied this connection's last write,
# TIMEOUT if that did not happen in time, NOLINK without a link.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcTest;
use MemcPair;

require_pair_build();

{
    my $single = MemcTest->start();
    is($single->cmd('repl_wait 10'), "NOLINK\r\n", 'no -x: NOLINK');
    $single->stop;
}

my ($A, $B) = start_pair(linked => 1, repl_timeout => 2);
my $s = $A->new_sock;
is($A->cmd('repl_wait', $s), "OK\r\n", 'nothing written yet: OK at once');
my $ok = 0;
for my $i (1 .. 100) {
    $A->mem_set("w$i", "v$i", 0, 0, $s);
    next unless $A->cmd('repl_wait 1000', $s) eq "OK\r\n";
    my $v = $B->mem_get("w$i");
    $ok++ if defined $v && $v eq "v$i";
}
is($ok, 100, 'after OK the write is on the peer, every time');
is($A->cmd('repl_wait abc', $s), "CLIENT_ERROR bad command line format\r\n",
   'a bad timeout');

$B->sigstop;
$A->mem_set('late', 'x', 0, 0, $s);
my $t0 = time;
is($A->cmd('repl_wait 300', $s), "TIMEOUT\r\n", 'peer stopped: TIMEOUT');
ok(time - $t0 >= 0.28, '... after the timeout');
like($A->cmd('version', $s), qr/\AVERSION /, 'the connection goes on');
$B->sigcont;
ok(wait_linked($A, $B, 15), 'relinked');
is($A->cmd('repl_wait 2000', $s), "OK\r\n", 'then OK');
is(scalar $B->mem_get('late'), 'x', 'and the write is there');

done_testing();
