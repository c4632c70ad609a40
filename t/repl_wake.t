#!/usr/bin/perl
# A node woken from a stall never answers from the copy it had before.
# B is stopped (SIGSTOP) while clients write the newer value to A; a
# reader that sent its get to B at the start of the stall (its bytes
# waited in B's socket) and one that sent it at the end (its bytes
# arrived long after B's timer last ran) must both get A's value once B
# wakes, as must every fresh connection after SIGCONT: B holds client
# requests read after the wake until the peer's stream has caught it up
# (with 60,000 other writes before k's, so that catching up takes a
# while).
# Twice with a stall shorter than repl_timeout (the link stays up), once
# past it (A drops the link, B resyncs).  With the default settings (the
# hold, no repl_stall_gate), so B's port stays open.  The hold ends one
# round trip after the link is live (B's PING w<n>, A's PONG behind its
# records), not at A's next once-a-second PING: stall_last_hold_ms.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use MemcTest;
use MemcPair;

require_pair_build();

my ($A, $B) = start_pair(linked => 1, repl_timeout => 5);
# the sanitizer build applies A's 60,000 records about 3 times slower
my $hold_max_ms = ($ENV{MEMCACHED_BIN} // '') =~ m{/san/} ? 1500 : 500;

sub get_on {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port)
        or die "connect: $!";
    print $s "get k\r\n";
    return $s;
}

# the value of k in the answer on $s, 'miss', 'closed' or 'timeout'
sub answer {
    my ($s, $secs) = @_;
    my $got = '';
    my $deadline = time + $secs;
    while (time < $deadline && $got !~ /END\r\n$/) {
        my $rin = '';
        vec($rin, fileno($s), 1) = 1;
        next unless select($rin, undef, undef, 0.2) > 0;
        my $n = sysread($s, my $buf, 1024);
        return 'closed' unless $n;
        $got .= $buf;
    }
    close $s;
    return $got =~ /^VALUE k \d+ \d+\r\n(\d+)\r\nEND\r\n$/ ? $1
         : $got eq "END\r\n" ? 'miss' : $got eq '' ? 'timeout' : $got;
}

# after SIGCONT: fresh connections to B, each answer noted, until B
# serves $want
sub poll_fresh {
    my ($want) = @_;
    my %seen;
    MemcTest::wait_until(sub {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $B->port, Timeout => 1);
        if (!$s) { $seen{refused}++; return 0; }
        print $s "get k\r\n";
        my $v = answer($s, 3);
        $seen{$v}++;
        return $v eq $want;
    }, 20);
    return %seen;
}

my $round = 0;
for my $case (['shorter than repl_timeout, the link stays up', 1.6, 0],
              ['again shorter than repl_timeout', 1.3, 0],
              ['past repl_timeout, A drops the link', 0, 1]) {
    my ($what, $secs, $past) = @$case;
    my ($old, $new) = (10 * ++$round + 1, 10 * $round + 2);
    is($A->cmd("set k 0 0 2\r\n$old"), "STORED\r\n", "k=$old via A");
    ok(wait_value($B, 'k', $old, 10), "k=$old reached B");
    my $holds = stat_of($B, 'stall_holds') // 0;

    $B->sigstop;
    my $early = get_on($B->port);       # waits through the stall
    # a busy peer: B has plenty to apply before it reaches k
    MemcPair::preload_noreply($A, 60000,
                              sub { ("f$round:$_[0]", 'v' x 100) });
    is($A->cmd("set k 0 0 2\r\n$new"), "STORED\r\n",
       "k=$new via A while B hangs ($what)");
    if ($past) {
        ok(MemcTest::wait_until(sub {
            my $st = $A->repl_stats;
            return $st && $st->{link_state} ne 'linked';
        }, 20), 'A dropped the link to the hung B');
    } else {
        sleep $secs;
    }
    my $late = get_on($B->port);        # arrives long after B's last tick
    sleep 0.2;
    $B->sigcont;

    is(answer($early, 10), $new, "a get that waited through the stall gets "
       . "k=$new");
    is(answer($late, 10), $new, "a get sent at the end of the stall gets "
       . "k=$new");
    my %seen = poll_fresh($new);
    is(join(',', grep { $_ ne $new } sort keys %seen), '',
       'fresh connections after SIGCONT never see the old copy')
        or diag(join ' ', map { "$_=$seen{$_}" } sort keys %seen);
    ok(wait_linked($A, $B, 30), 'linked again');
    cmp_ok(stat_of($B, 'stall_holds') // 0, '>', $holds,
           'B counted the hold') or diag($B->log_tail(40));
    is(stat_of($B, 'stall_state'), 'running', 'B serves again');
    my $ms = stat_of($B, 'stall_last_hold_ms') // 'none';
    ok($ms ne 'none' && $ms < $hold_max_ms,
       "the hold ended within $hold_max_ms ms of the wake ($ms ms)")
        or diag($B->log_tail(20));
}
cmp_ok(stat_of($B, 'stall_held_requests') // 0, '>=', 2,
       'B counted the requests it held');
like($B->log_text, qr/client requests wait until it has caught up/,
     'B logged the stall');
like($B->log_text, qr/caught up with the peer after a stall/,
     'and the end of the hold');

done_testing;
