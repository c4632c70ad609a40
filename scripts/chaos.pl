#!/usr/bin/perl
# Chaos test of pair replication (doc/replication.txt, "Guarantees").
#
# Starts a pair whose replication links run through TcpRelays, runs a
# paced mixed load (ms/set/delete/gets) against both nodes from a few
# forked clients, and repeats a cycle: fault, load, heal, wait until
# linked, barrier, steady load.  Faults, one per cycle, chosen by --seed:
# kill -9 of a node then restart, SIGSTOP of a node past repl_timeout
# then SIGCONT, the link cut through the relays (close or blackhole).
#
# Every client logs what it sent and what it got.  At the end (load
# stopped, link healed) the script checks:
#   - both nodes report the same `stats replication digest`;
#   - every key reads the same (value, flags, cas) on both nodes;
#   - no acknowledged write is lost unless its node was kill -9'd after
#     the ack and before a barrier proved the peer had it; losses within
#     100 ms of the kill are counted as "in flight";
#   - after every cycle's barriers, both nodes hold what either node
#     acknowledged before its barrier (or a newer version), read from a
#     snapshot of the whole key space: a loss is seen even if a later
#     write of the key would hide it by the end;
#   - values are never corrupted, a value keeps one version, and a node
#     never serves an older version of a key than it served or
#     acknowledged before (same process);
#   - no node exits on its own, relinks and barriers meet their deadlines.
#
# A barrier writes a marker on one node and waits until the peer reads
# it: the stream is ordered, so the peer then has every write the node
# acknowledged before the marker.
#
# Versions are the CAS values (doc/items.txt): (wall-clock ms << 20) |
# counter | node id.  ms returns the exact version (c flag); for set and
# delete, the send and ack times bound it, so "superseded" is decided by
# versions, never by the order the test happened to see.
#
# usage: scripts/chaos.pl [--cycles N] [--seconds-per-cycle S] [--seed N]
#        [--quiet] [--clients N] [--rate OPS] [--keys N]
#        [--repl-timeout S] [--backlog MB] [--faults kill,stop,cut]
#        [--keep-logs DIR]
# --faults may also name cutkill (not in the default set): the link is
# cut, then the node is killed before the restore, so that what it took
# during the cut is lost for good: the accounting of losses that a kill
# explains is exercised too.
# MEMCACHED_BIN names the server (default: ../memcached next to this
# script).  Exit status 0 when every check passed, 1 otherwise.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib";

BEGIN {
    $ENV{MEMCACHED_BIN} ||= "$FindBin::Bin/../memcached";
    # our own deadline replaces MemcTest's per-file alarm (set below)
    $ENV{MEMCTEST_TIMEOUT} ||= 86400;
}

use File::Copy ();
use File::Temp ();
use Getopt::Long qw(GetOptions);
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);
use MemcTest ();
use MemcPair;

my %O = (
    cycles            => 100,
    seconds_per_cycle => 4,
    seed              => $ENV{CHAOS_SEED},
    quiet             => 0,
    clients           => 4,
    rate              => 250,       # ops per second per client
    keys              => 2000,
    repl_timeout      => 2,
    backlog           => 1,         # MB: small, so long cuts resync fully
    faults            => 'kill,stop,cut',
    op_timeout        => 0.5,
    keep_logs         => undef,
);
GetOptions(
    'cycles=i'            => \$O{cycles},
    'seconds-per-cycle=f' => \$O{seconds_per_cycle},
    'seed=i'              => \$O{seed},
    'quiet'               => \$O{quiet},
    'clients=i'           => \$O{clients},
    'rate=f'              => \$O{rate},
    'keys=i'              => \$O{keys},
    'repl-timeout=i'      => \$O{repl_timeout},
    'backlog=i'           => \$O{backlog},
    'faults=s'            => \$O{faults},
    'op-timeout=f'        => \$O{op_timeout},
    'keep-logs=s'         => \$O{keep_logs},
    'help'                => sub { usage(0) },
) or usage(2);
usage(2) if @ARGV || $O{cycles} < 1 || $O{clients} < 1 || $O{keys} < 10
    || $O{rate} <= 0 || $O{repl_timeout} < 1 || $O{backlog} < 1;
$O{seed} //= (int(time * 1000) ^ ($$ << 8)) % 2_000_000_000;

sub usage {
    my ($rc) = @_;
    open my $fh, '<', __FILE__ or exit $rc;
    while (<$fh>) {
        last if /^use strict/;
        print STDERR $1, "\n" if /^# ?(.*)$/ && $. > 1;
    }
    exit $rc;
}

my @FAULTS;
for my $f (split /,/, $O{faults}) {
    push @FAULTS, qw(kill_A kill_B) if $f eq 'kill';
    push @FAULTS, qw(stop_A stop_B) if $f eq 'stop';
    push @FAULTS, qw(cut_close cut_blackhole) if $f eq 'cut';
    push @FAULTS, qw(cutkill_A cutkill_B) if $f eq 'cutkill';
}
die "chaos: --faults takes kill, stop, cut and cutkill\n" unless @FAULTS;

