#!/usr/bin/perl
# repl.pl: replication figures of a paircached pair, run by bench/repl.sh
# (see bench/README.md, "Replication").  Owns: starting pairs and single
# servers, the four replication measurements (lag, full resync with the
# GET latency during it, a set burst, syscalls per replicated set), the
# comparison with Debian's memcached, the table.  Not: generating load
# (loadgen.c) or building it (repl.sh).  repl.sh runs this script on
# CPU 1; every server is started on CPU 0 with taskset.
use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use Getopt::Long;
use IO::Socket::INET;
use POSIX qw(:sys_wait_h strftime);
use Time::HiRes qw(time sleep clock_gettime CLOCK_MONOTONIC);

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
);
my %QUICK = (runs => 1, max_secs => 2, probes => 1000, idle_probes => 500,
             full_probes => 100, full_probe_secs => 3,
             burst_secs => 5, sc_sets => 5_000, base_secs => 1);
my @SECTIONS = qw(lag resync burst syscalls);

my %LIVE;               # pid => name, killed at exit
my @NOTES;              # printed under the table
my %R;                  # figure => target => [per-run values]
my @RUNS;               # "section\trun\ttarget\tfigure\tvalue"
my %FOREIGN;            # section => CPU share used by other processes
my $HAVE_PERF = system('command -v perf >/dev/null') == 0;
my @PERF_EVENTS = qw(raw_syscalls:sys_enter syscalls:sys_enter_epoll_wait
                     syscalls:sys_enter_read syscalls:sys_enter_sendmsg
                     syscalls:sys_enter_sendto);

main();
exit 0;

sub usage {
    print STDERR <<"EOF";
usage: bench/repl.sh [--quick] [--runs N] [--only lag,resync,burst,syscalls]
  --quick   one run of each, shorter (about 1 minute)
  --runs    runs per figure (default 3; the median is shown)
  --only    run only these sections
  --wait-quiet SECS  before each section, wait up to SECS (15) for the
            other processes on the machine to use under 10% of a CPU
env: MEMCACHED_BIN (ours), REFERENCE_BIN (default /usr/bin/memcached)
EOF
    exit 2;
}

sub main {
    my %opt = (quick => 0, runs => 0, only => '', 'wait-quiet' => 15);
    GetOptions(\%opt, 'quick', 'runs=i', 'only=s', 'wait-quiet=i', 'help')
        or usage();
    usage() if $opt{help};
    %P = (%P, %QUICK) if $opt{quick};
    $P{runs} = $opt{runs} if $opt{runs} > 0;
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
               burst => \&section_burst, syscalls => \&section_syscalls);
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

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, Proto => 'tcp')
        or die "cannot bind a free port: $!\n";
    my $port = $s->sockport;
    close $s;
    return $port;
}

sub spawn {
    my ($cmd, $log, $name) = @_;
    my $pid = fork();

    die "fork: $!\n" unless defined $pid;
    if ($pid == 0) {
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>', $log) or POSIX::_exit(127);
        open(STDERR, '>&', \*STDOUT) or POSIX::_exit(127);
        exec { $cmd->[0] } @$cmd or POSIX::_exit(127);
    }
    $LIVE{$pid} = $name;
    return $pid;
}

sub stop_pid {
    my ($pid, $sig) = @_;
    return unless $pid && $LIVE{$pid};
    kill $sig // 'TERM', $pid;
    my $deadline = time + 20;
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) != 0) {
            delete $LIVE{$pid};
            return;
        }
        sleep 0.02;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
    delete $LIVE{$pid};
}

sub cleanup {
    for my $pid (keys %LIVE) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
    %LIVE = ();
}

END { cleanup() }

