#!/usr/bin/perl
# Full resync of 100,000 items (doc/replication.txt, "Full resync"):
# A holds them (preloaded with pipelined noreply sets while B is down),
# B restarts and copies them while a client keeps reading from A and
# the test keeps writing to A.  Afterwards B holds every item (same
# curr_items; 1,000 random keys byte-exact), the writes made during the
# copy, and A never failed a read.  last_sync_ms and items/s are shown.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Select;
use POSIX ();
use Socket qw(AF_UNIX SOCK_STREAM PF_UNSPEC);
use Time::HiRes qw(time sleep);
use MemcTest;
use MemcPair;

require_pair_build();

my $N = 100_000;
my ($A, $B) = start_pair(linked => 1, args => ['-m', '256']);

# deterministic values of 1..300 bytes, every byte value included
my $PAT = join '', map { chr(($_ * 131 + 7) % 256) } 0 .. 2047;
sub val {
    my ($i) = @_;
    return substr($PAT, ($i * 7) % 1024, 1 + ($i * 37) % 300) . ":$i";
}

$B->kill9;
{
    my $t0 = time;
    like(preload_noreply($A, $N, sub { ("s$_[0]", val($_[0]), $_[0] % 65536) }),
         qr/^VERSION /, "$N sets sent to A");
    my $h = $A->stats_fresh;
    is($h && $h->{curr_items}, $N, "A holds $N items");
    is($h && $h->{evictions}, 0, 'no evictions on A');
    diag(sprintf 'preload: %.2fs', time - $t0);
}

# a reader of A in a child process until told to stop; it reports
# "ok <reads> fail <failures> <first failure>"
socketpair(my $ctl, my $child_end, AF_UNIX, SOCK_STREAM, PF_UNSPEC)
    or die "socketpair: $!";
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    close $ctl;
    my ($ok, $fail, $first) = (0, 0, '');
    my $sel = IO::Select->new($child_end);
    my $s;
    while (!$sel->can_read(0)) {
        my $i = 1 + int rand $N;
        my $r = eval {
            $s ||= $A->new_sock(timeout => 2);
            local $MemcTest::IO_TIMEOUT = 5;
            my $v = $A->mem_get("s$i", $s);
            defined $v && $v eq val($i) ? 1 : 'wrong or missing value';
        } // do { undef $s; "error: $@" };
        if ($r eq '1') {
            $ok++;
        } else {
            $fail++;
            $first ||= "s$i: $r";
        }
    }
    $first =~ s/\s+/ /g;
    MemcTest::_write_all($child_end, "ok $ok fail $fail $first\n", 5);
    POSIX::_exit(0);
}
close $child_end;
MemcTest::adopt_pid($pid);

# restart B: it copies while the reader reads and we write
my $t0 = time;
$B->restart(nowait => 1);
my %live;
my $j = 0;
my $ready = wait_until(sub {
    $j++;
    $A->mem_set("live$j", "during the copy $j");
    $live{"live$j"} = "during the copy $j";
    return -1 unless $B->is_alive;
    return $B->_answers_version;
}, 60);
my $took = time - $t0;
ok($ready && $ready > 0, sprintf('B opened its client port after %.2fs',
                                  $took)) or diag($B->log_tail(20));
my $hb = $B->stats_fresh;
cmp_ok($hb && $hb->{curr_items}, '>=', $N,
       "at its first answer B already holds the $N items");

# stop the reader
MemcTest::_write_all($ctl, "stop\n", 5);
my $rep = MemcTest::_read_line($ctl, 20) // '';
waitpid($pid, 0);
MemcTest::disown_pid($pid);
my ($reads, $fails, $why) = $rep =~ /^ok (\d+) fail (\d+) ?(.*)$/;
cmp_ok($reads // 0, '>', 0, 'the reader read from A during the copy');
is($fails, 0, 'no read on A failed during the copy') or diag($why);
diag("reads on A during the copy: " . ($reads // '?'));

ok(wait_linked($A, $B, 10), 'linked');
my $want_items = $N + keys %live;
my ($ca, $cb);
ok(wait_until(sub {
    my ($ha, $hb2) = ($A->stats_fresh, $B->stats_fresh);
    ($ca, $cb) = ($ha && $ha->{curr_items}, $hb2 && $hb2->{curr_items});
    return defined $ca && defined $cb && $ca == $want_items
        && $cb == $want_items;
}, 10), "curr_items equal on both: $want_items")
    or diag('A ' . ($ca // '?') . ', B ' . ($cb // '?'));

# 1,000 random keys, byte-exact, 100 per multi-get
{
    my @bad;
    my %pick;
    $pick{1 + int rand $N} = 1 while keys %pick < 1000;
    my @ids = sort { $a <=> $b } keys %pick;
    my $s = $B->new_sock;
    while (my @batch = splice @ids, 0, 100) {
        $B->send('get ' . join(' ', map { "s$_" } @batch) . "\r\n", $s);
        my ($raw, $items, $err) = $B->read_values($s, 10);
        my %got = map { ($_->{key} => $_) } @{ $items || [] };
        for my $i (@batch) {
            my $it = $got{"s$i"};
            push @bad, "s$i: " . (!$it ? 'missing'
                : $it->{value} ne val($i) ? 'value differs'
                : $it->{flags} != $i % 65536 ? "flags $it->{flags}" : ())
                if !$it || $it->{value} ne val($i)
                   || $it->{flags} != $i % 65536;
        }
    }
    is(scalar(@bad), 0, '1000 random keys byte-exact on B (value, flags)')
        or diag(join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]);
    my @miss = grep {
        my $it = $B->item($_);
        !$it || !ref $it || $it->{value} ne $live{$_};
    } sort keys %live;
    is(scalar(@miss), 0, scalar(keys %live) . ' writes made on A during '
       . 'the copy are on B') or diag("@miss[0 .. ($#miss < 9 ? $#miss : 9)]");
}

# what the nodes say about the copy
{
    my ($sa, $sb) = ($A->repl_stats, $B->repl_stats);
    for my $x (['A', $sa], ['B', $sb]) {
        my ($n, $s) = @$x;
        next unless $s;
        my $ms = $s->{last_sync_ms} // 0;
        diag(sprintf '%s: last_sync_ms %s, last_sync_items %s, '
             . 'last_sync_bytes %s, full_syncs %s%s', $n, $ms,
             $s->{last_sync_items} // '?', $s->{last_sync_bytes} // '?',
             $s->{full_syncs} // '?',
             $ms > 0 ? sprintf(', %.0f items/s',
                               ($s->{last_sync_items} // 0) * 1000 / $ms)
                     : '');
    }
    cmp_ok($sa && $sa->{last_sync_items}, '>=', $N,
           "A's last full copy sent at least $N items");
    diag(sprintf 'B: restart to open port %.2fs, %.0f items/s', $took,
         $N / ($took || 1));
}

done_testing();
