#!/usr/bin/perl
# -R (requests per event): a connection that has sent many requests at
# once is served -R of them at a time, and the worker polls its other
# connections in between, as memcached does, so that one client
# pipelining a flood cannot hold back the others.  Every request is
# still answered, in order, and a connection that yielded goes back to
# waiting for input without spinning.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX ();
use Time::HiRes qw(time);
use MemcTest;

my $srv = MemcTest->start('-t', '1', '-R', '2');
is($srv->mem_set('k', 'v' x 100), "STORED\r\n", 'a value to get');

# 1000 pipelined gets and a version: all answered, in order.
{
    my $s = $srv->new_sock;
    $srv->send(("get k\r\n" x 1000) . "version\r\n", $s);
    my ($values, $ends, $bad) = (0, 0, 0);
    for (1 .. 1000) {
        my $l = $srv->read_line($s) // '';
        $values++ if $l eq "VALUE k 0 100\r\n";
        $bad++ unless ($srv->read_line($s) // '') eq ('v' x 100) . "\r\n";
        $ends++ if ($srv->read_line($s) // '') eq "END\r\n";
    }
    is("$values $ends $bad", '1000 1000 0', '1000 pipelined gets answered');
    like($srv->read_line($s) // '', qr/^VERSION /, 'then the version');
    cmp_ok($srv->stats->{conn_yields}, '>', 0, 'conn_yields counts the yields');
}

# Fairness.  One connection floods 300,000 pipelined gets, written by a
# child process faster than the server answers them, and read by
# another, so its socket never runs dry and the server never waits to
# write.  Meanwhile a second connection asks for stats 8 times: each is
# answered while the flood goes on, and get_hits moves between two
# replies by what the server does while this process turns a reply into
# the next request, not by all that the flood's socket holds.
{
    my $n = 300_000;
    my $chunk = "get k\r\n" x 2000;
    my $reply = "VALUE k 0 1\r\nv\r\nEND\r\n";
    is($srv->mem_set('k', 'v'), "STORED\r\n", 'a 1-byte value');
    my ($f, $v) = ($srv->new_sock, $srv->new_sock);
    $srv->cmd('version', $f);
    my $base = $srv->stats('', $v)->{get_hits};
    my $writer = fork() // die "fork: $!";
    if ($writer == 0) {
        MemcTest::_write_all($f, $chunk, 30) for 1 .. $n / 2000;
        POSIX::_exit(0);
    }
    my $reader = fork() // die "fork: $!";
    if ($reader == 0) {
        my ($got, $buf) = (0, '');
        my $deadline = time + 60;
        while ($got < $n * length($reply) && time < $deadline) {
            my $k = sysread($f, $buf, 1 << 20);
            last unless $k;
            $got += $k;
        }
        POSIX::_exit($got == $n * length($reply) ? 0 : 1);
    }
    my $started = wait_until(sub {
        $srv->stats('', $v)->{get_hits} - $base > 1000 }, 10);
    ok($started, 'the flood is being served');
    my @hits = map { $srv->stats('', $v)->{get_hits} - $base } 1 .. 8;
    my @gaps = map { $hits[$_] - $hits[$_ - 1] } 1 .. 7;
    my ($min) = sort { $a <=> $b } @gaps;
    waitpid($writer, 0);
    is($?, 0, 'the flood was written');
    waitpid($reader, 0);
    is($?, 0, "all $n gets of the flood answered");
    cmp_ok($hits[-1], '<', $n, 'the stats requests were answered while the '
           . "flood went on ($hits[-1] of $n gets done)");
    # The smallest gap: this process may be descheduled now and then,
    # which widens a gap, but not all 7.  Served -R at a time, the flood
    # moves by a few gets; served until its socket runs dry (the old
    # yield), by a socket buffer's worth: 15,000-31,000 gets here.
    cmp_ok($min, '<', 1000, "$min gets of the flood at the least between "
           . "two stats replies (gaps: @gaps)");
}

# A connection back from a yield with nothing more to do waits for
# input again: the idle server uses (almost) no CPU.  noreply deletes
# leave nothing to send after the last yield.
{
    my $s = $srv->new_sock;
    my $yields = $srv->stats->{conn_yields};
    $srv->send(join('', map { "delete q$_ noreply\r\n" } 1 .. 100), $s);
    ok(wait_until(sub { $srv->stats->{conn_yields} >= $yields + 40 }, 10),
       '100 noreply deletes served, yielding');
    my $cpu = sub {
        my @f = split ' ', (MemcTest::slurp('/proc/' . $srv->pid . '/stat')
                            =~ s/^.*\) //r);
        return $f[11] + $f[12];         # utime + stime, clock ticks
    };
    my $before = $cpu->();
    select(undef, undef, undef, 0.5);   # the measured idle interval
    my $used = $cpu->() - $before;
    cmp_ok($used, '<=', 10, "idle for 0.5 s after the yields: $used ticks "
                            . 'of CPU (a spinning worker takes about 50)');
}

done_testing();
