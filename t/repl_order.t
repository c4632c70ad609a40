#!/usr/bin/perl
# A replicated write leaves for the peer before its client hears about
# it.  In the steady state the worker hands the pass's records to the
# link socket (send) and only then sends the replies (sendmsg) of the
# requests that fed them, so a crash of the node right after a client
# saw STORED cannot lose that write.  Checked from the order of the
# worker's system calls, recorded with strace(1) attached to node A.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX ();
use MemcTest;
use MemcPair;
use MemcBin;

require_pair_build();
my ($strace) = grep { -x $_ } map { "$_/strace" } split /:/, $ENV{PATH} // '';
plan skip_all => 'strace(1) not installed' unless $strace;

my ($A, $B) = start_pair(linked => 1, args => ['-t', '1']);
ok((grep { MemcTest::slurp($_) =~ /\Amc-repl\s*\z/ }
    glob('/proc/' . $A->pid . '/task/*/comm')) == 1,
   'one thread named mc-repl');
my $dir = tmp_dir();
my $out = "$dir/strace.out";
my $err = "$dir/strace.err";

# Attach to every thread of A, recording the calls that send bytes.
my $spid = fork // die "fork: $!";
if ($spid == 0) {
    open STDOUT, '>', '/dev/null' or POSIX::_exit(126);
    open STDERR, '>', $err or POSIX::_exit(126);
    { exec $strace, '-f', '-p', $A->pid, '-o', $out, '-s', '256',
          '-e', 'trace=sendto,sendmsg,write,writev', '-e', 'signal=none'; }
    POSIX::_exit(127);
}
MemcTest::adopt_pid($spid);
wait_until(sub { MemcTest::slurp($err) =~ /attached|not permitted/ }, 15,
           'strace to attach');
if (MemcTest::slurp($err) =~ /not permitted/) {
    # a container without ptrace(2): nothing to observe the order with
    plan skip_all => 'strace cannot attach here: ' . MemcTest::slurp($err);
}
ok(MemcTest::slurp($err) =~ /attached/, 'strace attached to A')
    or BAIL_OUT('cannot trace: ' . MemcTest::slurp($err));

my $s = $A->new_sock;
# Warm up: once this write shows in the trace, strace is recording.
ok(wait_until(sub {
    $A->mem_set('ord_warm', 'w', 0, 0, $s);
    return MemcTest::slurp($out) =~ /ord_warm/;
}, 15, 'the trace to show a write'), 'the trace records the stream');

# Each step: request bytes, the keys its records carry, the reply.  A
# text step ends with an "mg ... O<tag>" so that its reply, which
# echoes the tag, can be told apart in the trace; the binary reply is
# the only one that starts with the response magic.
my @steps = (
    ['text set', "set ord_t1 0 0 2\r\nv1\r\n", ['ord_t1'], "STORED\r\n"],
    ['text incr', "set ord_n 0 0 1\r\n5\r\nincr ord_n 3\r\n", ['ord_n'],
     "STORED\r\n8\r\n"],
    ['meta set', "ms ord_m1 2 T0\r\nv2\r\n", ['ord_m1'], "HD\r\n"],
    ['delete', "delete ord_t1\r\n", ['ord_t1'], "DELETED\r\n"],
    ['pipelined', "set ord_p1 0 0 1\r\na\r\nset ord_p2 0 0 1\r\nb\r\n"
     . "set ord_p3 0 0 1\r\nc\r\n", [qw(ord_p1 ord_p2 ord_p3)],
     "STORED\r\n" x 3],
    ['binary set', bin_req(0x01, key => 'ord_b1', value => 'v3',
                           extras => set_extras(0, 0)), ['ord_b1'], undef],
);
my $bs = $A->new_sock;        # binary requests on a connection of their own
for my $k (0 .. $#steps) {
    my ($name, $req, undef, $want) = @{ $steps[$k] };
    if (defined $want) {
        $req .= "mg ord_warm Otag$k\r\n";
        $want .= "HD Otag$k\r\n";
        $A->send($req, $s);
        my $got = $A->read_bytes(length $want, $s);
        is($got, $want, "$name: reply") or diag(esc($got));
        $steps[$k][4] = qr/Otag$k\b/;
    } else {
        $A->send($req, $bs);
        my $r = bin_read($A, $bs);
        is($r && $r->{status}, 0, "$name: reply");
        $steps[$k][4] = qr/iov_base="\\201/;
    }
}
# Every write reached B, so every record has been sent.
ok(wait_value($B, 'ord_b1', 'v3', 10), 'B has the last write');

kill 'TERM', $spid;           # strace detaches and exits
waitpid($spid, 0);
MemcTest::disown_pid($spid);
ok($A->is_alive && defined $A->mem_get('ord_m1'),
   'A runs on once strace has gone');

my @lines = split /\n/, MemcTest::slurp($out);
# Records go out with send(2) (strace: sendto), client replies with
# sendmsg(2).
my @reply_at = grep { $lines[$_] =~ /\A\d+\s+sendmsg\(/ } 0 .. $#lines;
# sendto lines by index, for finding a step's records
my @sends = grep { $lines[$_] =~ /\A\d+\s+sendto\(/ } 0 .. $#lines;
# Each step's reply is the sendmsg with its tag; every record of the
# step's keys must be sent after the previous step's reply and before
# this one.
my $prev = -1;
for my $k (0 .. $#steps) {
    my ($name, undef, $keys, undef, $tag) = @{ $steps[$k] };
    my ($reply) = grep { $lines[$_] =~ $tag } @reply_at;
    ok(defined $reply, "$name: its reply is in the trace") or next;
    for my $key (@$keys) {
        my @rec = grep { $_ > $prev && $_ < $reply
                         && $lines[$_] =~ /\b\Q$key\E\b/ } @sends;
        ok(scalar @rec, "$name: the record of $key is sent before the reply")
            or diag(join "\n", @lines[($prev < 0 ? 0 : $prev) .. $#lines]);
    }
    $prev = $reply;
}

# Replies held for the push, then the client goes away: the write
# still reaches B, and A goes on serving.
{
    my $q = $A->new_sock;
    $A->send("set ord_q 0 0 1\r\nq\r\nquit\r\n", $q);
    is($A->read_line($q), "STORED\r\n", 'set then quit: STORED');
    ok($A->closed_within($q, 5), '... then the connection closes');
    for my $i (1 .. 20) {
        my $g = $A->new_sock;
        $A->send("set ord_gone$i 0 0 1\r\ng\r\n", $g);
        close $g;                   # before the reply can be read
    }
    my $n = $A->new_sock;
    $A->send("set ord_nr1 0 0 1 noreply\r\n1\r\n"
             . "set ord_nr2 0 0 1 noreply\r\n2\r\nget ord_nr1\r\n", $n);
    is($A->read_bytes(length("VALUE ord_nr1 0 1\r\n1\r\nEND\r\n"), $n),
       "VALUE ord_nr1 0 1\r\n1\r\nEND\r\n", 'noreply sets, then a get');
    ok(wait_value($B, 'ord_q', 'q', 10), 'B has the write before quit');
    ok(wait_value($B, 'ord_gone20', 'g', 10)
       && wait_value($B, 'ord_nr2', '2', 10),
       'B has the writes of clients that left');
    is($A->cmd('version'), "VERSION " . ($A->stats->{version} // '')
       . "\r\n", 'A serves on');
}

done_testing();
