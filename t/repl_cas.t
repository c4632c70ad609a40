#!/usr/bin/perl
# Pair replication and CAS: an item has the same cas unique on both
# nodes; a gets token taken on A before a write on B is refused
# (EXISTS) on A once B's write has arrived; a write made after a
# received one wins (versions seen from the peer fold into the local
# clock); concurrent writes of the same keys on both nodes converge to
# the same item on both, the one with the highest version (last writer
# wins, doc/replication.txt).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcTest;
use MemcMeta qw(exchange mcmd);
use MemcPair;

require_pair_build();

my ($A, $B) = start_pair(linked => 1);

# --- same cas on both -----------------------------------------------------
is($A->mem_set('c1', 'one', 4), "STORED\r\n", 'set c1 on A');
my ($same, $ia, $ib) = wait_same($A, $B, 'c1', 5);
ok($same && $ia, 'c1: same value, flags and cas on both')
    or diag(explain([$ia, $ib]));

# --- a token taken on A, then a write on B --------------------------------
my $tok = $A->mem_cas('c1');
ok(defined $tok, "gets token on A: " . ($tok // 'none'));
is($B->mem_set('c1', 'from-b', 4), "STORED\r\n", 'set c1 on B');
ok(wait_value($A, 'c1', 'from-b', 5), "B's write reached A");
is($A->store('cas', 'c1', 'stale', 4, 0, undef, $tok), "EXISTS\r\n",
   "cas on A with the token taken before B's write: EXISTS");
is($B->store('cas', 'c1', 'stale', 4, 0, undef, $tok), "EXISTS\r\n",
   'the same token on B: EXISTS');
($same, $ia, $ib) = wait_same($A, $B, 'c1', 5);
ok($same && $ia && $ia->{value} eq 'from-b',
   'both still hold B\'s write with one cas') or diag(explain([$ia, $ib]));
isnt($ia && $ia->{cas}, $tok, 'the cas changed');

# the fresh token works on A, and the result crosses to B
my $tok2 = $A->mem_cas('c1');
is($A->store('cas', 'c1', 'cas-on-a', 5, 0, undef, $tok2), "STORED\r\n",
   'cas on A with the fresh token: STORED');
($same, $ia, $ib) = wait_same($A, $B, 'c1', 5);
ok($same && $ia && $ia->{value} eq 'cas-on-a' && $ia->{flags} == 5,
   'the cas write is on B with the same cas') or diag(explain([$ia, $ib]));
is($B->store('cas', 'c1', 'late', 5, 0, undef, $tok2), "EXISTS\r\n",
   'the token A just used is spent on B too');

# a token taken on B works on A once nothing changed (same version)
my $tokb = $B->mem_cas('c1');
is($A->store('cas', 'c1', 'tok-from-b', 5, 0, undef, $tokb), "STORED\r\n",
   'a token read on B is valid on A (same cas on both)');
ok(wait_value($B, 'c1', 'tok-from-b', 5), 'and that write reaches B');

# meta: mg c on both
{
    my $ca = MemcMeta::mcas($A, 'c1');
    my $cb;
    wait_until(sub { $cb = MemcMeta::mcas($B, 'c1'); defined $cb
                     && defined $ca && $cb eq $ca }, 5);
    is($cb, $ca, 'mg c: same cas on both');
    my $r = exchange($B, "ms c1 2 C$ca c\r\nzz\r\n");
    like($r, qr/^HD c\d+/, 'ms C with that cas on B: HD');
    my ($newcas) = ($r // '') =~ /c(\d+)/;
    ok(wait_value($A, 'c1', { value => 'zz', cas => $newcas // -1 }, 5),
       'the ms reached A with the cas B answered');
}

# --- a later local write wins over a received one --------------------------
{
    my $bad = 0;
    my @why;
    for my $i (1 .. 50) {
        my ($w1, $w2) = $i % 2 ? ($B, $A) : ($A, $B);
        $w1->mem_set('ping', "first$i");
        if (!wait_value($w2, 'ping', "first$i", 5)) {
            $bad++;
            push @why, "round $i: first write never arrived on "
                . $w2->name;
            next;
        }
        $w2->mem_set('ping', "second$i");
        my ($ok, $x, $y) = wait_same($A, $B, 'ping', 5);
        if (!$ok || !$x || $x->{value} ne "second$i") {
            $bad++;
            push @why, "round $i: A=" . ($x ? $x->{value} : 'miss')
                . ' B=' . ($y ? $y->{value} : 'miss');
        }
    }
    is($bad, 0, 'a write made after receiving the peer\'s write wins on '
       . 'both (50 rounds, alternating nodes)') or diag(join "\n", @why);
}

# --- concurrent writes converge -------------------------------------------
# The same key written on both nodes at once: each ms returns the
# version it got (c); afterwards both nodes must hold the write with
# the higher version, with that cas.
sub ms_cas {
    my ($node, $s, $key, $val) = @_;
    $node->send("ms $key " . length($val) . " c\r\n$val\r\n", $s);
}

{
    my $N = 200;
    my ($sa, $sb) = ($A->new_sock, $B->new_sock);
    my (%va, %vb);
    my $t0 = time;
    for my $i (1 .. $N) {
        # both requests are on the wire before either reply is read
        ms_cas($A, $sa, "race$i", "A$i");
        ms_cas($B, $sb, "race$i", "B$i");
        my $ra = $A->read_line($sa, 5) // '';
        my $rb = $B->read_line($sb, 5) // '';
        ($va{$i}) = $ra =~ /^HD c(\d+)/;
        ($vb{$i}) = $rb =~ /^HD c(\d+)/;
    }
    # and one hot key, hammered from both sides
    my (@hot_a, @hot_b);
    for my $i (1 .. $N) {
        ms_cas($A, $sa, 'hot', "hA$i");
        ms_cas($B, $sb, 'hot', "hB$i");
        my $ra = $A->read_line($sa, 5) // '';
        my $rb = $B->read_line($sb, 5) // '';
        push @hot_a, $ra =~ /^HD c(\d+)/ ? [$1, "hA$i"] : [0, 'bad'];
        push @hot_b, $rb =~ /^HD c(\d+)/ ? [$1, "hB$i"] : [0, 'bad'];
    }
    diag(sprintf('%d concurrent writes (2 x %d) in %.2fs', 4 * $N, $N,
                 time - $t0));
    is(scalar(grep { defined $va{$_} && defined $vb{$_} } 1 .. $N), $N,
       'every ms returned its cas');

    my @keys = map { "race$_" } 1 .. $N;
    my (%ga, %gb);
    my $conv = wait_until(sub {
        %ga = multi_gets($A, @keys, 'hot');
        %gb = multi_gets($B, @keys, 'hot');
        for my $k (@keys, 'hot') {
            return 0 unless $ga{$k} && $gb{$k};
            return 0 if $ga{$k}[0] ne $gb{$k}[0] || $ga{$k}[1] ne $gb{$k}[1];
        }
        return 1;
    }, 15);
    ok($conv, "$N keys written on both nodes at once converge "
       . '(same value and cas on both)');
    my @wrong;
    for my $i (1 .. $N) {
        my $k = "race$i";
        next unless defined $va{$i} && defined $vb{$i};
        my ($wv, $wc) = $va{$i} > $vb{$i} ? ("A$i", $va{$i})
                                          : ("B$i", $vb{$i});
        my $got = $ga{$k} ? "$ga{$k}[0]/$ga{$k}[1]" : 'miss';
        my $gotb = $gb{$k} ? "$gb{$k}[0]/$gb{$k}[1]" : 'miss';
        push @wrong, "$k: want $wv/$wc (A wrote $va{$i}, B wrote "
            . "$vb{$i}); A has $got, B has $gotb"
            if $got ne "$wv/$wc" || $gotb ne "$wv/$wc";
    }
    is(scalar(@wrong), 0, 'each key holds the write with the higher '
       . 'version on both') or diag(join "\n", @wrong[0 .. min(9, $#wrong)]);
    my ($hot) = sort { $b->[0] <=> $a->[0] } @hot_a, @hot_b;
    is($ga{hot} && "$ga{hot}[0]/$ga{hot}[1]", "$hot->[1]/$hot->[0]",
       'hot key: A holds the highest-version write of all 400');
    is($gb{hot} && "$gb{hot}[0]/$gb{hot}[1]", "$hot->[1]/$hot->[0]",
       'hot key: B too');
    my %seen;
    my $dups = grep { $seen{ $_->[0] }++ } @hot_a, @hot_b;
    is($dups, 0, 'no two writes on the two nodes got the same version');
}

sub min { $_[0] < $_[1] ? $_[0] : $_[1] }

# key => [value, cas] for every hit of one "gets k1 k2 ..." (a fresh
# connection, so a failure does not poison the next poll)
sub multi_gets {
    my ($node, @keys) = @_;
    my %h;
    my $s = eval { $node->new_sock } or return;
    my ($raw, $items, $err) = eval {
        $node->send("gets @keys\r\n", $s);
        $node->read_values($s, 5);
    };
    close $s;
    return if !$items || $err;
    $h{ $_->{key} } = [$_->{value}, $_->{cas}] for @$items;
    return %h;
}

done_testing();