sub tail_log {
    my ($file) = @_;
    open(my $fh, '<', $file) or return "(no log)\n";
    my @l = <$fh>;
    return join('', @l[($#l > 9 ? $#l - 9 : 0) .. $#l]);
}

# Wait until the server answers "version" (loadgen -W), or die.
sub wait_ready {
    my ($srv, $limit) = @_;
    my $deadline = time + $limit;
    while (time < $deadline) {
        if (waitpid($srv->{pid}, WNOHANG) == $srv->{pid}) {
            delete $LIVE{$srv->{pid}};
            die "$srv->{name} exited at start-up:\n" . tail_log($srv->{log});
        }
        return if system("'$LOADGEN' -p $srv->{port} -W 0.5 2>/dev/null")
                  == 0;
    }
    die "$srv->{name} did not answer in ${limit}s:\n" . tail_log($srv->{log});
}

# A node of a pair (ours) or a single server (ours or the reference).
sub node_cmd {
    my ($bin, $port, $rport, $peer_rport, @extra) = @_;
    my @cmd = ('taskset', '-c', $SERVER_CPU, $bin, '-p', $port, @COMMON);
    push @cmd, '-o', "repl_port=$rport", '-x', "127.0.0.1:$peer_rport"
        if $rport;
    return [@cmd, @extra];
}

sub start_server {
    my ($name, $cmd, $port, $nowait) = @_;
    my $log = "$LOG/$name.log";
    my %srv = (name => $name, port => $port, log => $log, cmd => $cmd);
    $srv{t_spawn} = mono();
    $srv{pid} = spawn($cmd, $log, $name);
    wait_ready(\%srv, 30) unless $nowait;
    return \%srv;
}

sub start_single {
    my ($name, $bin) = @_;
    my $port = free_port();
    return start_server($name, node_cmd($bin, $port), $port);
}

# Both nodes first, then wait: a node's client port opens only after its
# first sync with the other.
sub start_pair {
    my ($name) = @_;
    my %p = map { $_ => free_port() } qw(pa pb ra rb);
    my $a = start_server("$name-A", node_cmd($OURS, $p{pa}, $p{ra}, $p{rb}),
                         $p{pa}, 1);
    my $b = start_server("$name-B", node_cmd($OURS, $p{pb}, $p{rb}, $p{ra}),
                         $p{pb}, 1);
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
    open(my $fh, '-|', $LOADGEN, '-T', 120, @args)
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
# in [from, to] (CLOCK_MONOTONIC seconds; undef = unbounded), sorted.
sub dump_latencies {
    my ($file, $from, $to) = @_;
    open(my $fh, '<', $file) or die "$file: $!\n";
    my @v;
    while (my $line = <$fh>) {
        my ($t, $us) = split ' ', $line;
        $t /= 1e6;
        next if defined $from && $t < $from;
        next if defined $to && $t > $to;
        push @v, $us;
    }
    return [sort { $a <=> $b } @v];
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
        my $idle = loadgen('idle probe', '-p', $a->{port}, '-Y', $b->{port},
                           '-n', $P{idle_probes}, '-i', $P{probe_gap_us});
        my $rate = int($max->{rps} / 2);
        push @half, $rate;
        my $bg = start_bg(lag_args($a), '-r', $rate, '-d', 60, '-l');
        sleep 0.5;
        my $pr = loadgen('probe', '-p', $a->{port}, '-Y', $b->{port},
                         '-n', $P{probes}, '-i', $P{probe_gap_us});
        my $bgr = finish_bg($bg, 'half-load background');
        note(sprintf('lag-r%d: background load reached %.0f of %d ops/s',
                     $run, $bgr->{rps}, $rate))
            if $bgr->{rps} < 0.97 * $rate;
        # Diagnostic: the same probe while the load runs flat out.
        $bg = start_bg(lag_args($a), '-d', 60);
        sleep 0.5;
        my $full = loadgen('full-load probe', '-p', $a->{port},
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
        put('lag', $run, 'ours', 'probe set p50 us', $pr->{set_p50_us});
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
        # B starts empty; its client port opens once it has received
        # SYNCED from A, i.e. when the whole copy has arrived.
        $b = start_server("sync-B-r$run", node_cmd($OURS, $p{pb}, $p{rb},
                          $p{ra}), $p{pb}, 1);
        my $t_open = wait_open($b, 60);
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
                         . '%.0f us linked idle', $run,
                         $s1->{last_sync_items}, $s1->{last_sync_ms}, $secs,
                         pct($during, 0.99) // -1, scalar @$during,
                         pct($base, 0.99)));
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
                   "$out.log", 'strace');
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
                   "$out.log", 'perf');
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
# Report.
# ---------------------------------------------------------------------

sub median {
    my @v = sort { $a <=> $b } grep { defined } @_;
    return undef unless @v;
    return $v[$#v / 2] if @v % 2;
    return ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

sub med {
    my ($figure, $target) = @_;
    return median(@{$R{$figure}{$target || 'ours'} || []});
}

sub fmt {
    my ($f, $v) = @_;
    return defined $v ? sprintf($f, $v) : 'n/a';
}

sub verdict {
    my ($v, $op, $limit) = @_;
    return '' unless defined $v;
    my $ok = $op eq '<=' ? $v <= $limit : $op eq '<' ? $v < $limit
                                                     : $v >= $limit;
    return $ok ? 'met' : 'NOT met';
}

sub version_of {
    my ($bin) = @_;
    my $v = `timeout 2 '$bin' -V 2>/dev/null`;
    chomp $v;
    return $v || '?';
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
           . 'written to A until B returns it)', '%.0f',
           ['lag p50 us', 'lag p99 us', 'lag max us'], undef,
           'p99 <= 300 (repcached: 550)', '<=', 300, 'lag p99 us');
    $row->('... with the load flat out instead (diagnostic), p50 / p99 / '
           . 'max, us; ops/s', '%.0f', ['full-load lag p50 us',
           'full-load lag p99 us', 'full-load lag max us',
           'full-load ops/s']);
    $row->('... counted from A\'s STORED instead, p50 / p99, us', '%.0f',
           ['ack lag p50 us', 'ack lag p99 us']);
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
    my @md = ('# paircached replication benchmark', '',
        sprintf('%s, %s, %d run(s) per figure (median), %.0f s, %s',
                strftime('%Y-%m-%d %H:%M', localtime),
                $quick ? 'quick mode' : 'default mode', $P{runs}, $secs,
                `uname -sr` =~ s/\s+$//r),
        sprintf('- ours: a pair of `%s` (%s, built %s), both nodes on CPU '
                . '%d: `%s`', $OURS, version_of($OURS),
                strftime('%Y-%m-%d %H:%M', localtime((stat $OURS)[9])),
                $SERVER_CPU,
                join(' ', '-p PA', @COMMON, '-o repl_port=RA',
                     '-x 127.0.0.1:RB')),
        sprintf('- memcached: one `%s` (%s), same settings', $REF,
                version_of($REF)),
        '- load generators and strace on CPU 1',
        '- other processes on the machine used '
        . join(', ', map { sprintf('%.0f%% of a CPU during %s',
                                   100 * ($FOREIGN{$_} // 0), $_) }
               grep { exists $FOREIGN{$_} } @SECTIONS)
        . ' (/proc/stat busy time minus ours)', '',
        '| figure | paircached pair | memcached (1 node) | target | verdict |',
        '|---|---:|---:|---|---|', @rows);
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
