#!/usr/bin/perl
# A pair with -e on both nodes (issue #21, doc/replication.txt
# "Restarting a pair"): a node stopped cleanly comes back with its data
# and its replication state, and catches up from its peer's backlog (a
# partial resync, never a full copy); a rolling restart under traffic
# has no false miss; both nodes stopped and started again, in either
# order, keep every session; SIGKILL, and a missing, stale, foreign or
# damaged memory file, fall back to a full copy with a log line saying
# why.  Real processes, real restarts.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use MemcTest;
use MemcPair;
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(time sleep);

require_pair_build();
my $dir = tmp_dir();

sub pair {
    my (%o) = @_;
    my $tag = $o{tag};
    return start_pair(
        linked => 1,
        o => ['repl_initial_sync_timeout=60', @{ $o{o} || [] }],
        args_a => ['-e', "$dir/$tag-a.mem"],
        args_b => ['-e', "$dir/$tag-b.mem"]);
}

sub digest {
    my ($n) = @_;
    my $s = $n->stats_fresh('replication digest') or return '';
    return "$s->{digest}/$s->{digest_items}";
}

sub same_digest {
    my ($a, $b, $what) = @_;
    my ($da, $db);
    my $ok = wait_until(sub {
        $da = digest($a);
        $db = digest($b);
        return $da ne '' && $da eq $db;
    }, 20);
    ok($ok, "$what: equal digests") or diag("A $da, B $db");
}

# stop cleanly with $sig, then start again and wait for the client port
sub bounce {
    my ($n, $sig, $between) = @_;
    is($n->stop($sig), 0, "$n->{name}: clean exit on SIG$sig");
    $between->() if $between;
    $n->spawn;
    ok($n->wait_ready(30), "$n->{name} serves again")
        or diag($n->log_tail(20));
}

sub fill {
    my ($n, $prefix, $count, $val) = @_;
    my %w;
    for my $i (1 .. $count) {
        my $k = "$prefix$i";
        $n->mem_set($k, "$val$i", 0, 0) eq "STORED\r\n" or die "set $k";
        $w{$k} = "$val$i";
    }
    return \%w;
}

# --- one node restarts; the other takes writes meanwhile ----------------
{
    my ($a, $b) = pair(tag => 'one');
    my $before = fill($a, 'a', 200, 'x');
    %$before = (%$before, %{ fill($b, 'b', 200, 'y') });
    ok(wait_until(sub { has_all($a, $before) && has_all($b, $before) }, 20),
       'both hold the first writes');
    my $run = stat_of($a, 'run_id');
    my $fulls = stat_of($b, 'full_syncs');
    my %missed;
    bounce($a, 'TERM', sub {
        %missed = %{ fill($b, 'm', 50, 'z') };
        is($b->cmd('delete a1'), "DELETED\r\n", 'a delete while A is away');
    });
    my $st = $a->repl_stats;
    is($st->{start_memory_file}, 'warm', 'A: restored from its memory file');
    is($st->{start_mode}, 'partial', 'A: caught up by a partial resync');
    is($st->{start_catchup_records}, 51,
       'A: the catch-up carried exactly the 50 sets and the delete');
    is($st->{run_id}, $run, 'A: the same run id');
    is(stat_of($b, 'full_syncs'), $fulls, 'B sent no full copy');
    # the gate waited for the catch-up: everything is there at once
    delete $before->{a1};
    ok(has_all($a, { %$before, %missed, a1 => undef }),
       'A answers with everything as soon as its port is open')
        or diag(missing($a, { %$before, %missed, a1 => undef }));
    like($a->log_text, qr/restored run id/, 'A logs what it restored');
    same_digest($a, $b, 'after A restarted');

    # a larger catch-up, read the moment the port opens: the gate holds
    # the port until the last of it is applied
    is($a->stop('TERM'), 0, 'A stopped again');
    preload_noreply($b, 100_000, sub { ("bulk$_[0]", "v$_[0]") });
    $a->spawn;
    my $first = '';
    ok(wait_until(sub {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $a->port) or return 0;
        print $s "get bulk100000\r\n";
        $first = <$s> // '';
        return 1;
    }, 30), 'A opened its port');
    like($first, qr/^VALUE bulk100000 /,
         'the first read on A finds the last write of a 100,000-record '
         . 'catch-up');
    ok($a->wait_ready(10), 'A serves');
    is(stat_of($a, 'start_catchup_records'), 100_000,
       'A: the catch-up carried the 100,000 sets');

    # the same from B's side, with memcached's signal
    $fulls = stat_of($a, 'full_syncs');
    bounce($b, 'USR1', sub { fill($a, 'n', 20, 'w') });
    is(stat_of($b, 'start_mode'), 'partial', 'B: partial after SIGUSR1');
    is(stat_of($b, 'start_catchup_records'), 20, 'B: caught up 20 records');
    is(stat_of($a, 'full_syncs'), $fulls, 'A sent no full copy');
    same_digest($a, $b, 'after B restarted');

    # a write acknowledged just before the stop is not lost for B
    is($a->mem_set('last', 'word', 0, 0), "STORED\r\n", 'a last write');
    is($a->stop('TERM'), 0, 'A stops right after it');
    ok(wait_value($b, 'last', 'word', 10), 'B has it while A is away');

    # SIGKILL: the next start is cold, and takes a full copy
    $a->spawn;
    ok($a->wait_ready(30), 'A back');
    $fulls = stat_of($b, 'full_syncs');
    $a->restart;
    is(stat_of($a, 'start_memory_file'), 'cold', 'after SIGKILL: cold');
    is(stat_of($a, 'start_mode'), 'full', 'after SIGKILL: a full copy');
    like($a->log_text, qr/no clean-shutdown marker/, '... and A says why');
    is(stat_of($b, 'full_syncs'), $fulls + 1, 'B sent one full copy');
    ok(has_all($a, \%missed), 'A has the data from the copy');
    $_->stop('INT') for $a, $b;
}

