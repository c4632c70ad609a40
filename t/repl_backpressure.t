#!/usr/bin/perl
# A peer that stops reading for less than the link timeout: the stream
# backs up into the sender's buffer (the socket is full mid-record), the
# sender keeps queueing heartbeats and acknowledgements meanwhile, and
# when the peer resumes everything arrives intact on the same link: no
# protocol error, no reconnect, no resync.  In the steady state records
# are sent straight from the backlog and control lines are slotted in at
# record boundaries; this is the test of that interleaving.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::MD5 qw(md5_hex);
use MemcTest;
use MemcPair;

require_pair_build();

my ($A, $B) = start_pair(linked => 1, repl_timeout => 20,
                         args => ['-m', '256']);
my $before = $A->repl_stats;

# Values that differ in every byte position, so a record cut or shifted
# anywhere shows.
sub value_of {
    my ($i) = @_;
    my $unit = md5_hex("v$i") x 2;     # 64 bytes
    return substr($unit x 1601, $i % 64, 100_000 + $i);
}

$B->sigstop;
my $n = 200;                            # about 20 MB: more than the
my $stored = 0;                         # sockets on both ends can hold
for my $i (1 .. $n) {
    $stored++ if $A->mem_set("bp$i", value_of($i)) eq "STORED\r\n";
}
is($stored, $n, "$n values of 100 KB stored on A while B is stopped");

# The stream is blocked: bytes wait in A's buffer.  Hold B for two more
# heartbeats, which A queues behind the unsent records.
my $blocked = wait_until(sub { ($A->repl_stats->{buffer_bytes} // 0) > 0 },
                         5);
ok($blocked, 'A holds unsent bytes (the socket to B is full)');
# Nothing is written now, so the buffer grows only by heartbeats: two of
# them, queued behind a record the socket took only part of.
my $held = $A->repl_stats->{buffer_bytes} // 0;
my $grew = 0;
for my $beat (1, 2) {
    my $from = $held;
    $grew++ if wait_until(sub {
        $held = $A->repl_stats->{buffer_bytes} // 0;
        return $held > $from;
    }, 5);
}
is($grew, 2, 'two heartbeats queued behind the blocked records');
$B->sigcont;

ok(wait_value($B, "bp$n", value_of($n), 30), 'the last value reaches B');
my $same = 0;
for my $i (1 .. $n) {
    my $v = $B->mem_get("bp$i");
    $same++ if defined $v && $v eq value_of($i);
}
is($same, $n, 'every value on B is byte for byte what A stored');

my $a = $A->repl_stats;
my $b = $B->repl_stats;
is($a->{reconnects}, $before->{reconnects}, 'A: the link never dropped');
is($a->{full_syncs}, $before->{full_syncs}, 'A: no resync');
is($a->{buffer_overflows}, 0, 'A: no overflow');
unlike($b->{last_error} // '', qr/protocol error/, 'B: no protocol error');
is($b->{link_state}, 'linked', 'B: still linked');
ok(wait_until(sub { ($A->repl_stats->{buffer_bytes} // 1) == 0 }, 10),
   'A: buffer drained');

done_testing();
