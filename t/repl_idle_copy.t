#!/usr/bin/perl
# A full copy runs at idle CPU priority (doc/replication.txt, "Full
# resync", -o repl_idle_copy).  The copy is held in the middle by stopping
# the receiver, and the kernel's view of each thread is read from
# /proc/PID/task/TID/stat (field 41, the scheduling policy):
#  - default: while A sends a copy, exactly one of A's threads is
#    SCHED_IDLE and "stats replication" says copy_priority idle; B's
#    receiving thread is SCHED_IDLE too;
#  - after the copy both nodes are back to normal (no SCHED_IDLE thread,
#    copy_priority normal) and B holds every item;
#  - with repl_idle_copy=0 no thread of A is ever SCHED_IDLE during a copy;
#  - repl_idle_copy takes only 0 or 1.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcTest;
use MemcPair;

require_pair_build();
plan skip_all => 'needs /proc/PID/task' unless -d "/proc/$$/task";

use constant SCHED_IDLE => 5;
# x 1 KB.  Far more than the socket buffers can hold (a receiver's may grow
# to net.ipv4.tcp_rmem's maximum, 32 MB here): a stopped B must hold A's
# walk back, or the copy can finish behind B's back before a check.
my $N = 150_000;
my $V = 'v' x 1000;

# policy of each thread of $pid: { tid => policy }
sub policies {
    my ($pid) = @_;
    my %p;
    opendir(my $d, "/proc/$pid/task") or return \%p;
    for my $tid (grep { /^\d+$/ } readdir $d) {
        my $st = MemcTest::slurp("/proc/$pid/task/$tid/stat");
        $st =~ s/^.*\)\s+//s or next;       # past "pid (comm)"
        my @f = split /\s+/, $st;
        $p{$tid} = $f[41 - 3];              # field 41, counting from 1
    }
    closedir $d;
    return \%p;
}

sub idle_threads {
    my ($pid) = @_;
    my $p = policies($pid);
    return scalar grep { $_ == SCHED_IDLE } values %$p;
}

sub preload {
    my ($n) = @_;
    like(preload_noreply($n, $N, sub { ("k$_[0]", $V) }), qr/^VERSION /,
         "$N sets sent to A");
}

