#!/usr/bin/perl
# flush_all: immediate, delayed, noreply, bad arguments; items stored
# after an immediate flush survive.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcTest;

my $srv = MemcTest->start();

$srv->mem_set("k$_", "v$_") for 1 .. 50;
is($srv->cmd('flush_all'), "OK\r\n", 'flush_all: OK');
is($srv->get_raw('get k1 k25 k50'), "END\r\n", 'everything gone');
is($srv->mem_add('k1', 'again'), "STORED\r\n",
   'add succeeds on a flushed key');

# items set right after an immediate flush survive
is($srv->mem_set('after', 'yes'), "STORED\r\n", 'set after flush');
is($srv->get_raw('get after k1'),
   "VALUE after 0 3\r\nyes\r\nVALUE k1 0 5\r\nagain\r\nEND\r\n",
   'items stored after flush_all are readable');

# explicit 0 delay is immediate too
is($srv->cmd('flush_all 0'), "OK\r\n", 'flush_all 0: OK');
is($srv->get_raw('get after k1'), "END\r\n", 'flush_all 0 is immediate');

# noreply
{
    my $s = $srv->new_sock;
    $srv->mem_set('n', 'x', 0, 0, $s);
    $srv->send("flush_all noreply\r\n", $s);
    is($srv->get_raw('get n', $s), "END\r\n", 'flush_all noreply: silent');
    $srv->mem_set('n', 'x', 0, 0, $s);
    $srv->send("flush_all 0 noreply\r\n", $s);
    is($srv->get_raw('get n', $s), "END\r\n", 'flush_all 0 noreply: silent');
}

# bad arguments
is($srv->cmd('flush_all abc'), "CLIENT_ERROR invalid exptime argument\r\n",
   'flush_all abc: invalid exptime argument');
is($srv->cmd('flush_all 1a'), "CLIENT_ERROR invalid exptime argument\r\n",
   'flush_all 1a: invalid exptime argument');
is($srv->cmd('flush_all 99999999999999999999'),
   "CLIENT_ERROR invalid exptime argument\r\n",
   'flush_all huge: invalid exptime argument');

# delayed flush: items live until the delay passes, then are gone
{
    $srv->mem_set('d1', 'x');
    $srv->mem_set('d2', 'y');
    my $t0 = time;
    is($srv->cmd('flush_all 3'), "OK\r\n", 'flush_all 3: OK');
    is($srv->get_raw('get d1 d2'),
       "VALUE d1 0 1\r\nx\r\nVALUE d2 0 1\r\ny\r\nEND\r\n",
       'items still there right after a delayed flush');
    ok(MemcTest::wait_until(sub { $srv->get_raw('get d1 d2') eq "END\r\n" },
                            6, 'delayed flush to take effect'),
       'items gone once the delay has passed');
    my $took = time - $t0;
    ok($took >= 0.9, sprintf('delayed flush did not act at once (%.2fs)',
                             $took));
    # once the flush time is behind us, new items survive again
    ok(MemcTest::wait_until(sub {
        $srv->mem_set('later', 'z');
        defined $srv->mem_get('later');
    }, 4, 'new items to survive'), 'items stored later survive');
}

# counters
{
    my $st = $srv->stats;
    ok($st->{cmd_flush} >= 5, "cmd_flush counted ($st->{cmd_flush})");
    ok(exists $st->{get_flushed}, 'get_flushed stat exists');
}

# flush_all refused when disabled with -F
{
    my $nf = MemcTest->start('-F');
    $nf->mem_set('a', 'x');
    is($nf->cmd('flush_all'), "CLIENT_ERROR flush_all not allowed\r\n",
       '-F: flush_all not allowed');
    is($nf->get_raw('get a'), "VALUE a 0 1\r\nx\r\nEND\r\n",
       '-F: data kept');
    $nf->stop;
}

done_testing();
