#!/usr/bin/perl
# Anti-entropy (issue #17): the pair compares its digests on its own
# while no records are in flight, and repairs a difference with a full
# resync both ways, counted and logged.  The divergence here comes from
# a path the stream cannot undo by itself: B (-m 4 -M) is full and
# refuses half of A's large values; A then deletes the ones B holds, so
# B has room again but still lacks the others.  Before, the two nodes
# stayed different for ever while the link said linked.  Then items
# expiring all the time must not set off repairs.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;
use MemcPair;

require_pair_build();

sub digest { my ($n) = @_; my $d = $n->stats_fresh('replication digest');
             return $d ? "$d->{digest}/$d->{digest_items}" : 'none'; }

my ($A, $B) = start_pair(linked => 1, args_b => ['-m', '4', '-M']);
my $big = 'v' x 100_000;
my (@held, @refused);
my $s = $A->new_sock;
for my $i (1 .. 60) {
    $A->send("set big$i 0 0 " . length($big) . "\r\n$big\r\n"
             . "repl_wait 5000\r\n", $s);
    $A->read_line($s);
    my $w = $A->read_line($s) // '';
    push @{ $w eq "OK\r\n" ? \@held : \@refused }, "big$i";
}
cmp_ok(scalar @refused, '>', 0, scalar(@refused) . ' values B could not '
       . 'store, ' . scalar(@held) . ' it holds');
$A->send(join('', map { "delete $_ noreply\r\n" } @held)
         . "set small 0 0 1\r\nx\r\nrepl_wait 5000\r\n", $s);
is($A->read_line($s), "STORED\r\n", 'A deleted what B holds');
is($A->read_line($s), "OK\r\n", 'B applied it');

ok(MemcTest::wait_until(sub { digest($A) eq digest($B) }, 60),
   'the pair repaired itself: the digests agree') or
    diag('A ' . digest($A) . ', B ' . digest($B));
ok(wait_value($B, $refused[0], $big, 5), "B now has $refused[0]");
my ($ra, $rb) = map { stat_of($_, 'digest_repairs') // 0 } $A, $B;
cmp_ok($ra, '>=', 1, "A counted the repair ($ra)");
cmp_ok($rb, '>=', 1, "B counted it ($rb)");
ok(grep({ /digests differ/ } $A->log_text, $B->log_text),
   'and one of them logged why');
ok(wait_linked($A, $B, 20), 'linked again');

# --- items expiring meanwhile do not set off a repair ---------------------
my $checks = (stat_of($A, 'digest_checks') // 0)
           + (stat_of($B, 'digest_checks') // 0);
($ra, $rb) = map { stat_of($_, 'digest_repairs') // 0 } $A, $B;
my $t0 = time;
my $n = 0;
ok(MemcTest::wait_until(sub {
    # a few short-lived keys a second, in bursts, so quiet spells remain
    if (time - $t0 > $n / 2 && $n < 8) {
        $A->send(join('', map { "set ttl$n-$_ 0 3 1 noreply\r\nt\r\n" }
                      1 .. 50), $s);
        $n++;
    }
    my $c = (stat_of($A, 'digest_checks') // 0)
          + (stat_of($B, 'digest_checks') // 0);
    return $c >= $checks + 2;
}, 60), 'two more digest checks ran while keys expired');
is(stat_of($A, 'digest_repairs') // 0, $ra, 'and A made no repair');
is(stat_of($B, 'digest_repairs') // 0, $rb, 'nor B');
done_testing();