# Restart B empty and stop it once A is in the middle of sending the copy
# (and, when $b_idle, once B's receiving thread shows as SCHED_IDLE).  A
# copy of $N items takes a fraction of a second, shorter than a poll
# interval, so B is let run in steps of 10 ms and each step ends stopped:
# the check that succeeds first sees B held early in the copy.
sub hold_copy {
    my ($A, $B, $b_idle) = @_;
    $B->kill9;
    $B->restart(nowait => 1);
    $B->sigstop;
    my $deadline = time + 20;
    my $held = 0;
    while (time < $deadline) {
        last unless $B->is_alive;
        $B->sigcont;
        select(undef, undef, undef, 0.01);
        $B->sigstop;
        my $r = $A->repl_stats or next;
        next unless ($r->{sync_in_progress} // 0) == 1;
        next if $b_idle && idle_threads($B->pid) != 1;
        $held = 1;
        last;
    }
    ok($held, 'B stopped while A sends it a full copy')
        or diag($B->log_tail(10));
    $B->sigcont unless $held || !$B->is_alive;
    return $held;
}

{
    my ($A, $B) = start_pair(linked => 1, args => ['-m', '512'],
                             repl_timeout => 30);
    preload($A);
    my $r0 = $A->repl_stats;
    is($r0 && $r0->{copy_priority}, 'normal',
       'linked and idle: copy_priority normal');
    is(idle_threads($A->pid), 0, 'linked and idle: no SCHED_IDLE thread');

    if (hold_copy($A, $B, 1)) {
        my $r = $A->repl_stats;
        is($r && $r->{sync_in_progress}, 1, 'A is still sending the copy');
        is($r && $r->{copy_priority}, 'idle', 'A: copy_priority idle');
        is(idle_threads($A->pid), 1,
           "A: one thread is SCHED_IDLE while it sends");
        is(idle_threads($B->pid), 1,
           "B: one thread is SCHED_IDLE while it receives");
        $B->sigcont;
    }
    ok(wait_linked($A, $B, 30), 'the copy completes');
    ok(wait_until(sub {
        my $r = $A->repl_stats;
        return $r && $r->{copy_priority} eq 'normal'
            && idle_threads($A->pid) == 0 && idle_threads($B->pid) == 0;
    }, 10), 'both nodes back to normal priority after the copy');
    my ($ca, $cb) = map { $_->stats_fresh->{curr_items} } $A, $B;
    is($cb, $ca, "B holds A's $ca items");
    cmp_ok($ca, '>=', $N, "A holds at least the $N preloaded items");
    like(stat_of($A, 'copy_starved'), qr/^\d+$/, 'copy_starved is shown');
    like($A->log_text, qr/full copy sent, \d+ items/, 'A logged the copy');
}

{
    my ($A, $B) = start_pair(linked => 1, args => ['-m', '512'],
                             repl_timeout => 30, o => ['repl_idle_copy=0']);
    preload($A);
    if (hold_copy($A, $B, 0)) {
        my $r = $A->repl_stats;
        is($r && $r->{copy_priority}, 'normal',
           'repl_idle_copy=0: copy_priority normal during the copy');
        is(idle_threads($A->pid), 0,
           'repl_idle_copy=0: no SCHED_IDLE thread on A during the copy');
        $B->sigcont;
    }
    ok(wait_linked($A, $B, 30), 'repl_idle_copy=0: the copy completes');
    is($B->stats_fresh->{curr_items}, $A->stats_fresh->{curr_items},
       'repl_idle_copy=0: B holds all of A');
}

# Not root after start (-u nobody): a thread may enter SCHED_IDLE but,
# without CAP_SYS_NICE or an RLIMIT_NICE of 20, never leave it.  Either
# the node can return (and does), or it says so and copies at normal
# priority; no thread may stay idle after the copy.
SKIP: {
    skip 'needs root and a "nobody" user', 5
        unless $> == 0 && defined getpwnam('nobody');
    my ($A, $B) = start_pair(linked => 1, args => ['-m', '512', '-u',
                                                   'nobody']);
    preload($A);
    $B->kill9;
    $B->restart(nowait => 1);
    ok(wait_linked($A, $B, 30), '-u nobody: the copy completes');
    ok(wait_until(sub {
        idle_threads($A->pid) == 0 && idle_threads($B->pid) == 0
    }, 10), '-u nobody: no SCHED_IDLE thread left after the copy');
    my $said = $A->log_text =~ /cannot return from idle CPU priority/;
    is(stat_of($A, 'copy_priority'), 'normal',
       '-u nobody: copy_priority normal after the copy ('
       . ($said ? 'idle copies not permitted here, and logged'
                : 'idle copies permitted') . ')');
    is($B->stats_fresh->{curr_items}, $A->stats_fresh->{curr_items},
       '-u nobody: B holds all of A');
}

# A saturated CPU: both nodes and two busy loops share CPU 0.  An idle
# class thread gets a sliver of it, so the copy falls back to normal
# priority (copy_starved) and completes instead of stalling.
SKIP: {
    skip 'taskset not found', 6 unless grep { -x "$_/taskset" }
        split /:/, $ENV{PATH};
    my ($A, $B) = start_pair(linked => 1, args => ['-m', '512'],
                             repl_timeout => 30);
    preload($A);
    my @hogs;
    for (1 .. 2) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            exec('taskset', '-c', '0', $^X, '-e', '1 while 1') or exit 1;
        }
        MemcTest::adopt_pid($pid);
        push @hogs, $pid;
    }
    my $pin = sub {
        system("taskset -a -p -c 0 $_[0] >/dev/null") == 0;
    };
    ok($pin->($A->pid), 'A pinned to CPU 0 with two busy loops');
    $B->kill9;
    $B->restart(nowait => 1);
    $pin->($B->pid);
    my $t0 = time;
    my $done = wait_linked($A, $B, 60);
    ok($done, sprintf 'the copy completes on a saturated CPU (%.1f s)',
       time - $t0) or diag("A:\n" . $A->log_tail(8) . "\nB:\n"
                           . $B->log_tail(8));
    kill 'KILL', @hogs;
    for (@hogs) { waitpid($_, 0); MemcTest::disown_pid($_); }
    my $starved = (stat_of($A, 'copy_starved') // 0)
                + (stat_of($B, 'copy_starved') // 0);
    cmp_ok($starved, '>=', 1, 'the copy left idle priority (copy_starved '
           . "$starved)");
    like($A->log_text . $B->log_text, qr/starved of CPU/,
         'and said so in the log');
    is($B->stats_fresh->{curr_items}, $A->stats_fresh->{curr_items},
       'B holds all of A');
}

must_refuse('repl_idle_copy=2', ['repl_idle_copy=2'],
            qr/repl_idle_copy takes 0 or 1/);
must_refuse('repl_idle_copy=yes', ['repl_idle_copy=yes'],
            qr/repl_idle_copy takes 0 or 1/);

done_testing();