my $T0 = time;
my $TMO = $O{repl_timeout};
my $INFLIGHT = 0.100;       # s: an ack this close to a kill is in flight
my $SLACK_MS = 5;           # ms of clock slack on version bounds
my $MARK = 'chaos:mark:';   # barrier keys; not part of the key space
my @fail;                   # reasons the run fails
my @timeline;               # [time, text]: faults, heals, failures
my (@kills, @barriers);     # {node, t0, t1} / {node, t}
my @snapshots;              # {tag, tb => {A, B}, A|B => {t0, t1, data}}
my %nfault;

$| = 1;
srand($O{seed});

# a backstop only: every wait below has its own deadline
my $budget = 300 + $O{cycles} * ($O{seconds_per_cycle} + $TMO + 15);
$SIG{ALRM} = sub {
    print "chaos: FAIL global deadline (${budget}s) passed; seed=$O{seed}\n";
    exit 1;
};
alarm $budget;

sub say_ {
    my ($msg) = @_;
    printf "%7.2f %s\n", time - $T0, $msg unless $O{quiet};
}

sub event {
    my ($msg) = @_;
    push @timeline, [time, $msg];
    say_($msg);
}

sub failure {
    my ($msg) = @_;
    push @fail, $msg;
    push @timeline, [time, "FAIL: $msg"];
    printf "%7.2f FAIL: %s\n", time - $T0, $msg;
}

sub repro {
    my @a = ('--seed', $O{seed}, '--cycles', $O{cycles},
             '--seconds-per-cycle', $O{seconds_per_cycle},
             '--clients', $O{clients}, '--rate', $O{rate},
             '--keys', $O{keys}, '--repl-timeout', $TMO,
             '--backlog', $O{backlog}, '--faults', $O{faults});
    return "MEMCACHED_BIN=$ENV{MEMCACHED_BIN} $0 @a";
}

# ---------------------------------------------------------------------------
# the pair

my $bin = MemcTest::memc_bin();
die "chaos: $bin is not executable\n" unless -x $bin;
{
    my (undef, $help) = MemcTest::run_cmd([$bin, '-h'], timeout => 10);
    die "chaos: $bin has no pair replication (no --peer in -h)\n"
        unless ($help // '') =~ /--peer/;
}

print "chaos: seed=$O{seed} cycles=$O{cycles} seconds-per-cycle="
    . "$O{seconds_per_cycle} clients=$O{clients} rate=$O{rate}/s keys="
    . "$O{keys} repl_timeout=$TMO backlog=$O{backlog}MB faults=$O{faults}\n"
    unless $O{quiet};

my ($A, $B) = start_pair(relay => 1, repl_timeout => $TMO,
                         o => ["repl_backlog_size=$O{backlog}"],
                         linked => 1, start_timeout => 30);
my %NODE = (A => $A, B => $B);
my %PEER = (A => $B, B => $A);
my %PORT = (A => $A->port, B => $B->port);
event("pair up: A client $PORT{A} pid $A->{pid}, B client $PORT{B} pid "
      . "$B->{pid}");

# ---------------------------------------------------------------------------
# load clients (forked): each logs one line per operation to its file
#
#   S node key id ts ta version     ms acknowledged (HD c<version>)
#   T node key id ts ta -           set acknowledged (STORED)
#   D node key - ts ta -            delete acknowledged (DELETED)
#   N node key - ts ta -            delete answered NOT_FOUND
#   U node key id|- ts tf op        no answer (error, timeout): may or
#                                   may not have been applied
#   R node key id|- ts ta cas|-     gets: hit or miss
#   X node key - ts ta reply        an answer we do not expect
#
# A value is "key/client/seq/len/" then len x's: it names its write.

my $LOGDIR = MemcTest::tmp_dir();
my @clients;        # {pid, ctl, log}

sub start_clients {
    for my $c (1 .. $O{clients}) {
        pipe(my $rd, my $wr) or die "pipe: $!";
        my $log = "$LOGDIR/client$c.log";
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            close $wr;
            close $_->{ctl} for @clients;       # the earlier clients' pipes
            $SIG{ALRM} = 'DEFAULT';
            $SIG{$_} = sub { POSIX::_exit(1) } for qw(INT TERM);
            my $rc = eval { client_main($c, $rd, $log); 0 } // do {
                print STDERR "chaos: client $c: $@";
                1;
            };
            POSIX::_exit($rc);
        }
        close $rd;
        push @clients, { pid => $pid, ctl => $wr, log => $log, id => $c };
    }
}

# close every control pipe and wait (deadline) for the clients to exit
sub stop_clients {
    close $_->{ctl} for grep { $_->{ctl} } @clients;
    delete $_->{ctl} for @clients;
    my $deadline = time + 10;
    for my $c (@clients) {
        next unless $c->{pid};
        while (waitpid($c->{pid}, POSIX::WNOHANG()) == 0) {
            if (time > $deadline) {
                kill 'KILL', $c->{pid};
                waitpid($c->{pid}, 0);
                failure("client $c->{id} did not stop within 10 s");
                last;
            }
            sleep 0.02;
        }
        failure("client $c->{id} exited with status $?")
            if $? && $? != 9;
        delete $c->{pid};
    }
}

END {
    local ($?, $!);
    for my $c (@clients) {
        next unless $c->{pid};
        kill 'KILL', $c->{pid};
        waitpid($c->{pid}, 0);
    }
}

