#!/usr/bin/perl
# repl.pl: replication figures of a paircached pair, run by bench/repl.sh
# (see bench/README.md, "Replication").  Owns: starting pairs and single
# servers, the replication measurements (lag, full resync with the GET
# latency during it, a set burst, syscalls per replicated set, the cost
# of synchronous mode, partial resync after a link cut through a relay,
# the pair digest of 1M items, a restart with -e against a full copy),
# the comparison with Debian's memcached,
# the tables.  Not: generating load (loadgen.c) or building it
# (repl.sh).  repl.sh runs this script on CPU 1; every server is started
# on CPU 0 with taskset.
use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use Getopt::Long;
use IO::Socket::INET;
use List::Util qw(sum0);
use POSIX qw(:sys_wait_h strftime);
use Socket qw(AF_UNIX SOCK_STREAM PF_UNSPEC);
use Time::HiRes qw(time sleep clock_gettime CLOCK_MONOTONIC);
use lib dirname(abs_path($0));
use BenchProc;

my $BENCH = dirname(abs_path($0));
my $OUT = "$BENCH/out";
my $LOG = "$OUT/repl";                  # server logs, dumps, strace tables
my $LOADGEN = "$BENCH/loadgen";
my $OURS = $ENV{MEMCACHED_BIN} || abs_path("$BENCH/../memcached");
my $REF = $ENV{REFERENCE_BIN} || '/usr/bin/memcached';
my $SERVER_CPU = 0;
my $CLK_TCK = `getconf CLK_TCK` + 0 || 100;

# Server settings: those of bench/README.md, "Server settings".
my @COMMON = ('-U', '0', '-l', '127.0.0.1', '-t', '1', '-m', '2048',
              '-c', '1024', ($> == 0 ? ('-u', 'root') : ()));

# What each section runs; --quick shortens it.
my %P = (
    runs => 3,
    # 1. lag: background 90/10 1 KB load at half the pair's maximum
    lag_keys => 100_000, lag_value => 1024, lag_conns => 50,
    max_secs => 3, probes => 2000, idle_probes => 1000, probe_gap_us => 500,
    full_probes => 200, full_probe_secs => 4,
    # 2./3. full resync of 1M small items, GETs on A meanwhile
    sync_items => 1_000_000, sync_value => 32,
    get_rate => 20_000, get_conns => 20, base_secs => 2,
    # 4. 1 KB set burst at the highest rate
    burst_secs => 10, burst_keys => 1_000_000, burst_conns => 50,
    # 5. syscalls per replicated set, 1 connection
    sc_sets => 10_000, sc_keys => 10_000,
    # 6. synchronous mode: set-heavy load (bench/loads.pl) closed loop,
    # then at a fixed rate; memcached, async pair, sync pair per round
    cost_runs => 5, cost_keys => 100_000, cost_value => 4096,
    cost_get => 0.1, cost_conns => 50, cost_secs => 5,
    cost_rate => 20_000, cost_rate_secs => 3,
    # 7. partial resync: steady sets on A, the link cut for cut_secs
    cut_secs => 30, psync_keys => 100_000, psync_value => 100,
    psync_rate => 10_000, psync_conns => 10, psync_warm => 2,
    # 8. digest of digest_items x sync_value B on both nodes
    digest_items => 1_000_000, digest_runs => 5,
    # 9. restart of one node of a pair holding sync_items x sync_value B,
    # with -e (warm, partial) and after kill -9 (a full copy), sets at
    # restart_rate on its peer throughout, restart_down s stopped
    restart_rate => 5_000, restart_down => 1,
);
my %QUICK = (runs => 1, max_secs => 2, probes => 1000, idle_probes => 500,
             full_probes => 100, full_probe_secs => 3,
             burst_secs => 5, sc_sets => 5_000, base_secs => 1,
             cost_runs => 2, cost_secs => 2, cost_rate_secs => 2,
             cut_secs => 5, digest_runs => 3);
my @SECTIONS = qw(lag resync burst syscalls sync-cost psync digest restart);
my @COST = qw(ref async sync);          # sync-cost: the targets
my %COST_NAME = (ref => 'memcached', async => 'async pair',
                 sync => 'sync pair');

my @NOTES;              # printed under the table
my %R;                  # figure => target => [per-run values]
my @RUNS;               # "section\trun\ttarget\tfigure\tvalue"
our @LG_PREFIX;         # command words before loadgen (probe())
my @PROBE_PREFIX;       # ('chrt', '-f', '1') with --probe-rt 1
my %FOREIGN;            # section => CPU share used by other processes
my $HAVE_PERF = system('command -v perf >/dev/null') == 0;
my @PERF_EVENTS = qw(raw_syscalls:sys_enter syscalls:sys_enter_epoll_wait
                     syscalls:sys_enter_read syscalls:sys_enter_sendmsg
                     syscalls:sys_enter_sendto);

main();
exit 0;

sub usage {
    print STDERR <<"EOF";
usage: bench/repl.sh [--quick] [--runs N] [--only SECTION,...] [--cut SECS]
  --quick   one run of each, shorter (about 2 minutes)
  --runs    runs per figure (default 3, sync-cost 5, digest 5; the
            median is shown)
  --only    run only these sections (they run in this order): lag,
            resync, burst, syscalls, sync-cost, psync, digest, restart
  --list    print the sections and exit
  --cut     psync: how long the link stays cut, seconds (30; quick: 5)
  --wait-quiet SECS  before each section, wait up to SECS (15) for the
            other processes on the machine to use under 10% of a CPU
  --probe-rt 0|1  run lag probes at real-time priority (chrt -f 1; the
            default as root), so that the probe does not measure its own
            wait for CPU 1 behind the load generator
env: MEMCACHED_BIN (ours), REFERENCE_BIN (default /usr/bin/memcached)
EOF
    exit 2;
}

