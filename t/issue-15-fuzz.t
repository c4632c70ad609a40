#!/usr/bin/perl
# Issue #15, "Hostile input": what the libFuzzer harnesses (fuzz/) found,
# each replayed against the real server over a socket.  make check runs
# this file three times: against the plain build, against t/san/memcached
# (gcc) and, in the fuzz pass, against fuzz/build/memcached (clang ASan
# and UBSan, whose null-pointer arithmetic check gcc lacks).  The
# crashing inputs are in fuzz/corpus/<harness>/crash-*.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;
use MemcBin;

my $srv = MemcTest->start();

# Binary STAT "reset" replies from an empty stats buffer; reply_stats()
# computed NULL + 0 as its end (fuzz/corpus/binary/crash-stat-reset).
{
    my $s = $srv->new_sock;
    my @r = bin_stats($srv, $s, 'reset', 3);
    is(scalar @r, 1, 'STAT reset: one response');
    bin_is($r[0], bin_res('STAT', opaque => 3), '... the empty terminator');
    my $v = bin_cmd($srv, $s, 'VERSION', opaque => 4);
    ok($v && $v->{status} == 0, '... and the connection still serves');
    ok($srv->is_alive, '... and the server is alive');
}

# conn_state_name() had no name for CONN_DIGEST, so at -vvv the trace of
# every later state read the wrong name and CONN_CLOSED one past the end
# of the array (fuzz/corpus/text/crash-state-name: "verbosity 5", then
# any connection closing).
{
    my $v = MemcTest->start('-vvv');
    my $s = $v->new_sock;
    $v->send("stats replication digest\r\n", $s);
    my $got = '';
    $got .= $v->read_line($s, 5) // '' for 1 .. 3;
    like($got, qr/STAT digest_items \d+\r\nEND\r\n\z/,
         'digest at -vvv answered');
    $v->send("quit\r\n", $s);
    ok($v->closed_within($s, 5), 'quit closes the connection');
    ok(MemcTest::wait_until(sub { $v->log_text =~ /<\d+ read -> closed$/m },
                            5, 'the close traced'),
       'trace names the closed state');
    like($v->log_text, qr/<\d+ read -> digest$/m,
         '... and the digest state');
    ok($v->is_alive, '... and the server is alive');
}

# A value still being read after a -R yield: the yield left the socket
# registered for EV_WRITE, which fired on every loop turn while the conn
# waited in CONN_NREAD (or CONN_SWALLOW) for the rest of the value: a
# worker at 100% CPU until the client sent it (a timeout in the text
# harness, fuzz/corpus/text/crash-nread-after-yield).
sub cpu_ticks {
    my $st = MemcTest::slurp("/proc/" . $srv->pid . "/stat");
    my @f = split ' ', substr($st, rindex($st, ')') + 2);
    return $f[11] + $f[12];     # utime + stime
}

sub idle_while_waiting {
    my ($what, $head, $rest, $want) = @_;
    my $s = $srv->new_sock;
    $srv->send(("get foo\r\n" x 12) . $head, $s);
    my $got = '';
    $got .= $srv->read_line($s, 5) // '' for 1 .. 12;
    is($got, "END\r\n" x 12, "$what: the gets before it answered");
    my $t0 = cpu_ticks();
    select(undef, undef, undef, 1.5);
    my $used = cpu_ticks() - $t0;
    cmp_ok($used, '<', 30, "$what: server idle while the value is due")
        or diag("$used ticks of CPU in 1.5 s");
    $srv->send($rest, $s);
    is($srv->read_line($s, 5), $want, "$what: then the reply");
}

$srv = MemcTest->start('-R', '4');
idle_while_waiting('set', "set k 0 0 10\r\nabc", "defghij\r\n",
                   "STORED\r\n");
idle_while_waiting('too large', "set big 0 0 2000000\r\nabc",
                   ('x' x 1999997) . "\r\nversion\r\n",
                   "SERVER_ERROR object too large for cache\r\n");

done_testing();