sub client_main {
    my ($cid, $ctl, $logfile) = @_;
    srand($O{seed} * 7919 + $cid);
    open my $log, '>', $logfile or die "$logfile: $!";
    my $sel = IO::Select->new($ctl);
    my $hot = int($O{keys} / 40) || 1;
    my (%sock, %down_until);
    my $seq = 0;
    my $next = time;
    my $step = 1 / $O{rate};
    my $tmo = $O{op_timeout};

    my $drop = sub {
        my ($n, $for) = @_;
        close delete $sock{$n} if $sock{$n};
        $down_until{$n} = time + $for;
    };
    while (1) {
        my $wait = $next - time;
        last if $sel->can_read($wait > 0 ? $wait : 0);    # EOF: stop
        $next += $step;
        $next = time if $next < time - 1;       # no burst after a stall
        my @up = grep { ($down_until{$_} // 0) <= time } qw(A B);
        if (!@up) {
            $next = time + 0.05;
            next;
        }
        my $n = $up[int rand @up];
        $sock{$n} ||= IO::Socket::INET->new(
            PeerAddr => '127.0.0.1', PeerPort => $PORT{$n},
            Proto => 'tcp', Timeout => $tmo);
        if (!$sock{$n}) {
            $drop->($n, 0.2);          # refused: killed, or gate closed
            next;
        }
        binmode $sock{$n};
        my $k = rand() < 0.3 ? int rand $hot : int rand $O{keys};
        my $key = sprintf 'k%05d', $k;
        my $r = rand;
        my ($op, $req, $id) = ('gets', "gets $key\r\n", '-');
        if ($r < 0.6) {
            $seq++;
            my $len = rand() < 0.02 ? 1000 + int rand 7000 : int rand 200;
            $id = "$cid/$seq";
            my $val = "$key/$id/$len/" . ('x' x $len);
            my $flags = $seq % 65536;
            if ($r < 0.4) {
                $op = 'ms';
                $req = "ms $key " . length($val) . " c F$flags\r\n$val\r\n";
            } else {
                $op = 'set';
                $req = "set $key $flags 0 " . length($val) . "\r\n$val\r\n";
            }
        } elsif ($r < 0.7) {
            $op = 'delete';
            $req = "delete $key\r\n";
        }
        my $ts = time;
        my $res = eval { client_op($sock{$n}, $op, $key, $req, $tmo) };
        my $ta = time;
        if (!$res) {
            print $log join("\t", 'U', $n, $key, $id, $ts, $ta, $op), "\n";
            $drop->($n, 0.3);
            next;
        }
        my ($kind, $x, $y) = @$res;
        if ($kind eq 'X') {
            $x =~ s/[\r\n\t]/ /g;
            print $log join("\t", 'X', $n, $key, $id, $ts, $ta, $x), "\n";
            $drop->($n, 0.1);
            next;
        }
        if ($kind eq 'R') {
            print $log join("\t", 'R', $n, $key, $x // '-', $ts, $ta,
                            $y // '-'), "\n";
            next;
        }
        print $log join("\t", $kind, $n, $key, $id, $ts, $ta, $x // '-'),
            "\n";
    }
    close $log or die "$logfile: $!";
}

# one request on a connection; dies (or returns undef) when there is no
# complete answer within $tmo.  Returns [kind, ...] as logged.
sub client_op {
    my ($s, $op, $key, $req, $tmo) = @_;
    MemcTest::_write_all($s, $req, $tmo);
    my $line = MemcTest::_read_line($s, $tmo);
    return undef unless defined $line;
    if ($op eq 'ms') {
        return ['S', $1] if $line =~ /\AHD c(\d+)\r\n\z/;
    } elsif ($op eq 'set') {
        return ['T'] if $line eq "STORED\r\n";
    } elsif ($op eq 'delete') {
        return ['D'] if $line eq "DELETED\r\n";
        return ['N'] if $line eq "NOT_FOUND\r\n";
    } else {
        return ['R'] if $line eq "END\r\n";
        if ($line =~ /\AVALUE \Q$key\E \d+ (\d+) (\d+)\r\n\z/) {
            my ($len, $cas) = ($1, $2);
            my $data = MemcTest::_read_bytes($s, $len + 2, $tmo);
            return undef unless defined $data;
            my $end = MemcTest::_read_line($s, $tmo);
            return undef unless defined $end;
            return ['X', "bad gets trailer: $line"]
                unless substr($data, $len) eq "\r\n" && $end eq "END\r\n";
            my $val = substr($data, 0, $len);
            return ['X', "bad value: " . MemcPair::esc($val)]
                unless $val =~ m{\A\Q$key\E/(\d+/\d+)/(\d+)/(x*)\z}
                       && length($3) == $2;
            return ['R', $1, $cas];
        }
    }
    return ['X', $line];
}

# ---------------------------------------------------------------------------
# faults and the cycle

# true (with a failure recorded) when a node we did not kill is gone
sub node_died {
    for my $name (qw(A B)) {
        my $n = $NODE{$name};
        next if $n->{chaos_down};
        next if $n->is_alive;
        failure("node $name exited on its own (status "
                . ($n->exit_status // '?') . "); log tail:\n"
                . $n->log_tail(30));
        $n->{chaos_down} = 1;
        return 1;
    }
    return 0;
}

# let the load run for $secs, watching that both nodes live
sub phase {
    my ($secs) = @_;
    return !MemcTest::wait_until(sub { node_died() }, $secs);
}

# kill -9 $name; it stays down until restart_node
sub kill_node {
    my ($name) = @_;
    my $n = $NODE{$name};
    my $t0 = time;
    $n->{chaos_down} = 1;
    $n->kill9;
    push @kills, { node => $name, t0 => $t0, t1 => time };
}

sub restart_node {
    my ($name) = @_;
    my $n = $NODE{$name};
    $n->restart(nowait => 1);
    delete $n->{chaos_down};
    my $r0 = time;
    if (!$n->wait_ready(30)) {
        failure("restarted $name did not open its client port within 30 s: "
                . ($n->{start_error} // ''));
        return 0;
    }
    event(sprintf 'restarted %s (pid %d), client port open after %.2fs',
          $name, $n->pid, time - $r0);
    return 1;
}

sub do_kill {
    my ($name, $down) = @_;
    kill_node($name);
    event(sprintf 'kill -9 %s, down for %.2fs', $name, $down);
    phase($down) or return 0;
    return restart_node($name);
}

sub do_stop {
    my ($name, $dur) = @_;
    my $n = $NODE{$name};
    $n->sigstop;
    event(sprintf 'SIGSTOP %s for %.2fs', $name, $dur);
    my $ok = phase($dur);
    $n->sigcont;
    event("SIGCONT $name");
    return $ok;
}

sub do_cut {
    my ($mode, $sides, $dur, $before_restore) = @_;
    my @r = $sides eq 'both' ? ($A->relay, $B->relay)
          : $sides eq 'a' ? ($A->relay) : ($B->relay);
    $_->cut($mode) for @r;
    event(sprintf 'cut %s (%s relay%s) for %.2fs', $mode,
          $sides eq 'both' ? 'both' : "${sides}'s", $sides eq 'both' ? 's'
          : '', $dur);
    my $ok = phase($dur);
    $ok = $before_restore->() if $ok && $before_restore;
    $_->restore for @r;
    event('restored the relays');
    return $ok;
}

# the link cut (close) for $dur s, then $name killed, the relays
# restored and $name restarted: its writes of the cut are lost
sub do_cut_kill {
    my ($name, $dur) = @_;
    my $ok = do_cut('close', 'both', $dur, sub {
        kill_node($name);
        event("kill -9 $name");
        return phase(0.2);
    });
    return $ok && restart_node($name);
}

# Write a marker on $from, wait until its peer reads it.  On success
# every write $from acknowledged before the marker is on the peer.
sub barrier {
    my ($name, $tag) = @_;
    my ($from, $to) = ($NODE{$name}, $PEER{$name});
    my $key = "$MARK$name";
    my $val = "$tag-" . int(time * 1000);
    my $t = time;
    my $line = eval {
        my $s = $from->new_sock(timeout => 2);
        MemcTest::_write_all($s, "ms $key " . length($val) . "\r\n$val\r\n",
                             5);
        MemcTest::_read_line($s, 5);
    };
    if (!defined $line || $line ne "HD\r\n") {
        failure("barrier $name: marker write answered "
                . MemcPair::esc($line // $@));
        return 0;
    }
    if (!wait_value($to, $key, $val, 15)) {
        failure("barrier $name: the peer did not read the marker within "
                . '15 s (last: ' . MemcPair::esc(
                    ref $to->{last_item} ? $to->{last_item}{value}
                                         : $to->{last_item}) . ')');
        return 0;
    }
    push @barriers, { node => $name, t => $t };
    return $t;
}

# Read the whole key space of both nodes right after a barrier of each:
# what each node acknowledged before its barrier must be there (or a
# newer version), even if a later write replaces it before the end.
sub snapshot {
    my ($tag, $tb) = @_;
    my %snap = (tag => $tag, tb => $tb);
    for my $name (qw(A B)) {
        my $t0 = time;
        my $data = eval { fetch_all($NODE{$name}) };
        if (!$data) {
            failure("$tag: cannot read the key space of $name: $@");
            return 0;
        }
        $snap{$name} = { t0 => $t0, t1 => time, data => $data };
    }
    push @snapshots, \%snap;
    return 1;
}

sub heal_and_check {
    my ($tag) = @_;
    my $t = time;
    if (!wait_linked($A, $B, 30)) {
        failure("$tag: not linked again within 30 s");
        return 0;
    }
    my $tl = time - $t;
    $t = time;
    my %tb;
    ($tb{A} = barrier('A', $tag)) && ($tb{B} = barrier('B', $tag))
        or return 0;
    my $tbar = time - $t;
    $t = time;
    snapshot($tag, \%tb) or return 0;
    event(sprintf '%s: linked after %.2fs, barriers %.2fs, snapshot %.2fs',
          $tag, $tl, $tbar, time - $t);
    return 1;
}

# the fault of one cycle; the same random draws whatever the kind
sub plan_cycle {
    my %c = (kind => $FAULTS[int rand @FAULTS]);
    my ($r1, $r2, $r3) = (rand, rand, rand);
    my $S = $O{seconds_per_cycle};
    if ($c{kind} =~ /^cutkill/) {
        $c{dur} = 0.5 + $r1 * 1.5;
    } elsif ($c{kind} =~ /^kill/) {
        $c{dur} = 0.2 + $r1 * 1.3;
    } elsif ($c{kind} =~ /^stop/) {
        $c{dur} = $TMO + 0.3 + $r1 * 1.2;       # always past repl_timeout
    } else {
        $c{dur} = 0.5 + $r1 * ($TMO + 1.5);     # sometimes below it
        $c{sides} = $r2 < 0.7 ? 'both' : $r3 < 0.5 ? 'a' : 'b';
    }
    $c{steady} = $S - $c{dur} > 0.5 ? $S - $c{dur} : 0.5;
    return \%c;
}

sub run_cycles {
    start_clients();
    srand($O{seed});            # the fault schedule depends on the seed only
    phase(0.5) or return 0;
    for my $i (1 .. $O{cycles}) {
        my $c = plan_cycle();
        my $tag = "cycle $i/$O{cycles}";
        event("$tag: $c->{kind}");
        $nfault{$c->{kind}}++;
        my $ok;
        if ($c->{kind} =~ /^cutkill_(\w)/) {
            $ok = do_cut_kill($1, $c->{dur});
        } elsif ($c->{kind} =~ /^kill_(\w)/) {
            $ok = do_kill($1, $c->{dur});
        } elsif ($c->{kind} =~ /^stop_(\w)/) {
            $ok = do_stop($1, $c->{dur});
        } else {
            $ok = do_cut($c->{kind} =~ /blackhole/ ? 'blackhole' : 'close',
                         $c->{sides}, $c->{dur});
        }
        $ok && heal_and_check($tag) && phase($c->{steady}) or return $i - 1;
    }
    return $O{cycles};
}

# ---------------------------------------------------------------------------
# the end state

sub digest_of {
    my ($n) = @_;
    my $h = $n->stats_fresh('replication digest') or return ();
    return ($h->{digest}, $h->{digest_items});
}

# key => {id, flags, cas} for every present key of the key space
sub fetch_all {
    my ($n) = @_;
    my %st;
    my $s = $n->new_sock(timeout => 5);
    my @keys = map { sprintf 'k%05d', $_ } 0 .. $O{keys} - 1;
    while (my @batch = splice @keys, 0, 100) {
        MemcTest::_write_all($s, "gets @batch\r\n", 10);
        my ($raw, $items, $err) = $n->read_values($s, 10);
        die "gets on $n->{name}: $err: " . MemcPair::esc($raw) . "\n"
            if $err;
        for my $it (@$items) {
            my $id = $it->{value} =~ m{\A\Q$it->{key}\E/(\d+/\d+)/(\d+)/(x*)\z}
                     && length($3) == $2 ? $1 : 'CORRUPT:'
                     . MemcPair::esc($it->{value});
            $st{ $it->{key} } = { id => $id, flags => $it->{flags},
                                  cas => $it->{cas} };
        }
    }
    close $s;
    return \%st;
}

sub fmt_item {
    my ($it) = @_;
    return 'absent' unless $it;
    return "$it->{id} flags $it->{flags} cas $it->{cas}";
}

# heal whatever a failed cycle left broken, so the end state can be read
sub heal_all {
    for my $name (qw(A B)) {
        my $n = $NODE{$name};
        $n->sigcont if $n->{stopped};
        if (!$n->{pid}) {
            eval { $n->restart(timeout => 30) } or failure("end: $@");
            delete $n->{chaos_down};
        }
    }
    $_->restore for $A->relay, $B->relay;
}

my $cycles_done = eval { run_cycles() } // do {
    failure("run aborted: $@");
    0;
};
stop_clients();
event("load stopped after $cycles_done cycles");
heal_all();
my $linked = wait_linked($A, $B, 30);
failure('end: not linked within 30 s') unless $linked;
my %tb_end;
$linked && ($tb_end{A} = barrier('A', 'end'))
    && ($tb_end{B} = barrier('B', 'end'));

my ($da, $ia, $db, $ib);
my $same = MemcTest::wait_until(sub {
    ($da, $ia) = digest_of($A);
    ($db, $ib) = digest_of($B);
    return defined $da && defined $db && $da eq $db && $ia == $ib;
}, 30);
if (!$same) {
    failure('end: digests differ after 30 s: A ' . ($da // '?') . '/'
            . ($ia // '?') . ' items, B ' . ($db // '?') . '/'
            . ($ib // '?') . ' items');
}

my ($fa, $fb, %fetched);
for my $name (qw(A B)) {
    my $t0 = time;
    my $data = eval { fetch_all($NODE{$name}) };
    if (!$data) {
        failure("end: cannot read the key space of $name: $@");
        $data = {};
    }
    $fetched{$name} = { t0 => $t0, t1 => time, data => $data };
}
($fa, $fb) = ($fetched{A}{data}, $fetched{B}{data});
# the end state is the last snapshot when both end barriers passed
push @snapshots, { tag => 'end', tb => \%tb_end, %fetched }
    if $tb_end{B};
{
    my @diff;
    for my $k (sort keys %{ { %$fa, %$fb } }) {
        my ($x, $y) = ($fa->{$k}, $fb->{$k});
        next if $x && $y && $x->{id} eq $y->{id}
             && $x->{flags} == $y->{flags} && $x->{cas} eq $y->{cas};
        push @diff, "$k: A " . fmt_item($x) . ', B ' . fmt_item($y);
    }
    failure(scalar(@diff) . " keys differ between the nodes:\n  "
            . join("\n  ", @diff[0 .. ($#diff < 19 ? $#diff : 19)]))
        if @diff;
    my @bad = grep { $fa->{$_}{id} =~ /^CORRUPT/ } keys %$fa;
    failure(scalar(@bad) . " corrupt values, e.g. $bad[0]: $fa->{$bad[0]}{id}")
        if @bad;
    my $present = keys %$fa;
    my $marks = grep { defined } map { $A->item("$MARK$_") } qw(A B);
    failure("digest_items $ia but $present keys and $marks markers present")
        if $same && $ia != $present + $marks;
}

# ---------------------------------------------------------------------------
# analysis of the client logs

my %st = map { $_ => 0 } qw(acked sets msets deletes notfound unacked reads
                            hits unexpected lost inflight lost_inflight
                            lost_older ambiguous unexplained regressions
                            lost_barrier);
my (%writes, %del_hi, %ver_of, %id_of, %attempt, %rd, @unexpected);
my (@vconflict, @phantom, %dels);
my $INF = ~0;

sub vlo { my ($t) = @_; return (POSIX::floor($t * 1000) - $SLACK_MS) << 20 }
sub vhi {
    my ($t) = @_;
    return ((POSIX::ceil($t * 1000) + $SLACK_MS) << 20) | 0xFFFFF;
}

# one version per value, one value per version
sub see_version {
    my ($id, $v, $where) = @_;
    if (defined $ver_of{$id} && $ver_of{$id} ne $v) {
        push @vconflict, "value $id seen with versions $ver_of{$id} and $v "
            . "($where)";
    }
    if (defined $id_of{$v} && $id_of{$v} ne $id) {
        push @vconflict, "version $v seen with values $id_of{$v} and $id "
            . "($where)";
    }
    $ver_of{$id} = $v;
    $id_of{$v} = $id;
}

# kills by node, in time order
my %KILLS;
push @{ $KILLS{ $_->{node} } }, $_ for @kills;
sub kills_of { my ($n) = @_; return @{ $KILLS{$n} || [] } }

# the process (0, 1, ...) of $node that served a request sent at $ts
sub incarnation {
    my ($node, $ts) = @_;
    return scalar grep { $_->{t0} <= $ts } kills_of($node);
}

for my $c (@clients) {
    open my $fh, '<', $c->{log} or do {
        failure("client log $c->{log}: $!");
        next;
    };
    while (my $l = <$fh>) {
        chomp $l;
        my ($kind, $node, $key, $id, $ts, $ta, $x) = split /\t/, $l, 7;
        $attempt{$id} = $key if $id ne '-';
        if ($kind eq 'S' || $kind eq 'T' || $kind eq 'D') {
            $st{acked}++;
            $st{ $kind eq 'D' ? 'deletes' : 'sets' }++;
            $st{msets}++ if $kind eq 'S';
            my ($lo, $hi) = $kind eq 'S' ? ($x, $x) : (vlo($ts), vhi($ta));
            see_version($id, $x, "ms ack on $node") if $kind eq 'S';
            push @{ $writes{$key} }, [$kind, $node, $ts, $ta, $lo, $hi, $id];
            if ($kind eq 'D') {
                $del_hi{$key} = $hi if ($del_hi{$key} // 0) < $hi;
                push @{ $dels{$key} }, [$ts, $hi];
            }
            push @{ $rd{$node}{$key} }, ['W', $ts, $ta, $lo];
        } elsif ($kind eq 'N') {
            $st{notfound}++;
        } elsif ($kind eq 'U') {
            $st{unacked}++;
            if ($x eq 'delete') {
                $del_hi{$key} = $INF;
                push @{ $dels{$key} }, [$ts, $INF];
            }
        } elsif ($kind eq 'R') {
            $st{reads}++;
            next if $id eq '-';
            $st{hits}++;
            see_version($id, $x, "gets on $node");
            push @{ $rd{$node}{$key} }, ['R', $ts, $ta, $x, $id];
        } elsif ($kind eq 'X') {
            $st{unexpected}++;
            push @unexpected, "$node $key: $x";
        }
    }
    close $fh;
}
failure("$st{unexpected} unexpected answers, e.g. "
        . join('; ', @unexpected[0 .. ($#unexpected < 4 ? $#unexpected : 4)]))
    if $st{unexpected};

# Values read must be writes we made, of that key.  A snapshot's gets
# count as reads too (sent at the start of the sweep, answered at its end).
for my $snap (@snapshots) {
    for my $name (qw(A B)) {
        my ($t0, $t1, $f) = @{ $snap->{$name} }{qw(t0 t1 data)};
        for my $k (keys %$f) {
            my $id = $f->{$k}{id};
            if ($id =~ /^CORRUPT/) {
                push @phantom, "$snap->{tag}: $k on $name: $id";
                next;
            }
            push @phantom, "$snap->{tag}: $k on $name holds $id, which no "
                . "client wrote to $k" if ($attempt{$id} // '') ne $k;
            see_version($id, $f->{$k}{cas}, "$snap->{tag}: $k on $name");
            push @{ $rd{$name}{$k} }, ['R', $t0, $t1, $f->{$k}{cas}, $id];
        }
    }
}
for my $f ($fa, $fb) {
    for my $k (keys %$f) {
        my $id = $f->{$k}{id};
        next if $id =~ /^CORRUPT/;
        push @phantom, "final $k holds $id, which no client wrote to $k"
            if ($attempt{$id} // '') ne $k;
        see_version($id, $f->{$k}{cas}, "final $k");
    }
}
for my $node (keys %rd) {
    for my $k (keys %{ $rd{$node} }) {
        for my $e (grep { $_->[0] eq 'R' } @{ $rd{$node}{$k} }) {
            push @phantom, "gets $k on $node returned $e->[4], never "
                . "written to $k" if ($attempt{ $e->[4] } // '') ne $k;
        }
    }
}
for my $l ([\@vconflict, 'version conflicts'],
           [\@phantom, 'values no client wrote']) {
    my ($list, $what) = @$l;
    next unless @$list;
    failure(scalar(@$list) . " $what:\n  "
            . join("\n  ", @$list[0 .. ($#$list < 9 ? $#$list : 9)]));
}

# Monotonic reads: on one node process, a gets sent after another
# request of the key completed returns at least that version (a write:
# its lower bound; a read: what it returned).  Misses are not judged.
my @regress;
for my $node (sort keys %rd) {
    for my $k (sort keys %{ $rd{$node} }) {
        my %by_inc;
        push @{ $by_inc{ incarnation($node, $_->[1]) } }, $_
            for @{ $rd{$node}{$k} };
        for my $ev (values %by_inc) {
            my @done = sort { $a->[2] <=> $b->[2] } @$ev;
            my @reads = sort { $a->[1] <=> $b->[1] }
                        grep { $_->[0] eq 'R' } @$ev;
            my ($i, $floor, $why) = (0, 0, '');
            for my $r (@reads) {
                while ($i < @done && $done[$i][2] < $r->[1]) {
                    my $d = $done[$i++];
                    if ($d->[3] > $floor) {
                        $floor = $d->[3];
                        $why = sprintf '%s acked/answered at %.3f',
                            $d->[0] eq 'W' ? 'a write' : "a read of $d->[4]",
                            $d->[2] - $T0;
                    }
                }
                next unless $r->[3] < $floor;
                push @regress, sprintf '%s on %s: gets sent at %.3f returned '
                    . '%s (version %s) below %s (version >= %s)', $k, $node,
                    $r->[1] - $T0, $r->[4], $r->[3], $why, $floor;
            }
        }
    }
}
$st{regressions} = @regress;
failure(scalar(@regress) . " reads went back in time:\n  "
        . join("\n  ", @regress[0 .. ($#regress < 9 ? $#regress : 9)]))
    if @regress;

# Lost at a barrier: a write node N acknowledged before its barrier of a
# cycle, with no kill of N in between, must be on both nodes in the
# snapshot that follows (its version or a newer one; for a set, absence
# needs a delete that was sent before the read and may be newer).
my @lost_barrier;
sub behind {
    my ($w, $k, $snap) = @_;
    my ($kind, $lo, $id) = @$w[0, 4, 6];
    my $f = $snap->{data}{$k};
    if (!$f) {
        return 0 if $kind eq 'D';
        return (grep { $_->[0] < $snap->{t1} && $_->[1] >= $lo }
                @{ $dels{$k} || [] }) ? 0 : 1;
    }
    return 0 if $kind ne 'D' && $f->{id} eq $id;
    return $f->{cas} < $lo ? 1 : 0;
}
for my $node (qw(A B)) {
    my @mine = sort { $a->[1][3] <=> $b->[1][3] }
               map { my $k = $_; map { [$k, $_] } grep { $_->[1] eq $node }
                     @{ $writes{$k} } } keys %writes;
    my $i = 0;
    for my $snap (@snapshots) {
        my $tb = $snap->{tb}{$node};
        while ($i < @mine && $mine[$i][1][3] < $tb) {
            my ($k, $w) = @{ $mine[$i++] };
            next if grep { $_->{t1} >= $w->[3] && $_->{t0} < $tb }
                    kills_of($node);
            for my $on (qw(A B)) {
                next unless behind($w, $k, $snap->{$on});
                my $f = $snap->{$on}{data}{$k};
                push @lost_barrier, sprintf '%s %s %s acked by %s at %.3f '
                    . '(version >= %s), missing on %s after its barrier at '
                    . '%.3f (%s): %s there', $w->[0] eq 'D' ? 'delete'
                    : $w->[0] eq 'S' ? 'ms' : 'set', $k,
                    $w->[0] eq 'D' ? '' : $w->[6], $node, $w->[3] - $T0,
                    $w->[4], $on, $tb - $T0, $snap->{tag}, fmt_item($f);
            }
        }
    }
}
$st{lost_barrier} = @lost_barrier;
failure(scalar(@lost_barrier) . " acknowledged writes missing after a "
        . "barrier:\n  " . join("\n  ",
        @lost_barrier[0 .. ($#lost_barrier < 9 ? $#lost_barrier : 9)]))
    if @lost_barrier;

# Lost writes: an acked write is lost on a node whose final state is
# older than it.  A set survives if its value is there, or a higher
# version is, or the key is absent and a delete may be newer; a delete
# survives if the key is absent or holds a version that may be newer.
sub lost_on {
    my ($w, $f, $k, $count) = @_;
    my ($kind, $lo, $hi, $id) = @$w[0, 4, 5, 6];
    if (!$f) {
        return 0 if $kind eq 'D';
        return ($del_hi{$k} // 0) >= $lo ? 0 : 1;
    }
    return 0 if $kind ne 'D' && $f->{id} eq $id;
    return 1 if $f->{cas} < $lo;
    $st{ambiguous}++ if $count && $f->{cas} <= $hi;
    return 0;
}


# in flight: acked on a node at most $INFLIGHT s before its kill
for my $k (keys %writes) {
    for my $w (@{ $writes{$k} }) {
        $st{inflight}++ if grep { $w->[3] >= $_->{t0} - $INFLIGHT
                                  && $w->[3] <= $_->{t1} } kills_of($w->[1]);
    }
}

my (@unexplained, %lost_keys);
for my $k (sort keys %writes) {
    for my $w (@{ $writes{$k} }) {
        my $la = lost_on($w, $fa->{$k}, $k, 1);
        my $lb = lost_on($w, $fb->{$k}, $k);
        next unless $la || $lb;
        $st{lost}++;
        $lost_keys{$k} = 1;
        my ($kind, $node, $ts, $ta, $lo, $hi, $id) = @$w;
        my ($kill) = grep { $_->{t1} >= $ta } kills_of($node);
        my $why;
        if (!$kill) {
            $why = "$node was not killed after the ack";
        } elsif (my ($b) = grep { $_->{node} eq $node && $_->{t} > $ta
                                  && $_->{t} < $kill->{t0} } @barriers) {
            $why = sprintf 'a barrier at %.3f showed the peer had it before '
                . 'the kill at %.3f', $b->{t} - $T0, $kill->{t0} - $T0;
        }
        if (!$why) {
            $st{ $ta >= $kill->{t0} - $INFLIGHT ? 'lost_inflight'
                                                 : 'lost_older' }++;
            next;
        }
        push @unexplained, sprintf '%s %s %s on %s sent %.3f acked %.3f '
            . 'version %s..%s: now A %s, B %s; %s',
            $kind eq 'D' ? 'delete' : $kind eq 'S' ? 'ms' : 'set', $k,
            $kind eq 'D' ? '' : $id, $node, $ts - $T0, $ta - $T0,
            $lo, $hi, fmt_item($fa->{$k}), fmt_item($fb->{$k}), $why;
    }
}
$st{unexplained} = @unexplained;
failure(scalar(@unexplained) . " acknowledged writes lost that no kill "
        . "explains:\n  " . join("\n  ",
        @unexplained[0 .. ($#unexplained < 9 ? $#unexplained : 9)]))
    if @unexplained;
failure('no write was acknowledged') unless $st{acked};
failure("only $cycles_done of $O{cycles} cycles ran")
    if $cycles_done < $O{cycles};

# ---------------------------------------------------------------------------
# report

my %rs = map { ($_ => $NODE{$_}->repl_stats || {}) } qw(A B);
say_(join ' ', map {
    my $s = $rs{$_};
    "$_: " . join(' ', map { "$_=" . ($s->{$_} // '?') }
                  qw(full_syncs partial_syncs reconnects links));
} qw(A B));
say_(sprintf 'faults: %s', join ' ', map { "$_=$nfault{$_}" }
     sort keys %nfault);
if ($st{lost_older}) {
    print "chaos: note: $st{lost_older} lost writes were acknowledged more "
        . "than ${\ ($INFLIGHT * 1000)} ms before their node was killed\n";
}

# the server and client logs, and timeline.txt, into $dir
sub save_logs {
    my ($dir) = @_;
    mkdir $dir;
    File::Copy::copy($_, $dir) for glob "$LOGDIR/*";
    open my $fh, '>', "$dir/timeline.txt" or return;
    printf $fh "%.3f %s\n", $_->[0] - $T0, $_->[1] for @timeline;
    print $fh "seed $O{seed}\n", repro(), "\n";
    close $fh;
}

my $elapsed = time - $T0;
my $summary = sprintf 'cycles=%d faults=%s seed=%d writes_acked=%d '
    . '(sets=%d ms=%d deletes=%d) unacked=%d reads=%d lost=%d lost_keys=%d '
    . 'inflight_at_kills=%d lost_inflight=%d lost_older=%d '
    . 'lost_unexplained=%d lost_at_barriers=%d read_regressions=%d '
    . 'ambiguous=%d keys=%d '
    . 'digest=%s elapsed=%.0fs',
    $cycles_done,
    join(',', map { "$_:" . ($nfault{$_} // 0) } @FAULTS),
    $O{seed}, $st{acked}, $st{sets}, $st{msets}, $st{deletes},
    $st{unacked}, $st{reads}, $st{lost}, scalar(keys %lost_keys),
    $st{inflight},
    $st{lost_inflight}, $st{lost_older}, $st{unexplained},
    $st{lost_barrier},
    $st{regressions}, $st{ambiguous}, scalar(keys %$fa), $da // 'none',
    $elapsed;

if (@fail) {
    my $dir = $O{keep_logs} // File::Temp::tempdir("chaos-$O{seed}-XXXX",
                                                    TMPDIR => 1);
    save_logs($dir);
    print "chaos: logs of the servers and clients kept in $dir\n";
    print "chaos: reproduce with: ", repro(), "\n";
    print "chaos: FAIL $summary\n";
    for my $f (@fail) {
        my @l = split /\n/, $f;
        print "chaos:   - ", join("\n      ", @l[0 .. ($#l < 1 ? $#l : 1)]),
            "\n";
    }
    exit 1;
}
save_logs($O{keep_logs}) if $O{keep_logs};
print "chaos: PASS $summary\n";
exit 0;