# --- fallbacks to a full copy ----------------------------------------------
{
    my ($a, $b) = pair(tag => 'fb', o => ['repl_tombstone_ttl=3']);
    fill($b, 'k', 20, 'v');
    my $fulls = stat_of($b, 'full_syncs');
    my @cases = (
        ['a missing file', sub { unlink "$dir/fb-a.mem" },
         qr/the marker is there but the file is not/],
        ['a truncated file', sub {
             truncate("$dir/fb-a.mem", (-s "$dir/fb-a.mem") - 7) },
         qr/not the one its marker recorded/],
        ['a file of another format', sub {
             open my $fh, '+<', "$dir/fb-a.mem" or die;
             seek $fh, 8, 0;
             print $fh pack('V', 2);
             close $fh },
         qr/written by another version \(format\)/],
        ['a stale file', sub { sleep 4.5 },
         qr/stale: saved \d+ s ago, longer than repl_tombstone_ttl/],
    );
    for my $c (@cases) {
        my ($what, $damage, $why) = @$c;
        bounce($a, 'TERM', $damage);
        is(stat_of($a, 'start_mode'), 'full', "$what: a full copy");
        like($a->log_text, $why, "$what: the log says why");
        is(stat_of($b, 'full_syncs'), ++$fulls, "$what: B sent it");
        ok(has_all($a, { k1 => 'v1', k20 => 'v20' }), "$what: data back");
    }
    # another pair: the same node, but -x spelt otherwise
    is($a->stop('TERM'), 0, 'A stops');
    my @args = @{ $a->{args} };
    s/^127\.0\.0\.1:/localhost:/ for @args;
    local $a->{args} = \@args;
    $a->spawn;
    ok($a->wait_ready(30), 'A back with another -x');
    is(stat_of($a, 'start_mode'), 'full', 'another pair: a full copy');
    like($a->log_text, qr/from another pair \(saved with -x 127/,
         'another pair: the log says why');
    $_->stop('INT') for $a, $b;
}

# --- both nodes stopped, then started in either order --------------------
for my $order ('B first', 'A first', 'together') {
    (my $tag = $order) =~ s/ /-/;
    my ($a, $b) = pair(tag => $tag);
    my $sess = fill($a, 'sa', 300, 'p');
    %$sess = (%$sess, %{ fill($b, 'sb', 300, 'q') });
    ok(wait_until(sub { has_all($a, $sess) && has_all($b, $sess) }, 20),
       "$order: both hold the sessions");
    is($a->stop('TERM'), 0, "$order: A stopped");
    %$sess = (%$sess, %{ fill($b, 'late', 30, 'r') });
    is($b->stop('TERM'), 0, "$order: B stopped");
    my @first = $order eq 'A first' ? ($a, $b) : ($b, $a);
    $first[0]->spawn;
    sleep 0.5 unless $order eq 'together';
    $first[1]->spawn;
    for my $n ($a, $b) {
        ok($n->wait_ready(30), "$order: $n->{name} serves")
            or diag($n->log_tail(20));
    }
    ok(has_all($a, $sess), "$order: A has every session")
        or diag(missing($a, $sess));
    ok(has_all($b, $sess), "$order: B has every session")
        or diag(missing($b, $sess));
    is(stat_of($a, 'full_syncs') + stat_of($b, 'full_syncs'), 0,
       "$order: no full copy");
    same_digest($a, $b, $order);
    $_->stop('INT') for $a, $b;
}

# --- a rolling restart under steady traffic --------------------------------
# A child writes and reads on both nodes without a pause; a read of a
# key acknowledged more than 0.3 s earlier must hit, on whichever node
# answers.  Each node is restarted in turn.
{
    my ($a, $b) = pair(tag => 'roll');
    my $out = "$dir/traffic.out";
    my $stop = "$dir/traffic.stop";
    unlink $stop;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        traffic([$a->port, $b->port], $stop, $out);
        POSIX::_exit(0);
    }
    my $t0 = time;
    sleep 1;
    for my $n ($a, $b) {
        my $t = time;
        bounce($n, 'TERM', sub { sleep 0.5 });
        note(sprintf "%s: down and back in %.2f s", $n->name, time - $t);
        sleep 1;
    }
    open my $fh, '>', $stop or die;
    close $fh;
    waitpid($pid, 0);
    my %r = map { /^(\w+) (\d+)/ ? ($1, $2) : () }
            split /\n/, MemcTest::slurp($out);
    ok(($r{writes} // 0) > 100 && ($r{reads} // 0) > 100,
       'traffic ran: ' . ($r{writes} // 0) . ' writes, '
       . ($r{reads} // 0) . ' reads');
    is($r{misses}, 0, 'no false miss during the rolling restart')
        or diag(MemcTest::slurp($out));
    is(stat_of($a, 'start_mode') . '/' . stat_of($b, 'start_mode'),
       'partial/partial', 'both came back by a partial resync');
    is(stat_of($a, 'full_syncs') + stat_of($b, 'full_syncs'), 0,
       'no full copy');
    same_digest($a, $b, 'after the rolling restart');
    $_->stop('INT') for $a, $b;
}

# writes to a random node that answers, reads of keys written more than
# 0.3 s ago; prints counts to $out when $stop appears
sub traffic {
    my ($ports, $stop, $out) = @_;
    my (%sock, @acked);
    my ($writes, $reads, $misses) = (0, 0, 0);
    my @miss_keys;
    my $conn = sub {
        my ($p) = @_;
        return $sock{$p} if $sock{$p};
        $sock{$p} = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                          PeerPort => $p, Timeout => 1);
        return $sock{$p};
    };
    my $ask = sub {
        my ($p, $req) = @_;
        my $s = $conn->($p) or return undef;
        my $r = eval {
            local $SIG{ALRM} = sub { die "timeout\n" };
            alarm 3;
            print $s $req;
            my $l = <$s>;
            my $all = $l;
            if (defined $l && $l =~ /^VALUE \S+ \d+ (\d+)/) {
                read($s, my $d, $1 + 2);
                $all .= $d . <$s>;
            }
            alarm 0;
            $all;
        };
        alarm 0;
        if (!defined $r) {
            delete $sock{$p};
        }
        return $r;
    };
    my $i = 0;
    until (-e $stop) {
        my $p = $ports->[rand 2];
        $i++;
        my $k = 'roll' . ($i % 2000);
        my $v = "v$i";
        my $r = $ask->($p, "set $k 0 0 " . length($v) . "\r\n$v\r\n");
        if (defined $r && $r eq "STORED\r\n") {
            $writes++;
            push @acked, [$k, time];
        }
        next unless @acked;
        my $pick = $acked[rand @acked];
        next if time - $pick->[1] < 0.3;
        my $q = $ports->[rand 2];
        my $g = $ask->($q, "get $pick->[0]\r\n");
        next unless defined $g;
        $reads++;
        if ($g eq "END\r\n") {
            $misses++;
            push @miss_keys, "$pick->[0] on $q";
        }
    }
    open my $fh, '>', $out or die;
    print $fh "writes $writes\nreads $reads\nmisses $misses\n";
    print $fh "missed @miss_keys[0 .. ($#miss_keys < 9 ? $#miss_keys : 9)]\n";
    close $fh;
}

done_testing();