sub main {
    my %opt = (quick => 0, runs => 0, only => '', 'wait-quiet' => 15,
               'probe-rt' => $> == 0 ? 1 : 0);
    GetOptions(\%opt, 'quick', 'runs=i', 'only=s', 'wait-quiet=i', 'help',
               'list', 'cut=f', 'probe-rt=i') or usage();
    usage() if $opt{help};
    if ($opt{list}) {
        print "$_\n" for @SECTIONS;
        exit 0;
    }
    %P = (%P, %QUICK) if $opt{quick};
    $P{$_} = $opt{runs} for $opt{runs} > 0 ? qw(runs cost_runs digest_runs)
                                           : ();
    $P{cut_secs} = $opt{cut} if defined $opt{cut};
    if ($opt{'probe-rt'}) {
        die "--probe-rt needs root and chrt\n"
            unless $> == 0 && system('chrt -f 1 true') == 0;
        @PROBE_PREFIX = ('chrt', '-f', '1');
    }
    die "--cut must be positive\n" unless $P{cut_secs} > 0;
    my %want = map { $_ => 1 } $opt{only} ? split(/,/, $opt{only})
                                          : @SECTIONS;
    for my $s (keys %want) {
        die "unknown section '$s' (@SECTIONS)\n" unless grep { $_ eq $s }
                                                       @SECTIONS;
    }
    $SIG{INT} = $SIG{TERM} = sub { cleanup(); exit 130; };
    remove_tree($LOG);
    make_path($LOG);
    my $t0 = time;
    my %run = (lag => \&section_lag, resync => \&section_resync,
               burst => \&section_burst, syscalls => \&section_syscalls,
               'sync-cost' => \&section_sync_cost,
               psync => \&section_psync, digest => \&section_digest,
               restart => \&section_restart);
    for my $s (grep { $want{$_} } @SECTIONS) {
        wait_quiet($s, $opt{'wait-quiet'});
        my $m = cpu_mark();
        $run{$s}->();
        $FOREIGN{$s} = foreign_share($m);
        progress(sprintf('%s: other processes used %.0f%% of a CPU', $s,
                         100 * ($FOREIGN{$s} // 0)));
    }
    report(time - $t0, $opt{quick});
}

sub progress {
    print STDERR strftime('%H:%M:%S ', localtime), @_, "\n";
}

sub note {
    my ($msg) = @_;
    push @NOTES, $msg;
    progress("NOTE: $msg");
}

sub mono { clock_gettime(CLOCK_MONOTONIC) }

# One measured value of one run.
sub put {
    my ($section, $run, $target, $figure, $value) = @_;
    return unless defined $value;
    push @{$R{$figure}{$target}}, $value;
    push @RUNS, join("\t", $section, $run, $target, $figure, $value);
}

# ---------------------------------------------------------------------
# Servers.  Every pid started is kept in %LIVE and killed at exit.
# ---------------------------------------------------------------------


# Wait until the server answers "version" (loadgen -W), or die.
sub wait_ready {
    my ($srv, $limit) = @_;
    answers_within($srv, $limit, $LOADGEN)
        or die "$srv->{name} exited at start-up:\n" . tail_log($srv->{log});
}

# A node of a pair (ours) or a single server (ours or the reference).
sub node_cmd {
    my ($bin, $port, $rport, $peer_rport, @extra) = @_;
    wait_binary($bin);
    my @cmd = ('taskset', '-c', $SERVER_CPU, $bin, '-p', $port, @COMMON);
    push @cmd, '-o', "repl_port=$rport", '-x', "127.0.0.1:$peer_rport"
        if $rport;
    return [@cmd, @extra];
}

# Another session may be rebuilding the binary: wait for it to be back.
sub wait_binary {
    my ($bin) = @_;
    my $deadline = time + 120;
    until (-x $bin) {
        die "$bin missing for 120 s\n" if time > $deadline;
        progress("$bin missing (being rebuilt?), waiting");
        sleep 2;
    }
}

sub start_server {
    my ($name, $cmd, $port, $nowait) = @_;
    my $log = "$LOG/$name.log";
    my %srv = (name => $name, port => $port, log => $log, cmd => $cmd);
    $srv{t_spawn} = mono();
    $srv{pid} = spawn($cmd, $log, name => $name);
    wait_ready(\%srv, 30) unless $nowait;
    return \%srv;
}

sub start_single {
    my ($name, $bin) = @_;
    my $port = free_port();
    return start_server($name, node_cmd($bin, $port), $port);
}

# Both nodes first, then wait: a node's client port opens only after its
# first sync with the other.  @extra goes to both nodes.
sub start_pair {
    my ($name, @extra) = @_;
    my %p = map { $_ => free_port() } qw(pa pb ra rb);
    my $a = start_server("$name-A", node_cmd($OURS, $p{pa}, $p{ra}, $p{rb},
                                             @extra), $p{pa}, 1);
    my $b = start_server("$name-B", node_cmd($OURS, $p{pb}, $p{rb}, $p{ra},
                                             @extra), $p{pb}, 1);
    wait_ready($_, 30) for $a, $b;
    return { a => $a, b => $b, %p, name => $name };
}

sub stop_servers {
    stop_pid($_->{pid}) for grep { defined } @_;
}

# "stats" or "stats replication" as a hash.
sub stats {
    my ($srv, $what) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $srv->{port}, Timeout => 5)
        or die "$srv->{name}: cannot connect for stats: $!\n";
    my %h;
    $s->timeout(5);
    print $s ($what ? "stats $what\r\n" : "stats\r\n");
    while (my $line = <$s>) {
        last if $line =~ /^(END|ERROR)/;
        $h{$1} = $2 if $line =~ /^STAT (\S+) (.*?)\r?$/;
    }
    close $s;
    return \%h;
}

# CPU seconds (all threads) of a live process.
sub proc_cpu {
    my ($pid) = @_;
    open(my $fh, '<', "/proc/$pid/stat") or return 0;
    my $st = <$fh>;
    my @f = split ' ', substr($st, rindex($st, ')') + 2);
    return ($f[11] + $f[12]) / $CLK_TCK;
}

# Wait until each server has finished its background work after a bulk
# load (hash table expansion, LRU maintenance): at least 1 s, then until
# hash_is_expanding is 0 and the server used under 2% of a CPU in each of
# two 250 ms windows in a row; at most 15 s.
sub settle {
    my (@srv) = @_;
    my $deadline = time + 15;
    sleep 1;
    for my $srv (@srv) {
        my $quiet = 0;
        while (time < $deadline && $quiet < 2) {
            my $c0 = proc_cpu($srv->{pid});
            sleep 0.25;
            $quiet = proc_cpu($srv->{pid}) - $c0 <= 0.005
                     && !stats($srv)->{hash_is_expanding} ? $quiet + 1 : 0;
        }
    }
    note('servers still busy 15 s after a bulk load: '
         . join(', ', map { $_->{name} } @srv)) if time >= $deadline;
}

# Other processes on the machine: busy CPU time (user, nice, system, irq
# and softirq from /proc/stat; a task's system time includes the
# softirq ticks it was interrupted by) minus ours (this script, its
# reaped children, and its live children), as a share of one CPU over a
# section.
sub cpu_mark {
    open(my $fh, '<', '/proc/stat') or return undef;
    my @f = split ' ', scalar <$fh>;
    my $busy = ($f[1] + $f[2] + $f[3] + $f[6] + $f[7]) / $CLK_TCK;
    my @t = times;
    my $own = $t[0] + $t[1] + $t[2] + $t[3];
    $own += proc_cpu($_) for keys %LIVE;
    return { t => mono(), busy => $busy, own => $own };
}

# Before a section: wait until other processes use under 10% of a CPU
# over one second, for at most $limit seconds; note it if they never do.
sub wait_quiet {
    my ($section, $limit) = @_;
    my $deadline = time + $limit;
    my $share;
    do {
        my $m = cpu_mark();
        sleep 1;
        $share = foreign_share($m) // 0;
        return if $share < 0.10;
        progress(sprintf('%s: other processes use %.0f%% of a CPU, waiting',
                         $section, 100 * $share));
    } while (time < $deadline);
    note(sprintf('%s started with other processes using %.0f%% of a CPU: '
                 . 'its latency tails will suffer', $section, 100 * $share));
}

sub foreign_share {
    my ($m0) = @_;
    my $m1 = cpu_mark();
    return undef unless $m0 && $m1 && $m1->{t} > $m0->{t};
    my $f = ($m1->{busy} - $m0->{busy}) - ($m1->{own} - $m0->{own});
    return ($f > 0 ? $f : 0) / ($m1->{t} - $m0->{t});
}

# ---------------------------------------------------------------------
# Load generator.
# ---------------------------------------------------------------------

sub parse_loadgen {
    my ($text) = @_;
    my %r = $text =~ /(\w+)=([\d.]+)/g;
    return \%r;
}

# Run loadgen to the end; exit 1 (error replies, probe timeouts) is
# noted, anything worse is fatal.
sub loadgen {
    my ($what, @args) = @_;
    open(my $fh, '-|', @LG_PREFIX, $LOADGEN, '-T', 120, @args)
        or die "loadgen: $!\n";
    my $text = join('', <$fh>);
    close $fh;
    my $rc = $? >> 8;
    die "loadgen @args failed (exit $rc)\n" if $rc > 1 || $? & 127;
    my $r = parse_loadgen($text);
    note("$what: loadgen exit 1: errors=" . ($r->{errors} // '?')
         . ' misses=' . ($r->{misses} // '?')
         . ' timeouts=' . ($r->{timeouts} // '?')) if $rc == 1;
    note("$what: $r->{misses} misses") if $r->{misses};
    return $r;
}

# A lag probe: loadgen -Y at real-time priority (chrt -f 1, as root).
# It shares CPU 1 with the load generator, and at normal priority its
# wakeups waited behind that busy process for up to a 4 ms scheduler
# tick: the probe measured its own queueing, not the pair's lag.

sub probe {
    my ($what, @args) = @_;
    local @LG_PREFIX = @PROBE_PREFIX;
    return loadgen($what, @args);
}

# Start loadgen in the background; finish_bg() stops it with SIGINT (it
# then prints its summary as if its duration had ended).
sub start_bg {
    my (@args) = @_;
    my $pid = open(my $fh, '-|', $LOADGEN, '-T', 120, @args)
        or die "loadgen: $!\n";
    $LIVE{$pid} = 'loadgen';
    return { pid => $pid, fh => $fh, args => \@args };
}

sub finish_bg {
    my ($bg, $what) = @_;
    kill 'INT', $bg->{pid};
    my $fh = $bg->{fh};
    my $text = join('', <$fh>);
    close $fh;
    delete $LIVE{$bg->{pid}};
    my $rc = $? >> 8;
    die "background loadgen @{$bg->{args}} failed (exit $rc)\n"
        if $rc > 1 || $? & 127;
    my $r = parse_loadgen($text);
    note("$what: $r->{errors} error replies") if $r->{errors};
    note("$what: $r->{misses} misses") if $r->{misses};
    return $r;
}

# Store keys 0..n-1 with pipelined "set ... noreply" on one connection,
# then wait for "version": much faster than one set per round trip.
sub pipeline_preload {
    my ($srv, $n, $vlen) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $srv->{port}, Timeout => 60)
        or die "$srv->{name}: cannot connect: $!\n";
    my $v = 'x' x $vlen;
    for (my $i = 0; $i < $n; $i += 10_000) {
        my $end = $i + 9_999 < $n - 1 ? $i + 9_999 : $n - 1;
        my $buf = join('', map {
            sprintf("set key:%08u 0 0 %d noreply\r\n%s\r\n", $_, $vlen, $v)
        } $i .. $end);
        print $s $buf or die "$srv->{name}: preload write: $!\n";
    }
    print $s "version\r\n";
    my $line = <$s> // '';
    die "$srv->{name}: preload: no version reply\n" unless $line =~ /^VERSION/;
    close $s;
}

sub preload {
    my ($srv, $keys, $vlen) = @_;
    loadgen("$srv->{name} preload", '-p', $srv->{port}, '-k', $keys,
            '-v', $vlen, '-c', 50, '-L');
}

# Poll until B holds as many items as A and A has nothing left to send.
sub wait_converged {
    my ($pair, $limit) = @_;
    my $t0 = mono();
    my ($sa, $sb, $ra);
    while (mono() - $t0 < $limit) {
        $sa = stats($pair->{a});
        $ra = stats($pair->{a}, 'replication');
        $sb = stats($pair->{b});
        return mono() - $t0
            if $sa->{curr_items} == $sb->{curr_items}
               && $ra->{buffer_bytes} == 0 && $ra->{lag_items} == 0;
        sleep 0.01;
    }
    note("$pair->{name}: not converged after ${limit}s: A curr_items "
         . "$sa->{curr_items}, B $sb->{curr_items}, A buffer_bytes "
         . "$ra->{buffer_bytes}, lag_items $ra->{lag_items}");
    return undef;
}

# Percentile of a sorted list (nearest rank).
sub pct {
    my ($v, $q) = @_;
    return undef unless @$v;
    my $i = int($q * @$v + 0.999999) - 1;
    $i = 0 if $i < 0;
    return $v->[$i < @$v ? $i : $#$v];
}

# Latencies (us) of the requests in a loadgen -O file whose origin lies
# in [from, to] (CLOCK_MONOTONIC seconds; undef = unbounded), sorted;
# only gets or sets when $type is 'g' or 's'.
sub dump_latencies {
    my ($file, $from, $to, $type) = @_;
    open(my $fh, '<', $file) or die "$file: $!\n";
    my @v;
    while (my $line = <$fh>) {
        my ($t, $us, $ty) = split ' ', $line;
        next if defined $type && $ty ne $type;
        $t /= 1e6;
        next if defined $from && $t < $from;
        next if defined $to && $t > $to;
        push @v, $us;
    }
    return [sort { $a <=> $b } @v];
}

# CPU time of the kernel's DAMON threads (kdamond), in ms.  Where a
# DAMON scheme runs (this VM: physical-address monitoring with a pageout
# scheme), kdamond wakes every sample interval and can hold a CPU for
# milliseconds without yielding, so every tail latency taken while it ran
# carries that stall (bench/README.md, "Caveats").
sub kdamond_ms {
    my $ns = 0;
    for my $dir (glob '/proc/[0-9]*') {
        open(my $c, '<', "$dir/comm") or next;
        my $comm = <$c> // '';
        next unless $comm =~ /^kdamond/;
        open(my $s, '<', "$dir/schedstat") or next;
        my ($run) = split ' ', (<$s> // '');
        $ns += $run // 0;
    }
    return $ns / 1e6;
}

# ---------------------------------------------------------------------
# 1. Replication lag at half load.
# ---------------------------------------------------------------------

sub lag_args {
    my ($srv) = @_;
    return ('-p', $srv->{port}, '-k', $P{lag_keys}, '-v', $P{lag_value},
            '-g', 0.9, '-c', $P{lag_conns});
}

sub section_lag {
    my @half;

    progress("== lag: 90/10 1 KB load at half the pair's maximum, "
             . "$P{probes} probes ($P{runs} runs)");
    for my $run (1 .. $P{runs}) {
        my $pair = start_pair("lag-r$run");
        my ($a, $b) = @$pair{qw(a b)};
        preload($a, $P{lag_keys}, $P{lag_value});
        wait_converged($pair, 20);
        settle($a, $b);
        my $s0 = stats($a, 'replication');
        my $max = loadgen('max rate', lag_args($a), '-d', $P{max_secs});
        put('lag', $run, 'ours', 'max ops/s', $max->{rps});
        my $idle = probe('idle probe', '-p', $a->{port}, '-Y', $b->{port},
                           '-n', $P{idle_probes}, '-i', $P{probe_gap_us});
        my $rate = int($max->{rps} / 2);
        push @half, $rate;
        my $bg = start_bg(lag_args($a), '-r', $rate, '-d', 60, '-l');
        sleep 0.5;
        my $pr = probe('probe', '-p', $a->{port}, '-Y', $b->{port},
                         '-n', $P{probes}, '-i', $P{probe_gap_us});
        my $bgr = finish_bg($bg, 'half-load background');
        note(sprintf('lag-r%d: background load reached %.0f of %d ops/s',
                     $run, $bgr->{rps}, $rate))
            if $bgr->{rps} < 0.97 * $rate;
        # Diagnostic: the same probe while the load runs flat out.
        $bg = start_bg(lag_args($a), '-d', 60);
        sleep 0.5;
        my $full = probe('full-load probe', '-p', $a->{port},
                           '-Y', $b->{port}, '-n', $P{full_probes},
                           '-i', 1000, '-T', $P{full_probe_secs});
        my $fr = finish_bg($bg, 'full-load background');
        my $ra = stats($a, 'replication');
        note("lag-r$run: link $ra->{link_state}, reconnects "
             . "$s0->{reconnects} -> $ra->{reconnects}, overflows "
             . "$ra->{buffer_overflows}")
            if $ra->{link_state} ne 'linked'
               || $ra->{reconnects} != $s0->{reconnects}
               || $ra->{buffer_overflows};
        put('lag', $run, 'ours', 'full-load ops/s', $fr->{rps});
        put('lag', $run, 'ours', "full-load lag $_ us",
            $full->{"lag_${_}_us"}) for qw(p50 p99 max);
        # The half load alone (no probe polling B), as for memcached.
        my $alone = loadgen('half load alone', lag_args($a), '-r', $rate,
                            '-d', 2, '-l');
        put('lag', $run, 'ours', 'half-load ops/s', $alone->{rps});
        put('lag', $run, 'ours', 'half-load p99 us', $alone->{p99});
        put('lag', $run, 'ours', 'half-load+probe ops/s', $bgr->{rps});
        put('lag', $run, 'ours', 'half-load+probe p99 us', $bgr->{p99});
        put('lag', $run, 'ours', "lag $_ us", $pr->{"lag_${_}_us"})
            for qw(p50 p99 max);
        put('lag', $run, 'ours', "ack lag $_ us", $pr->{"ack_lag_${_}_us"})
            for qw(p50 p99);
        put('lag', $run, 'ours', "idle lag $_ us", $idle->{"lag_${_}_us"})
            for qw(p50 p99);
        put('lag', $run, 'ours', "probe set $_ us", $pr->{"set_${_}_us"})
            for qw(p50 p99);
        progress(sprintf('lag-r%d: max %.0f ops/s, at %.0f ops/s lag '
                         . 'p50 %.0f p99 %.0f max %.0f us (idle p99 %.0f)',
                         $run, $max->{rps}, $bgr->{rps}, $pr->{lag_p50_us},
                         $pr->{lag_p99_us}, $pr->{lag_max_us},
                         $idle->{lag_p99_us}));
        progress(sprintf('lag-r%d: flat out (%.0f ops/s): lag p50 %.0f '
                         . 'p99 %.0f max %.0f us over %d probes', $run,
                         $fr->{rps}, $full->{lag_p50_us},
                         $full->{lag_p99_us}, $full->{lag_max_us},
                         $full->{probes}));
        stop_servers($a, $b);
    }
    # memcached, one node: its maximum, and its latency at the same rate
    my $rate = int(median(@half));
    for my $run (1 .. $P{runs}) {
        my $m = start_single("lag-ref-r$run", $REF);
        preload($m, $P{lag_keys}, $P{lag_value});
        settle($m);
        my $max = loadgen('ref max rate', lag_args($m), '-d', $P{max_secs});
        my $at = loadgen('ref half load', lag_args($m), '-r', $rate,
                         '-d', 2, '-l');
        # The floor for the lag: the same probe and load on one
        # memcached, setting and polling the same node, so that it
        # measures a set's and a get's round trip and nothing else.
        my $bg = start_bg(lag_args($m), '-r', $rate, '-d', 60, '-l');
        sleep 0.5;
        my $fl = probe('ref probe', '-p', $m->{port}, '-Y', $m->{port},
                       '-n', $P{probes}, '-i', $P{probe_gap_us});
        finish_bg($bg, 'ref half-load background');
        put('lag', $run, 'ref', "lag $_ us", $fl->{"lag_${_}_us"})
            for qw(p50 p99 max);
        put('lag', $run, 'ref', "ack lag $_ us", $fl->{"ack_lag_${_}_us"})
            for qw(p50 p99);
        put('lag', $run, 'ref', "probe set $_ us", $fl->{"set_${_}_us"})
            for qw(p50 p99);
        put('lag', $run, 'ref', 'max ops/s', $max->{rps});
        put('lag', $run, 'ref', 'half-load ops/s', $at->{rps});
        put('lag', $run, 'ref', 'half-load p99 us', $at->{p99});
        progress(sprintf('lag-ref-r%d: max %.0f ops/s, p99 at %d: %.0f us',
                         $run, $max->{rps}, $rate, $at->{p99}));
        stop_servers($m);
    }
}

# ---------------------------------------------------------------------
# 2./3. Full resync of 1M items, and GET latency on A meanwhile.
# ---------------------------------------------------------------------

sub get_args {
    my ($srv) = @_;
    return ('-p', $srv->{port}, '-k', $P{sync_items}, '-v', $P{sync_value},
            '-g', 1, '-c', $P{get_conns}, '-r', $P{get_rate});
}

sub section_resync {
    progress("== resync: $P{sync_items} x $P{sync_value} B, GETs at "
             . "$P{get_rate}/s on A meanwhile ($P{runs} runs)");
    my %p = map { $_ => free_port() } qw(pa pb ra rb);
    # A alone first: its client port opens after 1 s without a peer.
    my $a = start_server('sync-A', node_cmd($OURS, $p{pa}, $p{ra}, $p{rb},
                         '-o', 'repl_initial_sync_timeout=1'), $p{pa});
    pipeline_preload($a, $P{sync_items}, $P{sync_value});
    settle($a);
    my $items = stats($a)->{curr_items};
    note("sync-A: curr_items $items after preload, not $P{sync_items}")
        if $items != $P{sync_items};
    my $b;
    for my $run (1 .. $P{runs}) {
        stop_servers($b) if $b;
        settle($a);
        my $s0 = stats($a, 'replication');
        my $dump = "$LOG/sync-r$run-gets.txt";
        my $bg = start_bg(get_args($a), '-d', 60, '-O', $dump);
        sleep 0.3;
        my $kd0 = kdamond_ms();
        # B starts empty; its client port opens once it has received
        # SYNCED from A, i.e. when the whole copy has arrived.
        $b = start_server("sync-B-r$run", node_cmd($OURS, $p{pb}, $p{rb},
                          $p{ra}), $p{pb}, 1);
        my $t_open = wait_open($b, 60);
        my $kd = kdamond_ms() - $kd0;
        sleep 0.3;
        my $bgr = finish_bg($bg, "sync-r$run GETs");
        my $s1 = stats($a, 'replication');
        my $bitems = stats($b)->{curr_items};
        my $secs = $t_open - $b->{t_spawn};
        if ($s1->{full_syncs} != $s0->{full_syncs} + 1) {
            note("sync-r$run: A full_syncs $s0->{full_syncs} -> "
                 . "$s1->{full_syncs}, expected one more");
        }
        note("sync-r$run: B curr_items $bitems, A $items")
            if $bitems != $items;
        my $during = dump_latencies($dump, $b->{t_spawn}, $t_open);
        put('resync', $run, 'ours', 'sync items', $s1->{last_sync_items});
        put('resync', $run, 'ours', 'sync ms (A walk)',
            $s1->{last_sync_ms});
        put('resync', $run, 'ours', 'sync items/s (A walk)',
            $s1->{last_sync_ms} > 0
            ? $s1->{last_sync_items} * 1000 / $s1->{last_sync_ms} : undef);
        put('resync', $run, 'ours', 'sync s (B start to open)', $secs);
        put('resync', $run, 'ours', 'sync items/s (B start to open)',
            $bitems / $secs);
        put('resync', $run, 'ours', 'B curr_items', $bitems);
        put('resync', $run, 'ours', "GET during sync $_->[0] us",
            pct($during, $_->[1])) for ['p50', 0.5], ['p99', 0.99],
                                       ['p999', 0.999], ['max', 1];
        put('resync', $run, 'ours', 'GETs during sync', scalar @$during);
        put('resync', $run, 'ours', 'kdamond ms during sync', $kd);
        # The same GET load on A, linked and idle.
        wait_converged({ a => $a, b => $b, name => "sync-r$run" }, 10);
        settle($a, $b);
        my $bdump = "$LOG/sync-r$run-base.txt";
        loadgen('baseline GETs', get_args($a), '-d', $P{base_secs},
                '-O', $bdump);
        my $base = dump_latencies($bdump);
        put('resync', $run, 'ours', "GET no sync $_->[0] us",
            pct($base, $_->[1])) for ['p50', 0.5], ['p99', 0.99];
        progress(sprintf('sync-r%d: %d items, A walk %d ms, B open after '
                         . '%.3f s; GET p99 %.0f us during (%d GETs), '
                         . '%.0f us linked idle; kdamond %.1f ms', $run,
                         $s1->{last_sync_items}, $s1->{last_sync_ms}, $secs,
                         pct($during, 0.99) // -1, scalar @$during,
                         pct($base, 0.99), $kd));
    }
    stop_servers($a, $b);
    for my $run (1 .. $P{runs}) {
        my $m = start_single("sync-ref-r$run", $REF);
        pipeline_preload($m, $P{sync_items}, $P{sync_value});
        settle($m);
        my $dump = "$LOG/sync-ref-r$run.txt";
        loadgen('ref GETs', get_args($m), '-d', $P{base_secs}, '-O', $dump);
        my $v = dump_latencies($dump);
        put('resync', $run, 'ref', "GET no sync $_->[0] us", pct($v, $_->[1]))
            for ['p50', 0.5], ['p99', 0.99];
        progress(sprintf('sync-ref-r%d: GET p99 %.0f us', $run,
                         pct($v, 0.99)));
        stop_servers($m);
    }
}

# Section 9: a node of a pair holding sync_items restarts, with sets on
# its peer throughout: stopped cleanly and started with the same -e (a
# warm restart: partial resync), then killed and started cold (a full
# copy).  Figures: its start until its client port opens, and the link
# bytes its peer sent from the stop until then.
sub section_restart {
    progress("== restart: $P{sync_items} x $P{sync_value} B, sets at "
             . "$P{restart_rate}/s on A, B down $P{restart_down} s "
             . "($P{runs} runs)");
    my $dir = -d '/dev/shm' && -w '/dev/shm' ? '/dev/shm' : $LOG;
    my %p = map { $_ => free_port() } qw(pa pb ra rb);
    my %file = (a => "$dir/pc-bench-$$-a.mem", b => "$dir/pc-bench-$$-b.mem");
    my $bcmd = node_cmd($OURS, $p{pb}, $p{rb}, $p{ra}, '-e', $file{b});
    my $a = start_server('rst-A', node_cmd($OURS, $p{pa}, $p{ra}, $p{rb},
                         '-e', $file{a}), $p{pa}, 1);
    my $b = start_server('rst-B', $bcmd, $p{pb}, 1);
    wait_ready($_, 30) for $a, $b;
    my $pair = { a => $a, b => $b, name => 'rst' };
    pipeline_preload($a, $P{sync_items}, $P{sync_value});
    wait_converged($pair, 60);
    settle($a, $b);
    my $bg = start_bg('-p', $a->{port}, '-k', $P{sync_items},
                      '-v', $P{sync_value}, '-g', 0, '-c', 10,
                      '-r', $P{restart_rate}, '-d', 110);
    for my $run (1 .. $P{runs}) {
        for my $kind ('warm', 'full') {
            my $s0 = stats($a, 'replication');
            my $t0 = mono();
            stop_pid($b->{pid}, $kind eq 'warm' ? 'TERM' : 'KILL');
            my $t_stop = mono() - $t0;
            sleep $P{restart_down};
            $b = start_server("rst-B-r$run-$kind", $bcmd, $p{pb}, 1);
            $pair->{b} = $b;
            my $t_open = wait_open($b, 120);
            my $s1 = stats($a, 'replication');
            my $sb = stats($b, 'replication');
            my $secs = $t_open - $b->{t_spawn};
            my $bytes = $s1->{bytes_sent} - $s0->{bytes_sent};
            note("rst-r$run-$kind: B start_mode $sb->{start_mode}")
                if $sb->{start_mode} ne ($kind eq 'warm' ? 'partial'
                                                         : 'full');
            put('restart', $run, 'ours', "$kind start to open s", $secs);
            put('restart', $run, 'ours', "$kind peer bytes", $bytes);
            put('restart', $run, 'ours', "$kind stop s", $t_stop);
            put('restart', $run, 'ours', "$kind catch-up records",
                $sb->{start_catchup_records});
            put('restart', $run, 'ours', "$kind full copies",
                $s1->{full_syncs} - $s0->{full_syncs});
            progress(sprintf('rst-r%d-%s: B stopped in %.3f s, open %.3f s '
                             . 'after its start (%s), A sent %d bytes, '
                             . 'catch-up %d records', $run, $kind, $t_stop,
                             $secs, $sb->{start_mode}, $bytes,
                             $sb->{start_catchup_records}));
            wait_converged($pair, 60);
        }
        # the cold start left no memory file: save one for the next run
        my $t0 = mono();
        stop_pid($b->{pid}, 'TERM');
        $b = start_server("rst-B-r$run-again", $bcmd, $p{pb}, 1);
        $pair->{b} = $b;
        wait_open($b, 120);
        wait_converged($pair, 60);
    }
    finish_bg($bg, 'restart sets');
    stop_servers($a, $b);
    unlink values %file, map { "$_.meta" } values %file;
}

# Poll B's client port with bare connects (refused until it opens).
sub wait_open {
    my ($srv, $limit) = @_;
    while (mono() - $srv->{t_spawn} < $limit) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $srv->{port});
        if ($s) {
            my $t = mono();
            close $s;
            return $t;
        }
        if (waitpid($srv->{pid}, WNOHANG) == $srv->{pid}) {
            delete $LIVE{$srv->{pid}};
            die "$srv->{name} exited:\n" . tail_log($srv->{log});
        }
        sleep 0.002;
    }
    die "$srv->{name}: client port not open after ${limit}s\n";
}

# ---------------------------------------------------------------------
# 4. A 1 KB set burst at the highest rate, then the link's health.
# ---------------------------------------------------------------------

sub burst_args {
    my ($srv) = @_;
    return ('-p', $srv->{port}, '-k', $P{burst_keys}, '-v', 1024, '-g', 0,
            '-c', $P{burst_conns}, '-d', $P{burst_secs});
}

sub section_burst {
    progress("== burst: 1 KB sets, $P{burst_conns} conns, $P{burst_secs} s "
             . "($P{runs} runs)");
    for my $run (1 .. $P{runs}) {
        my $pair = start_pair("burst-r$run");
        my ($a, $b) = @$pair{qw(a b)};
        my $s0 = stats($a, 'replication');
        my $r = loadgen('burst', burst_args($a));
        my $conv = wait_converged($pair, 30);
        my $s1 = stats($a, 'replication');
        my $b1 = stats($b, 'replication');
        my ($ia, $ib) = (stats($a)->{curr_items}, stats($b)->{curr_items});
        my $ok = $s1->{buffer_overflows} == 0
              && $s1->{reconnects} == $s0->{reconnects}
              && $s1->{link_state} eq 'linked' && $b1->{link_state} eq 'linked'
              && $ia == $ib;
        put('burst', $run, 'ours', 'burst sets/s', $r->{rps});
        put('burst', $run, 'ours', 'burst converge s', $conv);
        put('burst', $run, 'ours', 'burst overflows', $s1->{buffer_overflows});
        put('burst', $run, 'ours', 'burst reconnects',
            $s1->{reconnects} - $s0->{reconnects});
        put('burst', $run, 'ours', 'burst A curr_items', $ia);
        put('burst', $run, 'ours', 'burst B curr_items', $ib);
        put('burst', $run, 'ours', 'burst ok', $ok ? 1 : 0);
        my $msg = sprintf('burst-r%d: %.0f sets/s; overflows %d, reconnects '
                          . '+%d, links %s/%s, curr_items A %d B %d, '
                          . 'converged %s s after', $run, $r->{rps},
                          $s1->{buffer_overflows},
                          $s1->{reconnects} - $s0->{reconnects},
                          $s1->{link_state}, $b1->{link_state}, $ia, $ib,
                          defined $conv ? sprintf('%.2f', $conv) : 'never');
        progress($msg);
        note("NOT ok: $msg") unless $ok;
        stop_servers($a, $b);
    }
    for my $run (1 .. $P{runs}) {
        my $m = start_single("burst-ref-r$run", $REF);
        my $r = loadgen('ref burst', burst_args($m));
        put('burst', $run, 'ref', 'burst sets/s', $r->{rps});
        progress(sprintf('burst-ref-r%d: %.0f sets/s', $run, $r->{rps}));
        stop_servers($m);
    }
}

# ---------------------------------------------------------------------
# 5. System calls per replicated set on A (strace -c -f -p A).
# ---------------------------------------------------------------------

sub strace_sets {
    my ($srv, $tag) = @_;
    my $out = "$LOG/strace-$tag.txt";
    my $st = spawn(['strace', '-c', '-f', '-o', $out, '-p', $srv->{pid}],
                   "$out.log", name => 'strace');
    my $deadline = time + 10;
    while (!attached("$out.log")) {
        die "$tag: strace did not attach:\n" . tail_log("$out.log")
            if time > $deadline || waitpid($st, WNOHANG) == $st;
        sleep 0.05;
    }
    my $r = loadgen("$tag sets", '-p', $srv->{port}, '-k', $P{sc_keys},
                    '-v', 1024, '-g', 0, '-c', 1, '-n', $P{sc_sets});
    stop_pid($st, 'INT');
    my %calls = strace_table($out);
    my $n = $r->{requests};
    return { total => $calls{total} / $n,
             map { $_ => $calls{$_} / $n } grep { $_ ne 'total' } keys %calls };
}

# The same count of sets with perf stat counting syscall tracepoints
# instead: no ptrace stop per call, so the server runs at its own speed.
# Returns undef when perf cannot count them here.
sub perf_sets {
    my ($srv, $tag) = @_;
    return undef unless $HAVE_PERF;
    my $out = "$LOG/perf-$tag.txt";
    my $pf = spawn(['perf', 'stat', '-x', ',', '-o', $out,
                    '-e', join(',', @PERF_EVENTS), '-p', $srv->{pid}],
                   "$out.log", name => 'perf');
    sleep 0.5;
    if (waitpid($pf, WNOHANG) == $pf) {
        delete $LIVE{$pf};
        note("perf stat failed, no perf cross-check:\n" . tail_log("$out.log"));
        $HAVE_PERF = 0;
        return undef;
    }
    my $r = loadgen("$tag sets", '-p', $srv->{port}, '-k', $P{sc_keys},
                    '-v', 1024, '-g', 0, '-c', 1, '-n', $P{sc_sets});
    stop_pid($pf, 'INT');
    my %c;
    open(my $fh, '<', $out) or return undef;
    while (my $line = <$fh>) {
        my @f = split /,/, $line;
        next unless @f > 3 && $f[0] =~ /^\d+$/;
        (my $name = $f[2]) =~ s/^(raw_)?syscalls:sys_enter_?//;
        $c{$name || 'total'} = $f[0] / $r->{requests};
    }
    return $c{total} ? \%c : undef;
}

sub attached {
    my ($log) = @_;
    open(my $fh, '<', $log) or return 0;
    return scalar grep { /attached/ } <$fh>;
}

# syscall => calls, and total => calls, from a strace -c table.
sub strace_table {
    my ($file) = @_;
    my %c;
    open(my $fh, '<', $file) or die "$file: $!\n";
    while (my $line = <$fh>) {
        my @f = split ' ', $line;
        next unless @f >= 5 && $f[0] =~ /^[\d.]+$/;
        $c{$f[-1]} = $f[3];
    }
    die "$file: no total row\n" unless $c{total};
    return %c;
}

sub section_syscalls {
    progress("== syscalls: $P{sc_sets} 1 KB sets on 1 conn under strace "
             . "($P{runs} runs)");
    my $pair = start_pair('sc');
    preload($pair->{a}, $P{sc_keys}, 1024);
    wait_converged($pair, 10);
    my $m = start_single('sc-ref', $REF);
    preload($m, $P{sc_keys}, 1024);
    for my $run (1 .. $P{runs}) {
        my $b0 = stats($pair->{b}, 'replication')->{items_received};
        my $o = strace_sets($pair->{a}, "ours-r$run");
        wait_converged($pair, 10);
        my $got = stats($pair->{b}, 'replication')->{items_received} - $b0;
        note("sc-r$run: B received $got records for $P{sc_sets} sets")
            if $got < $P{sc_sets};
        my $f = strace_sets($m, "ref-r$run");
        my $po = perf_sets($pair->{a}, "ours-r$run");
        my $pr = perf_sets($m, "ref-r$run");
        if ($po && $pr) {
            put('syscalls', $run, 'ours', 'perf syscalls/set', $po->{total});
            put('syscalls', $run, 'ref', 'perf syscalls/set', $pr->{total});
            put('syscalls', $run, 'ours', "perf syscalls/set: $_", $po->{$_})
                for grep { $_ ne 'total' } keys %$po;
            progress(sprintf('sc-r%d: perf: %.3f syscalls/set on A (%s); '
                             . 'memcached %.3f', $run, $po->{total},
                             join(' ', map { sprintf('%s %.3f', $_,
                                                     $po->{$_}) }
                                  grep { $_ ne 'total' } sort keys %$po),
                             $pr->{total}));
        }
        put('syscalls', $run, 'ours', 'syscalls/set', $o->{total});
        put('syscalls', $run, 'ref', 'syscalls/set', $f->{total});
        for my $sc (sort keys %$o) {
            next if $sc eq 'total' || $o->{$sc} < 0.0005;
            put('syscalls', $run, 'ours', "syscalls/set: $sc", $o->{$sc});
        }
        progress(sprintf('sc-r%d: %.3f syscalls/set on A (%s); memcached '
                         . '%.3f', $run, $o->{total},
                         join(' ', map { sprintf('%s %.3f', $_, $o->{$_}) }
                              grep { $_ ne 'total' && $o->{$_} >= 0.0005 }
                              sort keys %$o), $f->{total}));
    }
    stop_servers($pair->{a}, $pair->{b}, $m);
}

# ---------------------------------------------------------------------
# 6. The cost of synchronous mode: a pair with -o repl_sync=1 against
#    the asynchronous pair and one memcached, on the set-heavy load.
# ---------------------------------------------------------------------

sub cost_args {
    my ($srv) = @_;
    return ('-p', $srv->{port}, '-k', $P{cost_keys}, '-v', $P{cost_value},
            '-g', $P{cost_get}, '-c', $P{cost_conns});
}

# Server CPU seconds of a target: both nodes of a pair.
sub target_cpu {
    my ($t) = @_;
    return sum0(map { proc_cpu($_->{pid}) } grep { defined } @$t{qw(a b)});
}

# One target of one round: fresh servers, the preload, a closed-loop run
# (ops/s, CPU per request, set latency), then the same load at a fixed
# rate (set latency without queueing).  Returns figure => value.
sub cost_target {
    my ($target, $run) = @_;
    my $t = $target eq 'ref'
          ? { a => start_single("cost-ref-r$run", $REF),
              name => "cost-ref-r$run" }
          : start_pair("cost-$target-r$run",
                       $target eq 'sync' ? ('-o', 'repl_sync=1') : ());
    my @srv = grep { defined } @$t{qw(a b)};
    preload($t->{a}, $P{cost_keys}, $P{cost_value});
    wait_converged($t, 30) if $t->{b};
    settle(@srv);
    my $s0 = $t->{b} ? stats($t->{a}, 'replication') : undef;
    my $dump = "$LOG/cost-$target-r$run.txt";
    my $cpu0 = target_cpu($t);
    my $r = loadgen("cost $target", cost_args($t->{a}),
                    '-d', $P{cost_secs}, '-O', $dump);
    # the pair's CPU includes B applying what A sent during the run
    wait_converged($t, 30) if $t->{b};
    my $cpu = target_cpu($t) - $cpu0;
    my $sets = dump_latencies($dump, undef, undef, 's');
    unlink $dump;           # about 10 MB per run, read once
    my %f = ('ops/s' => $r->{rps},
             'CPU us/request' => $cpu * 1e6 / $r->{requests},
             'set p50 us' => pct($sets, 0.5),
             'set p99 us' => pct($sets, 0.99));
    my $rdump = "$LOG/cost-$target-r$run-rate.txt";
    my $rr = loadgen("cost $target at $P{cost_rate}/s", cost_args($t->{a}),
                     '-r', $P{cost_rate}, '-d', $P{cost_rate_secs},
                     '-O', $rdump);
    note(sprintf('cost-%s-r%d: fixed-rate run reached %.0f of %d ops/s',
                 $target, $run, $rr->{rps}, $P{cost_rate}))
        if $rr->{rps} < 0.97 * $P{cost_rate};
    $sets = dump_latencies($rdump, undef, undef, 's');
    $f{'rate set p50 us'} = pct($sets, 0.5);
    $f{'rate set p99 us'} = pct($sets, 0.99);
    if ($target eq 'sync') {
        my $s1 = stats($t->{a}, 'replication');
        my %d = map { $_ => $s1->{$_} - $s0->{$_} }
                qw(sync_writes sync_timeouts sync_unlinked);
        $f{'sync timeouts+unlinked'} = $d{sync_timeouts}
                                       + $d{sync_unlinked};
        note("cost-sync-r$run: sync_mode $s1->{sync_mode}, sync_writes "
             . "+$d{sync_writes}, sync_timeouts +$d{sync_timeouts}, "
             . "sync_unlinked +$d{sync_unlinked}")
            if $s1->{sync_mode} ne 'on' || $d{sync_timeouts}
               || $d{sync_unlinked} || $d{sync_writes} == 0;
    }
    stop_servers(@srv);
    return \%f;
}

sub section_sync_cost {
    progress("== sync-cost: set-heavy ($P{cost_get} gets, "
             . "$P{cost_value} B, $P{cost_conns} conns), memcached / async "
             . "pair / sync pair ($P{cost_runs} rounds)");
    my @figs = ('ops/s', 'CPU us/request', 'set p50 us', 'set p99 us',
                'rate set p50 us', 'rate set p99 us');
    for my $run (1 .. $P{cost_runs}) {
        # rotate the order each round, so that a drift hits all three
        my @order = @COST[map { ($_ + $run - 1) % 3 } 0 .. 2];
        my %f;
        for my $tg (@order) {
            $f{$tg} = cost_target($tg, $run);
        }
        for my $tg (@COST) {
            put('sync-cost', $run, $tg, "cost $_", $f{$tg}{$_}) for @figs;
        }
        put('sync-cost', $run, 'sync', 'cost sync timeouts+unlinked',
            $f{sync}{'sync timeouts+unlinked'});
        for my $q (['sync', 'ref'], ['sync', 'async'], ['async', 'ref']) {
            my ($x, $y) = @$q;
            for my $fig (@figs) {
                my ($vx, $vy) = ($f{$x}{$fig}, $f{$y}{$fig});
                put('sync-cost', $run, "$x/$y", "cost $fig", $vx / $vy)
                    if defined $vx && defined $vy && $vy > 0;
            }
        }
        progress(sprintf('cost-r%d: %s', $run, join('; ', map {
            sprintf('%s %.0f ops/s, %.2f us CPU/req, set p50/p99 %.0f/%.0f '
                    . 'us, at %d/s %.0f/%.0f us', $COST_NAME{$_},
                    @{$f{$_}}{'ops/s', 'CPU us/request', 'set p50 us',
                              'set p99 us'}, $P{cost_rate},
                    @{$f{$_}}{'rate set p50 us', 'rate set p99 us'})
        } @order)));
    }
}

# ---------------------------------------------------------------------
# 7. Partial resync after a link cut, through a TCP relay.
# ---------------------------------------------------------------------

# The relay: a child process that listens on one port per target and
# forwards every connection, both ways, to that target on 127.0.0.1, so
# that the link of a pair can be cut while both nodes keep running.  The
# script talks to it over a socketpair, one line per command, answered
# before relay() returns:
#   cut       close every relayed connection; close new ones at once
#   restore   forward again
#   stat      "first=<CLOCK_MONOTONIC s of the first connection forwarded
#             since the last restore, or 0> accepted=N bytes=N"
sub relay_start {
    my (@targets) = @_;
    my @ls = map {
        IO::Socket::INET->new(Listen => 64, LocalAddr => '127.0.0.1',
                              LocalPort => 0, Proto => 'tcp', ReuseAddr => 1)
            or die "relay: cannot listen: $!\n";
    } @targets;
    socketpair(my $mine, my $theirs, AF_UNIX, SOCK_STREAM, PF_UNSPEC)
        or die "socketpair: $!\n";
    my $pid = fork();
    die "fork: $!\n" unless defined $pid;
    if ($pid == 0) {
        # never run the parent's END or signal handlers: they kill servers
        %LIVE = ();
        $SIG{INT} = $SIG{TERM} = 'DEFAULT';
        close $mine;
        eval { relay_loop(\@ls, \@targets, $theirs) };
        print STDERR "relay: $@" if $@;
        POSIX::_exit($@ ? 1 : 0);
    }
    close $theirs;
    my @ports = map { $_->sockport } @ls;
    close $_ for @ls;
    $LIVE{$pid} = 'relay';
    $mine->autoflush(1);
    my $r = { pid => $pid, ctl => $mine, ports => \@ports };
    relay($r, 'stat');
    return $r;
}

sub relay {
    my ($r, $cmd) = @_;
    my $ctl = $r->{ctl};
    print $ctl "$cmd\n" or die "relay: $!\n";
    my $line = <$ctl> // die "relay: no answer to '$cmd'\n";
    chomp $line;
    return { $line =~ /(\w+)=([\d.]+)/g } if $cmd eq 'stat';
    die "relay: '$cmd': $line\n" unless $line eq 'ok';
    return 1;
}

sub relay_stop {
    my ($r) = @_;
    close $r->{ctl};            # the child exits when it reads EOF
    stop_pid($r->{pid});
}

# The relay's select loop; $ls->[i] forwards to port $targets->[i].
sub relay_loop {
    my ($ls, $targets, $ctl) = @_;
    my $cut = 0;
    my @links;                  # { fh => [a, b], buf => [a->b, b->a] }
    my %n = (first => 0, accepted => 0, bytes => 0);
    my $ctlbuf = '';

    $SIG{PIPE} = 'IGNORE';
    $_->blocking(0) for @$ls;
    while (1) {
        @links = grep { !$_->{dead} } @links;
        my ($rin, $win) = ('', '');
        vec($rin, fileno($_), 1) = 1 for $ctl, @$ls;
        for my $l (@links) {
            for my $i (0, 1) {
                my $o = 1 - $i;
                # read side i while less than 1 MB waits for side o
                vec($rin, fileno($l->{fh}[$i]), 1) = 1
                    if length $l->{buf}[$i] < (1 << 20);
                vec($win, fileno($l->{fh}[$o]), 1) = 1
                    if length $l->{buf}[$i];
            }
        }
        my ($rout, $wout) = ($rin, length $win ? $win : undef);
        my $nready = select($rout, $wout, undef, 1);
        next if $nready <= 0;
        if (vec($rout, fileno($ctl), 1)) {
            my $got = sysread($ctl, $ctlbuf, 4096, length $ctlbuf);
            return if !$got;    # the script is gone
            while ($ctlbuf =~ s/\A([^\n]*)\n//) {
                my $cmd = $1;
                if ($cmd eq 'cut') {
                    $cut = 1;
                    relay_drop($_) for @links;
                } elsif ($cmd eq 'restore') {
                    ($cut, $n{first}) = (0, 0);
                }
                syswrite($ctl, $cmd eq 'stat'
                         ? join(' ', map { "$_=$n{$_}" } sort keys %n) . "\n"
                         : "ok\n");
            }
        }
        for my $k (0 .. $#$ls) {
            next unless vec($rout, fileno($ls->[$k]), 1);
            while (my $c = $ls->[$k]->accept) {
                $n{accepted}++;
                my $t = $cut ? undef
                      : IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                              PeerPort => $targets->[$k],
                                              Proto => 'tcp');
                if (!$t) {
                    close $c;
                    next;
                }
                $n{first} ||= mono();
                $_->blocking(0) for $c, $t;
                push @links, { fh => [$c, $t], buf => ['', ''] };
            }
        }
        for my $l (@links) {
            relay_move($l, $rout, $wout, \%n);
        }
    }
}

# Move bytes on one relayed connection; when either side closes or
# fails, close both (what the other side had not taken yet is lost, as
# in a network cut).
sub relay_move {
    my ($l, $rout, $wout, $n) = @_;
    for my $i (0, 1) {
        my $fh = $l->{fh}[$i];
        next if $l->{dead} || !vec($rout, fileno($fh), 1);
        my $got = sysread($fh, $l->{buf}[$i], 262144, length $l->{buf}[$i]);
        next if !defined $got && ($!{EAGAIN} || $!{EINTR});
        return relay_drop($l) if !$got;
    }
    for my $i (0, 1) {
        my $fh = $l->{fh}[1 - $i];
        next if $l->{dead} || !length $l->{buf}[$i] || !defined $wout
                || !vec($wout, fileno($fh), 1);
        my $put = syswrite($fh, $l->{buf}[$i]);
        if (!defined $put) {
            next if $!{EAGAIN} || $!{EINTR};
            return relay_drop($l);
        }
        $n->{bytes} += $put;
        substr($l->{buf}[$i], 0, $put, '');
    }
}

sub relay_drop {
    my ($l) = @_;
    close $_ for @{$l->{fh}};
    $l->{dead} = 1;
}

# With no more writes: wait until both nodes are linked and B has applied
# A's whole stream (B peer_offset_applied = A backlog_end_offset).  Unlike
# wait_converged, this does not trust A's lag_items.
sub wait_applied {
    my ($pair, $limit) = @_;
    my $t0 = mono();
    my ($sa, $sb);
    while (mono() - $t0 < $limit) {
        ($sa, $sb) = repl_pair_stats($pair->{a}, $pair->{b});
        return mono() - $t0
            if $sa->{link_state} eq 'linked' && $sb->{link_state} eq 'linked'
               && $sb->{peer_offset_applied} >= $sa->{backlog_end_offset};
        sleep 0.01;
    }
    note("$pair->{name}: B applied $sb->{peer_offset_applied} of A's "
         . "$sa->{backlog_end_offset} stream bytes after ${limit}s");
    return undef;
}

# Both nodes' "stats replication", and the time it was read.
sub repl_pair_stats {
    my ($a, $b) = @_;
    return (stats($a, 'replication'), stats($b, 'replication'), mono());
}

sub section_psync {
    progress("== psync: sets at $P{psync_rate}/s on A ($P{psync_value} B), "
             . "link cut for $P{cut_secs} s ($P{runs} runs)");
    for my $run (1 .. $P{runs}) {
        my $o = psync_run($run);
        put('psync', $run, 'ours', "psync $_", $o->{$_}) for keys %$o;
        progress(sprintf('psync-r%d: %.0f bytes behind at restore; linked '
                         . '%.3f s after restore (first dial %.3f s), '
                         . 'caught up %.3f s after restore, %.3f s after '
                         . 'the link was back; partial_syncs +%d, '
                         . 'full_syncs +%d', $run,
                         map { $_ // -1 } @$o{'bytes behind', 'linked s',
                         'dial s', 'caught up s', 'link to caught up s',
                         'partial_syncs', 'full_syncs'}));
    }
}

# A pair whose links both run through one relay: A's -x points at the
# relay port that forwards to B's replication port, and B's at the one
# that forwards to A's.
sub start_relayed_pair {
    my ($name) = @_;
    my %p = map { $_ => free_port() } qw(pa pb ra rb);
    my $relay = relay_start($p{ra}, $p{rb});
    my ($xa, $xb) = @{$relay->{ports}};
    my $a = start_server("$name-A", node_cmd($OURS, $p{pa}, $p{ra}, $xb),
                         $p{pa}, 1);
    my $b = start_server("$name-B", node_cmd($OURS, $p{pb}, $p{rb}, $xa),
                         $p{pb}, 1);
    wait_ready($_, 30) for $a, $b;
    return { a => $a, b => $b, relay => $relay, name => $name };
}

# After the restore, poll both nodes every 5 ms until both are linked and
# B has applied A's stream up to $end (stream offsets: A's lag_items
# cannot tell, see bench/README.md), for at most 60 s.  Returns the
# times both were first seen linked and caught up (undef: never), and
# the last stats read.
sub watch_catch_up {
    my ($pair, $end) = @_;
    my $t0 = mono();
    my ($t_link, $sa, $sb, $t);
    while (mono() - $t0 < 60) {
        ($sa, $sb, $t) = repl_pair_stats($pair->{a}, $pair->{b});
        my $linked = $sa->{link_state} eq 'linked'
                     && $sb->{link_state} eq 'linked';
        $t_link //= $t if $linked;
        return ($t_link, $t, $sa, $sb)
            if $linked && $sb->{peer_offset_applied} >= $end;
        sleep 0.005;
    }
    return ($t_link, undef, $sa, $sb);
}

sub psync_run {
    my ($run) = @_;
    my $name = "psync-r$run";
    my $pair = start_relayed_pair($name);
    my ($a, $b, $relay) = @$pair{qw(a b relay)};
    preload($a, $P{psync_keys}, $P{psync_value});
    wait_converged($pair, 30);
    my $dump = "$LOG/$name-sets.txt";
    my $bg = start_bg('-p', $a->{port}, '-k', $P{psync_keys},
                      '-v', $P{psync_value}, '-g', 0,
                      '-c', $P{psync_conns}, '-r', $P{psync_rate},
                      '-d', $P{cut_secs} + 120, '-l', '-O', $dump);
    sleep $P{psync_warm};
    my ($a0, $b0) = repl_pair_stats($a, $b);
    note("$name: link $a0->{link_state}/$b0->{link_state} before the cut")
        if $a0->{link_state} ne 'linked' || $b0->{link_state} ne 'linked';
    relay($relay, 'cut');
    my $t_cut = mono();
    sleep 0.01 while mono() - $t_cut < $P{cut_secs};
    my ($ac, $bc) = repl_pair_stats($a, $b);
    note("$name: link $ac->{link_state}/$bc->{link_state} at the end of "
         . 'the cut, not down') if $ac->{link_state} eq 'linked';
    relay($relay, 'restore');
    my $t_res = mono();
    # from here the load goes on while B catches up
    my %o = ('bytes behind' => $ac->{backlog_end_offset}
                               - $bc->{peer_offset_applied});
    my ($t_link, $t_up, $sa, $sb) = watch_catch_up($pair,
                                                   $ac->{backlog_end_offset});
    my $rs = relay($relay, 'stat');
    my $bgr = finish_bg($bg, "$name sets");
    note(sprintf('%s: the set load reached %.0f of %d sets/s', $name,
                 $bgr->{rps}, $P{psync_rate}))
        if $bgr->{rps} < 0.97 * $P{psync_rate};
    wait_applied($pair, 30);
    my ($a1, $b1) = repl_pair_stats($a, $b);
    my ($da, $db) = map { stats($_, 'replication digest')->{digest} } $a, $b;
    %o = (%o,
          'cut bytes' => $ac->{backlog_end_offset} - $a0->{backlog_end_offset},
          'linked s' => defined $t_link ? $t_link - $t_res : undef,
          'dial s' => $rs->{first} ? $rs->{first} - $t_res : undef,
          'caught up s' => defined $t_up ? $t_up - $t_res : undef,
          'link to caught up s' => defined $t_up && $rs->{first}
                                   ? $t_up - $rs->{first} : undef,
          'partial_syncs' => $a1->{partial_syncs} - $a0->{partial_syncs},
          'full_syncs' => $a1->{full_syncs} - $a0->{full_syncs}
                          + $b1->{full_syncs} - $b0->{full_syncs},
          'B partial_syncs' => $b1->{partial_syncs} - $b0->{partial_syncs},
          'set p99 us' => $bgr->{p99},
          'ok' => (defined $t_up && $da eq $db
                   && $a1->{partial_syncs} > $a0->{partial_syncs}
                   && $a1->{full_syncs} == $a0->{full_syncs}
                   && $b1->{full_syncs} == $b0->{full_syncs}) ? 1 : 0);
    $o{'catch-up MB/s'} = $o{'bytes behind'} / 1e6 / $o{'link to caught up s'}
        if $o{'link to caught up s'};
    if (defined $t_up && $rs->{first}) {
        # the sets A took while it sent its backlog to B
        my $v = dump_latencies($dump, $rs->{first}, $t_up);
        $o{'catch-up sets'} = scalar @$v;
        $o{'catch-up set p50 us'} = pct($v, 0.5);
        $o{'catch-up set p99 us'} = pct($v, 0.99);
        $o{'catch-up set max us'} = pct($v, 1);
    }
    note("$name: not caught up 60 s after the restore: A link "
         . "$sa->{link_state}, B link $sb->{link_state}, B applied "
         . "$sb->{peer_offset_applied} of $ac->{backlog_end_offset}")
        unless defined $t_up;
    if (psync_notes($name, $a0, $b0, $a1, $b1, $ac, $o{'bytes behind'})) {
        # B's offset jumps at the start of a full copy: no catch-up time
        delete @o{grep { /caught up|catch-up/ } keys %o};
    }
    note("$name: digests differ after the resync: A $da, B $db")
        if $da ne $db;
    relay_stop($relay);
    stop_servers($a, $b);
    return \%o;
}

# Say so when the resync was not the partial one expected; true if a
# full sync happened.
sub psync_notes {
    my ($name, $a0, $b0, $a1, $b1, $ac, $behind) = @_;
    my $full = $a1->{full_syncs} != $a0->{full_syncs}
               || $b1->{full_syncs} != $b0->{full_syncs};
    note("$name: a FULL sync instead of a partial one (full_syncs A "
         . "$a0->{full_syncs} -> $a1->{full_syncs}, B $b0->{full_syncs} "
         . "-> $b1->{full_syncs}; A backlog_size $ac->{backlog_size}, "
         . "$behind bytes behind at the restore); its catch-up time is "
         . 'not reported') if $full;
    note("$name: A partial_syncs did not grow ($a0->{partial_syncs} -> "
         . "$a1->{partial_syncs})")
        if $a1->{partial_syncs} <= $a0->{partial_syncs};
    return $full;
}

# ---------------------------------------------------------------------
# 8. "stats replication digest" of 1M items, on both nodes of a pair.
# ---------------------------------------------------------------------

# One digest: wall time from the request to END, and the server's CPU.
sub time_digest {
    my ($srv) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $srv->{port}, Timeout => 60)
        or die "$srv->{name}: cannot connect: $!\n";
    my %h;
    my $cpu0 = proc_cpu($srv->{pid});
    my $t0 = mono();
    print $s "stats replication digest\r\n";
    while (my $line = <$s>) {
        last if $line =~ /^(END|ERROR|SERVER_ERROR|CLIENT_ERROR)/;
        $h{$1} = $2 if $line =~ /^STAT (\S+) (.*?)\r?$/;
    }
    my $t1 = mono();
    close $s;
    die "$srv->{name}: no digest in the reply\n" unless defined $h{digest};
    return { ms => ($t1 - $t0) * 1e3,
             cpu_ms => (proc_cpu($srv->{pid}) - $cpu0) * 1e3, %h };
}

sub section_digest {
    progress("== digest: $P{digest_items} x $P{sync_value} B on a linked "
             . "pair ($P{digest_runs} runs per node)");
    my $pair = start_pair('digest');
    my ($a, $b) = @$pair{qw(a b)};
    pipeline_preload($a, $P{digest_items}, $P{sync_value});
    wait_converged($pair, 60);
    settle($a, $b);
    for my $run (1 .. $P{digest_runs}) {
        my %d;
        # alternate which node goes first
        for my $n ($run % 2 ? qw(a b) : qw(b a)) {
            $d{$n} = time_digest($pair->{$n});
            put('digest', $run, 'ours', "digest ms $n", $d{$n}{ms});
            put('digest', $run, 'ours', "digest cpu ms $n", $d{$n}{cpu_ms});
            put('digest', $run, 'ours', "digest items $n",
                $d{$n}{digest_items});
        }
        my $same = $d{a}{digest} eq $d{b}{digest}
                   && $d{a}{digest_items} == $d{b}{digest_items};
        put('digest', $run, 'ours', 'digest equal', $same ? 1 : 0);
        note("digest-r$run: A $d{a}{digest} ($d{a}{digest_items} items) "
             . "!= B $d{b}{digest} ($d{b}{digest_items} items)")
            unless $same;
        progress(sprintf('digest-r%d: A %.0f ms, B %.0f ms, %s items, '
                         . '%s', $run, $d{a}{ms}, $d{b}{ms},
                         $d{a}{digest_items}, $same ? "equal ($d{a}{digest})"
                                                    : 'DIFFERENT'));
    }
    for my $run (1 .. $P{digest_runs}) {
        digest_under_load($a, $run);
    }
    stop_servers($a, $b);
}

# A digest of A while a GET load runs on A ($P{get_rate}/s, as in section
# 3): the latency of the GETs that started while the digest ran.
sub digest_under_load {
    my ($a, $run) = @_;
    my $dump = "$LOG/digest-r$run-gets.txt";
    my $bg = start_bg('-p', $a->{port}, '-k', $P{digest_items},
                      '-v', $P{sync_value}, '-g', 1, '-c', $P{get_conns},
                      '-r', $P{get_rate}, '-d', 60, '-O', $dump);
    sleep 0.3;
    my $t0 = mono();
    my $d = time_digest($a);
    my $t1 = mono();
    sleep 0.3;
    finish_bg($bg, "digest-r$run GETs");
    my $v = dump_latencies($dump, $t0, $t1);
    my $before = dump_latencies($dump, undef, $t0);
    put('digest', $run, 'ours', 'digest loaded ms', $d->{ms});
    put('digest', $run, 'ours', "digest GET $_->[0] us", pct($v, $_->[1]))
        for ['p50', 0.5], ['p99', 0.99], ['max', 1];
    put('digest', $run, 'ours', 'digest GET before p99 us',
        pct($before, 0.99));
    progress(sprintf('digest-r%d: under %d gets/s, A digest %.0f ms; GETs '
                     . 'started meanwhile: %d, p50 %.0f us, max %.0f us',
                     $run, $P{get_rate}, $d->{ms}, scalar @$v,
                     pct($v, 0.5) // -1, pct($v, 1) // -1));
}

# ---------------------------------------------------------------------
# Report.
# ---------------------------------------------------------------------

sub med {
    my ($figure, $target) = @_;
    return median(@{$R{$figure}{$target || 'ours'} || []});
}

sub verdict {
    my ($v, $op, $limit) = @_;
    return '' unless defined $v;
    my $ok = $op eq '<=' ? $v <= $limit : $op eq '<' ? $v < $limit
                                                     : $v >= $limit;
    return $ok ? 'met' : 'NOT met';
}

# The rows of sections 7 and 8 in the main table.
sub report_psync_digest {
    my ($rows, $row) = @_;
    # "k of n" runs where figure $fig is 1
    my $count = sub {
        my ($what, $fig) = @_;
        return unless exists $R{$fig};
        my @v = @{$R{$fig}{ours}};
        my $ok = grep { $_ } @v;
        push @$rows, sprintf('| %s | %d of %d | - | all | %s |', $what, $ok,
                             scalar @v, $ok == @v ? 'met' : 'NOT met');
    };
    $row->("partial resync after a $P{cut_secs} s link cut, with "
           . "$P{psync_rate} sets/s of $P{psync_value} B on A throughout: "
           . 'restore until both linked and B has applied all A wrote '
           . 'before the restore, s', '%.3f', 'psync caught up s');
    $row->('... of which: restore until the next redial passes the relay '
           . '/ from there until caught up, s', '%.3f',
           ['psync dial s', 'psync link to caught up s']);
    $row->('... restore until both nodes show link_state linked, s',
           '%.3f', 'psync linked s');
    $row->('... bytes behind at restore (A backlog_end_offset - B '
           . 'peer_offset_applied); stream bytes written during the cut',
           '%.0f', ['psync bytes behind', 'psync cut bytes']);
    $row->('... catch-up rate, MB/s (bytes behind / time from the redial '
           . 'to caught up)', '%.1f', 'psync catch-up MB/s');
    $count->('... runs where A partial_syncs grew, full_syncs stayed on '
             . 'both nodes, and the digests were equal after', 'psync ok');
    $row->('... sets on A from the redial until caught up: p50 / p99 / '
           . 'max, us; count', '%.0f', ['psync catch-up set p50 us',
           'psync catch-up set p99 us', 'psync catch-up set max us',
           'psync catch-up sets']);
    $row->('... set p99 on A over the whole run (cut and catch-up '
           . 'included), us', '%.0f', 'psync set p99 us');
    $row->("stats replication digest of $P{digest_items} x $P{sync_value} B "
           . 'items on a linked, idle pair, ms, A / B', '%.0f',
           ['digest ms a', 'digest ms b']);
    $row->('... server CPU per digest, ms, A / B', '%.0f',
           ['digest cpu ms a', 'digest cpu ms b']);
    $row->('... digest_items, A / B', '%.0f',
           ['digest items a', 'digest items b']);
    $count->('... runs where A and B gave the same digest', 'digest equal');
    $row->("... with $P{get_rate} GETs/s on A ($P{get_conns} conns): "
           . 'digest of A, ms; GETs started during it, p50 / p99 / max, '
           . 'us', '%.0f', ['digest loaded ms', 'digest GET p50 us',
           'digest GET p99 us', 'digest GET max us']);
    $row->('... GET p99 on A in the 0.3 s before the digest, us', '%.0f',
           'digest GET before p99 us');
}

# Section 6 as its own table: three targets and per-round ratios.
sub report_cost {
    my @t = ('', "### Synchronous mode: memcached, an asynchronous pair and "
             . 'a pair with -o repl_sync=1',
             '', "Set-heavy load: $P{cost_get} gets, $P{cost_value} B, "
             . "$P{cost_keys} keys, $P{cost_conns} conns, on A; medians of "
             . "$P{cost_runs} rounds, ratios are medians of the per-round "
             . 'ratios.', '',
             '| figure | memcached | async pair | sync pair | sync / '
             . 'memcached | sync / async | async / memcached |',
             '|---|---:|---:|---:|---:|---:|---:|');
    my @figs = (['ops/s', "ops/s, closed loop, $P{cost_secs} s", '%.0f'],
                ['CPU us/request', 'server CPU per request, us (pair: both '
                 . 'nodes)', '%.2f'],
                ['set p50 us', 'set p50, closed loop, us', '%.0f'],
                ['set p99 us', 'set p99, closed loop, us', '%.0f'],
                ['rate set p50 us', "set p50 at $P{cost_rate} requests/s, "
                 . 'us', '%.0f'],
                ['rate set p99 us', "set p99 at $P{cost_rate} requests/s, "
                 . 'us', '%.0f']);
    for my $f (@figs) {
        my ($fig, $what, $fmt) = @$f;
        push @t, sprintf('| %s | %s | %s | %s | %s | %s | %s |', $what,
                         map({ fmt($fmt, med("cost $fig", $_)) } @COST),
                         map({ fmt('%.3f', med("cost $fig", $_)) }
                             qw(sync/ref sync/async async/ref)));
    }
    my $to = sum0(@{$R{'cost sync timeouts+unlinked'}{sync} || []});
    push @t, '', "Sync pair: sync_timeouts + sync_unlinked over all rounds: "
             . "$to.";
    return @t;
}

sub report {
    my ($secs, $quick) = @_;
    my @rows;
    # One table row: the medians of one or more figures ("a / b"); the
    # verdict applies to $vfig, by default the first.
    my $row = sub {
        my ($what, $f, $figs, $ref_figs, $target, $op, $limit, $vfig) = @_;
        $figs = [$figs] unless ref $figs;
        $ref_figs = [$ref_figs] if defined $ref_figs && !ref $ref_figs;
        return unless grep { exists $R{$_} } @$figs, @{$ref_figs || []};
        my $cell = sub {
            my ($target, @f) = @_;
            return join(' / ', map { fmt($f, med($_, $target)) } @f);
        };
        push @rows, sprintf('| %s | %s | %s | %s | %s |', $what,
                            $cell->('ours', @$figs),
                            $ref_figs ? $cell->('ref', @$ref_figs) : '-',
                            $target // '',
                            $op ? verdict(med($vfig // $figs->[0]), $op,
                                          $limit) : '');
    };
    $row->('max ops/s, 90/10 get/set, 1 KB, 50 conns (pair: load on A)',
           '%.0f', 'max ops/s', 'max ops/s');
    $row->('half load: ops/s on A (memcached: the same rate)', '%.0f',
           'half-load ops/s', 'half-load ops/s');
    $row->('half load: client p99, us', '%.0f', 'half-load p99 us',
           'half-load p99 us');
    $row->('... client p99 at half load while the lag probe polls B, us',
           '%.0f', 'half-load+probe p99 us');
    $row->('replication lag at half load p50 / p99 / max, us (set '
           . 'written to A until B returns it; memcached: the same probe '
           . 'setting and reading one node, i.e. two round trips)', '%.0f',
           ['lag p50 us', 'lag p99 us', 'lag max us'],
           ['lag p50 us', 'lag p99 us', 'lag max us'],
           'p99 <= 300 (repcached: 550)', '<=', 300, 'lag p99 us');
    $row->('... with the load flat out instead (diagnostic), p50 / p99 / '
           . 'max, us; ops/s', '%.0f', ['full-load lag p50 us',
           'full-load lag p99 us', 'full-load lag max us',
           'full-load ops/s']);
    $row->('... counted from A\'s STORED instead, p50 / p99, us', '%.0f',
           ['ack lag p50 us', 'ack lag p99 us'],
           ['ack lag p50 us', 'ack lag p99 us']);
    $row->('... of which the probe\'s set on A until STORED, p50 / p99, '
           . 'us', '%.0f', ['probe set p50 us', 'probe set p99 us'],
           ['probe set p50 us', 'probe set p99 us']);
    $row->('... with no other load, p50 / p99, us', '%.0f',
           ['idle lag p50 us', 'idle lag p99 us']);
    $row->("full resync of $P{sync_items} x $P{sync_value} B items, "
           . 'items/s (A: last_sync_items / last_sync_ms)', '%.0f',
           'sync items/s (A walk)', undef, '>= 1,000,000', '>=', 1e6);
    $row->('... items/s from B\'s start to its client port opening',
           '%.0f', 'sync items/s (B start to open)');
    $row->('... A last_sync_ms; B curr_items after', '%.0f',
           ['sync ms (A walk)', 'B curr_items']);
    $row->("GET p99 on A during the resync, us ($P{get_rate} gets/s, "
           . "$P{get_conns} conns; memcached: same load, no resync)", '%.0f',
           'GET during sync p99 us', 'GET no sync p99 us', '< 2000', '<',
           2000);
    $row->('... p50 / p99.9 / max during the resync, us (memcached: p50)',
           '%.0f', ['GET during sync p50 us', 'GET during sync p999 us',
                    'GET during sync max us'], 'GET no sync p50 us');
    $row->('... GET p50 / p99 on A, linked, no resync, us', '%.0f',
           ['GET no sync p50 us', 'GET no sync p99 us']);
    $row->('... CPU time of the kernel\'s kdamond threads from B\'s start '
           . 'to its client port opening, ms (machine noise, see README)',
           '%.1f', 'kdamond ms during sync');
    $row->("1 KB set burst, sets/s ($P{burst_conns} conns, "
           . "$P{burst_secs} s; pair: on A)", '%.0f', 'burst sets/s',
           'burst sets/s', '140,000 (issue)', '>=', 140_000);
    if (exists $R{'burst ok'}) {
        my $runs = @{$R{'burst ok'}{ours}};
        my $ok = grep { $_ } @{$R{'burst ok'}{ours}};
        push @rows, sprintf('| ... runs with link linked, buffer_overflows '
                            . '0, reconnects unchanged, B curr_items = A '
                            . '| %d of %d | - | all | %s |', $ok, $runs,
                            $ok == $runs ? 'met' : 'NOT met');
    }
    $row->('... curr_items A / B after the burst', '%.0f',
           ['burst A curr_items', 'burst B curr_items']);
    $row->('... B converged (same curr_items, nothing left to send) after '
           . 'the burst ended, s', '%.2f', 'burst converge s');
    $row->('syscalls per 1 KB set on A (1 conn, strace -c -f -p A)',
           '%.3f', 'syscalls/set', 'syscalls/set', '<= 3.5', '<=', 3.5);
    my @split = grep { /^syscalls\/set: / } sort keys %R;
    if (@split) {
        push @rows, sprintf('| ... of which | %s | | | |',
            join(', ', map { sprintf('%s %.3f', s/^syscalls\/set: //r,
                                     med($_)) } @split));
    }
    $row->('syscalls per 1 KB set on A, counted by perf stat (syscall '
           . 'tracepoints, no ptrace)', '%.3f', 'perf syscalls/set',
           'perf syscalls/set', '<= 3.5', '<=', 3.5);
    @split = grep { /^perf syscalls\/set: / } sort keys %R;
    if (@split) {
        push @rows, sprintf('| ... of which | %s | | | |',
            join(', ', map { sprintf('%s %.3f', s/^perf syscalls\/set: //r,
                                     med($_)) } @split));
    }
    report_psync_digest(\@rows, $row);
    $row->("restart of one node of a pair holding $P{sync_items} x "
           . "$P{sync_value} B, $P{restart_rate} sets/s on its peer, down "
           . "$P{restart_down} s: its start until its client port opens, s, "
           . 'warm (-e, partial resync) / cold (kill -9, full copy)', '%.3f',
           ['warm start to open s', 'full start to open s']);
    $row->('... link bytes its peer sent from the stop until then, warm / '
           . 'cold', '%.0f', ['warm peer bytes', 'full peer bytes']);
    $row->('... records its catch-up carried (warm); full copies sent, '
           . 'warm / cold', '%.0f', ['warm catch-up records',
           'warm full copies', 'full full copies']);
    $row->('... the clean stop (memory file written), s', '%.3f',
           'warm stop s');
    my @md = ('# paircached replication benchmark', '',
        sprintf('%s, %s, %d run(s) per figure (median; sync-cost %d '
                . 'rounds, digest %d runs), %.0f s, %s',
                strftime('%Y-%m-%d %H:%M', localtime),
                $quick ? 'quick mode' : 'default mode', $P{runs},
                $P{cost_runs}, $P{digest_runs}, $secs,
                `uname -sr` =~ s/\s+$//r),
        sprintf('- ours: a pair of `%s` (%s, built %s), both nodes on CPU '
                . '%d: `%s`', $OURS, version_of($OURS),
                strftime('%Y-%m-%d %H:%M', localtime((stat $OURS)[9])),
                $SERVER_CPU,
                join(' ', '-p PA', @COMMON, '-o repl_port=RA',
                     '-x 127.0.0.1:RB')),
        sprintf('- memcached: one `%s` (%s), same settings', $REF,
                version_of($REF)),
        '- load generators and strace on CPU 1'
        . (@PROBE_PREFIX ? '; lag probes at real-time priority (chrt -f 1)'
                         : '; lag probes at normal priority'),
        '- other processes on the machine used '
        . join(', ', map { sprintf('%.0f%% of a CPU during %s',
                                   100 * ($FOREIGN{$_} // 0), $_) }
               grep { exists $FOREIGN{$_} } @SECTIONS)
        . ' (/proc/stat busy time minus ours)');
    push @md, '', '| figure | paircached pair | memcached (1 node) | target '
              . '| verdict |', '|---|---:|---:|---|---|', @rows if @rows;
    push @md, report_cost() if exists $R{'cost ops/s'};
    push @md, '', 'Notes:', map { "- $_" } @NOTES if @NOTES;
    my $text = join("\n", @md) . "\n";
    print $text;
    open(my $fh, '>', "$OUT/repl.md") or die "$OUT/repl.md: $!\n";
    print $fh $text;
    close $fh;
    open($fh, '>', "$OUT/repl-runs.tsv") or die "$OUT/repl-runs.tsv: $!\n";
    print $fh "section\trun\ttarget\tfigure\tvalue\n", map { "$_\n" } @RUNS;
    close $fh;
    progress("wrote $OUT/repl.md and $OUT/repl-runs.tsv");
}
