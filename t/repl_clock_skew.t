#!/usr/bin/perl
# The peer's clock skew (stats replication clock_skew_ms, and the log
# line when it is over 1 s; doc/replication.txt).  Each HELLO and PING
# line carries the sender's wall clock; one handled late (a starved
# replication thread, a peer resumed after SIGSTOP) looks like a clock
# behind ours by the delay.  The skew is the largest of the last 8
# samples, so such lines do not move it, and the warning is logged
# once, not once a second.  The test plays the peer (MemcPair::fake_peer)
# and sets the clock it reports.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcTest;
use MemcPair;

require_pair_build();

my $A = lone_node();
my $rport = $A->repl_port;
ok($A->wait_ready(15), 'the node serves after its initial-sync timeout');

sub now_ms { int(time * 1000) }
sub warnings_logged { scalar(() = $A->log_text =~ /peer clock differs/g) }

# skew within $tol ms of $want, polled: the node handles lines in turn
sub skew_near {
    my ($want, $tol) = @_;
    my $got;
    my $ok = wait_until(sub {
        $got = stat_of($A, 'clock_skew_ms');
        defined $got && abs($got - $want) <= $tol;
    }, 5);
    diag("clock_skew_ms $got, want $want +- $tol")
        unless $ok;
    return $ok;
}

# Send $n PINGs with the clock $clock_ms, then a record; true once the
# node has applied the record, so has handled the PINGs before it.
sub pings {
    my ($s, $clock_ms, $n, $key) = @_;
    MemcTest::_write_all($s, "PING $clock_ms\r\n", 2) for 1 .. $n;
    MemcTest::_write_all($s, "S $key 0 0 " . (1 << 48) . " 2\r\nok\r\n", 2);
    return wait_until(sub { my $it = $A->item($key); $it && ref $it }, 5);
}

# A peer whose clock is 5 s ahead: one warning, however many pings.
{
    my $before = warnings_logged();
    my $s = fake_peer($rport, clock_ms => now_ms() + 5000);
    ok($s, 'a peer 5 s ahead gets through the handshake');
    ok(skew_near(5000, 500), 'clock_skew_ms reads about 5000');
    ok(pings($s, now_ms() + 5000, 4, 'ahead'),
       'the node has handled the pings (a record after them applied)');
    ok(skew_near(5000, 500), '... and still after 4 pings');
    is(warnings_logged() - $before, 1, 'one warning logged, not one per line');
    close $s;
}

# A peer with our clock whose pings arrive 3 s late: the skew stays
# about 0 and nothing is logged.
{
    ok(wait_until(sub { (stat_of($A, 'link_state') // '') ne 'linked' }, 10),
       'the first fake peer is gone');
    my $before = warnings_logged();
    my $s = fake_peer($rport);
    ok($s, 'a peer with our clock gets through the handshake');
    ok(skew_near(0, 500), 'clock_skew_ms reads about 0');
    ok(pings($s, now_ms() - 3000, 3, 'late'),
       'the node has handled the late pings (a record after them applied)');
    ok(skew_near(0, 500), 'late pings leave clock_skew_ms about 0');
    is(warnings_logged() - $before, 0, 'and log no warning');

    # A clock that really moves ahead is seen at once.
    ok(pings($s, now_ms() + 4000, 1, 'jump'), 'one more ping handled');
    ok(skew_near(4000, 500), 'a peer clock that jumps 4 s ahead is seen');
    is(warnings_logged() - $before, 1, 'and logged once');
    close $s;
}

done_testing();
