#!/usr/bin/perl
# The first sync gate (doc/replication.txt): a node started with -x
# keeps its client port closed until it has received its peer's full
# copy, so it never answers a clean miss for a key the pair holds.
#  - with data on A, kill -9 B, restart it and hammer its client port
#    with "get" from the moment the process starts: every answer is a
#    refused connection or the right value, never END alone (3 times);
#  - a node whose peer does not answer (nothing listening; or a peer
#    that accepts and says nothing) still opens its client port after
#    repl_initial_sync_timeout (2 s), logs why, and serves.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use MemcTest;
use MemcPair;
use TcpRelay;

require_pair_build();

my ($A, $B) = start_pair(linked => 1, args => ['-m', '128']);

# 20,000 items so that B's copy takes a moment
my $N = 20_000;
like(preload_noreply($A, $N,
                     sub { ("g$_[0]", "value-$_[0]-" . ('x' x ($_[0] % 50))) }),
     qr/^VERSION /, "$N items preloaded on A");
$A->mem_set('gate_key', 'the right value', 3);
ok(wait_until(sub { my $h = $B->stats_fresh; $h && ($h->{curr_items} // 0)
                    >= $N + 1 }, 20), 'B has them all');

sub val { my ($i) = @_; return "value-$i-" . ('x' x ($i % 50)) }

# one connection attempt: 'refused', 'hit', 'miss', or 'bad: ...'
sub probe {
    my ($port, $key, $want) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 1);
    return 'refused' unless $s;
    binmode $s;
    my $r = eval {
        MemcTest::_write_all($s, "get $key\r\n", 2);
        my $l = MemcTest::_read_line($s, 3);
        return 'closed' unless defined $l;
        return 'miss' if $l eq "END\r\n";
        die "bad line: $l\n" unless $l =~ /^VALUE \S+ \d+ (\d+)\r\n\z/;
        my $d = MemcTest::_read_bytes($s, $1 + 2, 3);
        my $e = MemcTest::_read_line($s, 3);
        return 'hit' if defined $d && $d eq "$want\r\n"
            && defined $e && $e eq "END\r\n";
        die 'wrong value: ' . esc($d) . "\n";
    };
    close $s;
    return $r // "bad: $@";
}

for my $round (1 .. 3) {
    $B->kill9;
    # a few more writes on A while B is down
    $A->mem_set("late$round", "late value $round");
    my %count;
    my @bad;
    my $first_hit;
    $B->restart(nowait => 1);
    my $t0 = time;
    my $hits = 0;
    my $i = 0;
    while (time - $t0 < 25 && $hits < 300) {
        # alternate keys: the known key, a preloaded one, a late one
        my $k = ++$i % 3;
        my ($key, $want) = $k == 0 ? ('gate_key', 'the right value')
            : $k == 1 ? ('g' . (1 + $i % $N), val(1 + $i % $N))
            : ("late$round", "late value $round");
        my $r = probe($B->port, $key, $want);
        $r = 'refused' if $r eq 'closed' && !$hits;  # closing at start-up
        $count{$r =~ /^bad/ ? 'bad' : $r}++;
        push @bad, "$key: $r" if $r ne 'refused' && $r ne 'hit';
        if ($r eq 'hit') {
            $hits++;
            $first_hit //= time - $t0;
        }
    }
    is($count{miss} // 0, 0, "round $round: B never answered a clean miss")
        or diag(join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]);
    is(scalar(@bad), 0, "round $round: every answer was refused or right")
        or diag(join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]);
    cmp_ok($hits, '>=', 300, "round $round: B served 300 right answers");
    diag(sprintf 'round %d: %d refused, first answer %.3fs after start',
         $round, $count{refused} // 0, $first_hit // -1);
    ok(wait_linked($A, $B, 10), "round $round: linked");
}

# the whole data set is there after the gate
{
    my $h = $B->stats_fresh;
    is($h && $h->{curr_items}, $N + 4, 'B has every item after the restarts');
}

# --- peer that does not answer ---------------------------------------------
sub lonely_node {
    my ($dial) = @_;
    my ($port, $rport) = free_ports(2);
    my $n = MemcPair::Node->create(
        name => 'lonely', port => $port, repl_port => $rport, dial => $dial,
        o => ['repl_initial_sync_timeout=2', 'repl_timeout=1']);
    return $n;
}

for my $case ('nothing listening', 'silent peer') {
    my ($dial, $relay);
    if ($case eq 'nothing listening') {
        ($dial) = closed_ports(1);
    } else {
        # accepts, and then nothing ever crosses
        my ($nowhere) = closed_ports(1);
        $relay = TcpRelay->new(target => $nowhere);
        $relay->cut('blackhole');
        $dial = $relay->port;
    }
    my $n = lonely_node($dial);
    $n->spawn;
    my $t0 = time;
    my $early_open = 0;
    my $opened = wait_until(sub {
        return -1 unless $n->is_alive;
        my $up = !refused($n->port);
        $early_open = 1 if $up && time - $t0 < 1.5;
        return $up;
    }, 10);
    my $took = time - $t0;
    ok($opened && $opened > 0, "$case: the client port opens")
        or diag($n->log_text);
    ok(!$early_open, "$case: not before about repl_initial_sync_timeout "
       . sprintf('(opened after %.2fs)', $took));
    cmp_ok($took, '<=', 6, "$case: within a few seconds of 2 s");
    ok($n->wait_ready(5), "$case: answers version");
    like($n->log_text, qr/no sync|initial.sync|within 2/i,
         "$case: the log says why it opened") or diag($n->log_text);
    is($n->mem_set('solo', 'works', 1), "STORED\r\n", "$case: set");
    is(scalar $n->mem_get('solo'), 'works', "$case: get");
    my $st = $n->repl_stats;
    isnt($st && $st->{link_state}, 'linked', "$case: not linked")
        or diag(explain($st));
    cmp_ok($relay->counts->{held}, '>', 0, "$case: it did dial the peer")
        if $relay;
    $n->kill9;
}

done_testing();
