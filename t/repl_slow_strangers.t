#!/usr/bin/perl
# Strangers that connect to the replication port and trickle bytes
# (doc/replication.txt, "Link slots and the handshake deadline") must
# not keep a pair apart.  A node has 4 link slots; a byte a second on
# each used to keep them all, with no deadline, so the pair stayed in
# "connecting" for as long as they did.  Now:
#  - a link must finish its handshake within repl_timeout of its accept,
#    whatever it sends: strangers are closed at that deadline and
#    counted (handshake_timeouts), or evicted by a newer accept when the
#    slots are full (handshake_evictions);
#  - the node's own dial always has a slot.
# The test: 6 strangers (more than the slots) trickle a byte every
# 250 ms into node A's replication port, reconnecting whenever they are
# closed; then B starts (A dials B, B dials A) and the pair must link
# within 10 s while the strangers go on.

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

my $TMO = 2;
my $N = 6;
my $secret = secret_file('secret',
                         test_secret('correct horse battery staple 1'));
my ($A, $B) = start_pair(o => ["repl_secret_file=$secret",
                               'repl_initial_sync_timeout=1'],
                         repl_timeout => $TMO, wait => 0);
$B->stop('KILL', 5);
# while B is down, A redials B's port: keep it from another test's node
my $held = hold_port($B->repl_port);
ok($held, "B's replication port is held while B is down");
ok($A->wait_ready(15), 'A serves (its initial-sync timeout passed)');

my @strangers;          # {sock, since, bytes}
my @lifetimes;          # seconds each closed stranger was kept
my $opened = 0;

sub stranger {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $A->repl_port, Proto => 'tcp',
                                  Timeout => 1, Blocking => 0) or return;
    $opened++;
    return { sock => $s, since => time, next => 0 };
}

# one round: a byte on each open stranger, and a new one for each closed
sub trickle {
    for my $st (@strangers) {
        if ($st->{sock} && MemcTest::_closed($st->{sock}, 0.01)) {
            push @lifetimes, time - $st->{since};
            close $st->{sock};
            $st->{sock} = undef;
        }
        $st = stranger() || { sock => undef } unless $st->{sock};
        next unless $st->{sock};
        my $byte = substr('PAIR 3 ', $st->{next}++ % 7, 1);
        syswrite($st->{sock}, $byte);
    }
}

# Three strangers (as many as the accepted slots): none is evicted, each
# is closed at the handshake deadline however much it trickles.
{
    @strangers = map { stranger() } 1 .. 3;
    my $t = time;
    while (time - $t < $TMO + 3 && @lifetimes < 3) {
        trickle();
        select(undef, undef, undef, 0.25);
    }
    my @first = @lifetimes[0 .. ($#lifetimes < 2 ? $#lifetimes : 2)];
    is(scalar @first, 3, 'three trickling strangers were each closed');
    ok(!grep({ $_ < $TMO - 0.5 || $_ > $TMO + 1.5 } @first),
       'at the deadline (repl_timeout ' . $TMO . ' s): after '
       . join(', ', map { sprintf '%.1f s', $_ } @first));
    cmp_ok(stat_of($A, 'handshake_timeouts') // 0, '>=', 3,
           'handshake_timeouts counts them');
    close $_->{sock} for grep { $_->{sock} } @strangers;
    @strangers = ();
    @lifetimes = ();
}

# Then six, more than the slots, while B starts.
push @strangers, stranger() for 1 .. $N;
my $t0 = time;
while (time - $t0 < 1.5) {      # the strangers settle in A's slots
    trickle();
    select(undef, undef, undef, 0.25);
}

close $held;
$B->spawn;
my $linked_after;
my $t1 = time;
while (time - $t1 < 10) {
    trickle();
    my $sa = $A->repl_stats;
    my $sb = $B->repl_stats;
    if ($sa && $sb && $sa->{link_state} eq 'linked'
        && $sb->{link_state} eq 'linked') {
        $linked_after = time - $t1;
        last;
    }
    select(undef, undef, undef, 0.25);
}
ok(defined $linked_after, sprintf('the pair links while %d strangers '
   . 'trickle (%s)', $N, defined $linked_after
   ? sprintf('after %.1f s', $linked_after) : 'not within 10 s'))
    or diag('A: ' . esc(join ' ', map { "$_=" . (stat_of($A, $_) // '?') }
                        qw(link_state last_error)));

# the strangers go on until each has been closed at least once
my $t2 = time;
while (time - $t2 < $TMO + 3 && @lifetimes < $N) {
    trickle();
    select(undef, undef, undef, 0.25);
}
cmp_ok(scalar @lifetimes, '>=', $N, "strangers were closed ("
       . scalar(@lifetimes) . " of $opened connections)");
# the closed ones' lifetimes, and the age of those still open
my ($longest) = sort { $b <=> $a } @lifetimes,
    map { time - $_->{since} } grep { $_->{sock} } @strangers;
cmp_ok($longest // 99, '<=', $TMO + 1.5,
       sprintf('none was kept past the deadline (repl_timeout %d s) plus '
               . 'slack: the longest %.1f s', $TMO, $longest // 99));
my $timeouts = stat_of($A, 'handshake_timeouts') // 0;
my $evicted = stat_of($A, 'handshake_evictions') // 0;
cmp_ok($timeouts + $evicted, '>=', scalar @lifetimes - 1,
       "A counted them (handshake_timeouts $timeouts, "
       . "handshake_evictions $evicted)");
like($A->log_text, qr/handshake (?:not done|timeout)|evict/i,
     'A logged the closes');

close $_->{sock} for grep { $_->{sock} } @strangers;
ok(wait_linked($A, $B, 5), 'the pair is still linked');
$A->mem_set('after_strangers', 'crossed');
ok(wait_value($B, 'after_strangers', 'crossed', 5), 'and data crosses');
is(stat_of($A, 'auth_failures'), 0, 'no stranger counted as a failed peer')
    or diag('they sent only a partial PAIR line');

done_testing();
