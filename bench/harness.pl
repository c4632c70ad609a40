#!/usr/bin/perl
# harness.pl: runs the loads of loads.pl against the targets of
# targets.pl, alternating targets round by round, and prints medians and
# ours/reference ratios as a Markdown table.  Owns: starting and stopping
# servers, CPU and RSS sampling, the strace and callgrind runs, the
# tables.  Not: generating load (loadgen.c) or building it (run.sh).
use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use Getopt::Long;
use IO::Socket::INET;
use POSIX qw(:sys_wait_h strftime);
use Time::HiRes qw(time sleep);
use lib dirname(abs_path($0));
use BenchProc;

my $BENCH = dirname(abs_path($0));
my $OUT = "$BENCH/out";
my $LOADGEN = "$BENCH/loadgen";
my $SERVER_CPU = 0;         # taskset CPU of every server
my $CLIENT_CPU = 1;         # taskset CPU of loadgen and strace
my $PRELOAD_CONNS = 50;     # connections used to preload the key space
my $VALGRIND_FD_RESERVE = 12;   # fds valgrind keeps below the hard limit

# Rounds and lengths for the two modes; --rounds overrides all rounds.
my %MODES = (
    default => {
        rounds => 5, duration => 5, strace_count => 10_000,
        cg_rounds => 3, rss_rounds => 3,
    },
    quick => {
        rounds => 2, duration => 2, strace_count => 4_000,
        cg_rounds => 1, rss_rounds => 1,
    },
);

# Metrics of each kind: name, printf format.
my %METRICS = (
    throughput => [
        ['ops/s', '%.0f'],
        ['CPU us/request', '%.3f'],
        ['syscalls/request', '%.3f'],
    ],
    callgrind => [],        # 'instructions/get' or '/set', added per load
    rss => [
        ['RSS bytes/value byte', '%.3f'],
        ['RSS MiB', '%.0f'],
    ],
);

my @NOTES;                  # warnings printed under the table
my %RESULTS;                # load => metric => target => [values]
my %RATIOS;                 # load => metric => [per-round ratios]
my @ROUNDS;                 # "load\tround\ttarget\tmetric\tvalue" lines
my %VALGRIND_NOFILE;        # server binary => fd limit that worked
my $CLK_TCK = `getconf CLK_TCK` + 0 || 100;

main();
exit 0;

sub usage {
    print STDERR <<"EOF";
usage: bench/run.sh [--quick] [--only LOAD[,LOAD]] [--rounds N] [--list]
  --quick    fewer and shorter rounds (whole run under 3 minutes)
  --only     run only these loads (names from --list)
  --rounds   rounds for every load, overriding the mode
  --list     list the loads and exit
env: MEMCACHED_BIN (ours), REFERENCE_BIN (default /usr/bin/memcached)
EOF
    exit 2;
}

sub main {
    my %opt = (quick => 0, only => '', rounds => 0, list => 0);

    GetOptions(\%opt, 'quick', 'only=s', 'rounds=i', 'list', 'help')
        or usage();
    usage() if $opt{help};
    my $loads = do_file("$BENCH/loads.pl");
    my $target_list = do_file("$BENCH/targets.pl");
    my $targets = { map { $_->{name} => $_ } @$target_list };
    if ($opt{list}) {
        printf "%-14s %-11s %s\n", $_->{name}, $_->{kind}, $_->{desc}
            for @$loads;
        return;
    }
    my $mode = { %{$MODES{$opt{quick} ? 'quick' : 'default'}} };
    if ($opt{rounds} > 0) {
        $mode->{$_} = $opt{rounds} for qw(rounds cg_rounds rss_rounds);
    }
    my @run = select_loads($loads, $opt{only});
    $SIG{INT} = $SIG{TERM} = sub { cleanup(); exit 130; };
    remove_tree("$OUT/logs", "$OUT/strace", "$OUT/callgrind");
    make_path("$OUT/logs", "$OUT/strace", "$OUT/callgrind");
    my $t0 = time;
    for my $load (@run) {
        fill_defaults($load);
        run_load($load, $targets, $mode);
    }
    report(\@run, $target_list, $mode, $opt{quick} ? 'quick' : 'default',
           time - $t0);
}

sub do_file {
    my ($file) = @_;
    my $v = do $file;

    die "$file: $@" if $@;
    die "$file: $!\n" unless defined $v;
    return $v;
}

sub select_loads {
    my ($loads, $only) = @_;
    return @$loads unless $only;
    my %by_name = map { $_->{name} => $_ } @$loads;
    my @picked;
    for my $name (split /,/, $only) {
        die "unknown load '$name'; try --list\n" unless $by_name{$name};
        push @picked, $by_name{$name};
    }
    return @picked;
}

sub fill_defaults {
    my ($load) = @_;
    my %def = (keys => 100_000, value => 1024, get => 0.9, width => 1,
               conns => 50, proto => 'text', limits => {},
               targets => ['reference', 'ours']);

    $load->{$_} //= $def{$_} for keys %def;
    if ($load->{kind} eq 'callgrind') {
        my $op = $load->{get} >= 0.5 ? 'get' : 'set';
        $load->{metrics} = [["instructions/$op", '%.0f']];
    } else {
        $load->{metrics} = $METRICS{$load->{kind}}
            or die "$load->{name}: unknown kind $load->{kind}\n";
    }
}

sub progress {
    print STDERR strftime('%H:%M:%S ', localtime), @_, "\n";
}

sub note {
    my ($msg) = @_;
    push @NOTES, $msg;
    progress("NOTE: $msg");
}

# ---------------------------------------------------------------------
# Rounds.  Round r runs the two targets in the order A B when r is odd
# and B A when r is even, so a slow drift of the machine hits both
# alike.  Every round starts fresh servers and preloads the key space.
# ---------------------------------------------------------------------

sub run_load {
    my ($load, $targets, $mode) = @_;
    my %rounds = (throughput => $mode->{rounds},
                  callgrind => $mode->{cg_rounds},
                  rss => $mode->{rss_rounds});
    my $n = $rounds{$load->{kind}};
    my @names = @{$load->{targets}};

    for my $name (@names) {
        die "$load->{name}: no target '$name' in targets.pl\n"
            unless $targets->{$name};
    }
    progress("== $load->{name}: $load->{desc} ($n rounds)");
    for my $r (1 .. $n) {
        my @order = $r % 2 ? @names : reverse @names;
        my %got;
        for my $name (@order) {
            my $tag = "$load->{name}-r$r-$name";
            $got{$name} = measure($load, $targets->{$name}, $mode, $tag);
            push @ROUNDS, map {
                join("\t", $load->{name}, $r, $name, $_, $got{$name}{$_})
            } sort keys %{$got{$name}};
        }
        record($load, \@names, \%got);
    }
}

sub record {
    my ($load, $names, $got) = @_;
    my ($ta, $tb) = @$names;

    for my $m (@{$load->{metrics}}) {
        my $metric = $m->[0];
        push @{$RESULTS{$load->{name}}{$metric}{$_}}, $got->{$_}{$metric}
            for @$names;
        my ($va, $vb) = ($got->{$ta}{$metric}, $got->{$tb}{$metric});
        push @{$RATIOS{$load->{name}}{$metric}}, $vb / $va
            if defined $va && defined $vb && $va > 0;
    }
}

sub measure {
    my ($load, $target, $mode, $tag) = @_;
    my $kind = $load->{kind};

    return measure_throughput($load, $target, $mode, $tag)
        if $kind eq 'throughput';
    return measure_callgrind($load, $target, $mode, $tag)
        if $kind eq 'callgrind';
    return measure_rss($load, $target, $tag);
}

# Throughput: a timed run for ops/s and CPU, then, on the same server, a
# run of a fixed request count under strace -c for system calls.
sub measure_throughput {
    my ($load, $target, $mode, $tag) = @_;
    my $procs = start_target($target, $tag, 0);
    my %m;

    preload($procs, $load);
    my $cpu0 = cpu_seconds($procs);
    my $r = loadgen($procs, $load, '-d', $mode->{duration});
    my $cpu = cpu_seconds($procs) - $cpu0;
    check_run($load, $tag, $r);
    $m{'ops/s'} = $r->{rps};
    $m{'CPU us/request'} = $cpu * 1e6 / $r->{requests};
    $m{'syscalls/request'} =
        strace_run($procs, $load, $mode->{strace_count}, $tag);
    stop_target($procs);
    progress(sprintf('%-28s %9.0f ops/s %7.3f us/req %6.3f syscalls/req',
                     $tag, $m{'ops/s'}, $m{'CPU us/request'},
                     $m{'syscalls/request'}));
    return \%m;
}

# Instructions: the server runs under callgrind; after the preload we
# zero its counters, run a fixed count of requests, and dump.  The dump
# holds every instruction all server threads ran in that window and
# nothing from start-up or preload.
sub measure_callgrind {
    my ($load, $target, $mode, $tag) = @_;
    my $procs = start_target($target, $tag, 1);
    my $count = $load->{count};
    my $ir = 0;

    preload($procs, $load);
    callgrind_control($_, '-z') for @$procs;
    my $r = loadgen($procs, $load, '-n', $count);
    callgrind_control($_, '-d') for @$procs;
    check_run($load, $tag, $r);
    $ir += dump_ir($_) for @$procs;
    stop_target($procs);
    my $metric = $load->{metrics}[0][0];
    my %m = ($metric => $ir / $r->{requests});
    progress(sprintf('%-28s %9.0f Ir/request (%d requests)',
                     $tag, $m{$metric}, $r->{requests}));
    return \%m;
}

# RSS: store keys x value bytes, let the server settle, read VmRSS.
sub measure_rss {
    my ($load, $target, $tag) = @_;
    my $procs = start_target($target, $tag, 0);

    preload($procs, $load);
    my $items = stat_value($procs->[0], 'curr_items');
    if (!defined $items || $items != $load->{keys}) {
        note("$tag: curr_items is " . ($items // '?')
             . ", expected $load->{keys}");
    }
    my $rss = settled_rss($procs);
    stop_target($procs);
    my %m = ('RSS bytes/value byte' => $rss / ($load->{keys}
                                               * $load->{value}),
             'RSS MiB' => $rss / 1048576);
    progress(sprintf('%-28s %9.3f RSS bytes/value byte (%.0f MiB)',
                     $tag, $m{'RSS bytes/value byte'}, $m{'RSS MiB'}));
    return \%m;
}

sub check_run {
    my ($load, $tag, $r) = @_;

    note("$tag: $r->{errors} error replies") if $r->{errors};
    note("$tag: $r->{misses} misses after preload") if $r->{misses};
}

# ---------------------------------------------------------------------
# Servers.  A target's servers start pinned to $SERVER_CPU on free
# loopback ports; we wait until each answers "version".  Every pid we
# start is kept in %LIVE so that an error or ^C never leaves one behind.
# ---------------------------------------------------------------------

sub start_target {
    my ($target, $tag, $valgrind) = @_;
    my @ports = map { free_port() } @{$target->{servers}};
    # a second port per server, for the replication listener of a pair
    my @rports = map { free_port() } @{$target->{servers}};
    my @procs;

    for my $i (0 .. $#ports) {
        my @argv = map { expand($_, $i, \@ports, \@rports) }
                   @{$target->{servers}[$i]};
        my %p = (port => $ports[$i], rport => $rports[$i],
                 log => "$OUT/logs/$tag-s$i.log",
                 name => "$tag-s$i");
        die "$argv[0]: not executable\n" unless -x $argv[0];
        $p{argv} = \@argv;
        $p{cmd} = ['taskset', '-c', $SERVER_CPU];
        if ($valgrind) {
            $p{cgout} = "$OUT/callgrind/$tag-s$i.out";
            push @{$p{cmd}}, 'valgrind', '--tool=callgrind',
                "--callgrind-out-file=$p{cgout}";
        }
        push @procs, \%p;
        if (@ports == 1) {
            start_server(\%p, $valgrind);
        }
    }
    if (@ports > 1) {
        # A pair opens its client ports only once both nodes have synced:
        # start every server first, then wait for each.
        for my $p (@procs) {
            my $nofile = $valgrind ? max_conns($p->{argv})
                                     + $VALGRIND_FD_RESERVE : undef;
            unlink glob("$p->{cgout}*") if $p->{cgout};
            $p->{pid} = spawn([@{$p->{cmd}}, @{$p->{argv}}], $p->{log},
                              nofile => $nofile);
        }
        for my $p (@procs) {
            answers_within($p, $valgrind ? 60 : 20, $LOADGEN)
                or die "$p->{name} exited at start-up:\n" . tail_log($p->{log});
        }
    }
    return \@procs;
}

# Under valgrind the fd limit needs care: valgrind keeps 12 fds below the
# hard limit and refuses any setrlimit that changes the hard limit.
# memcached 1.6 sets soft = hard = -c, which only works when valgrind's
# limit is exactly -c; a server that raises only what it lacks works
# with the shell's (larger) limit instead.  So try -c + 12 first, then
# the shell's limit, and remember per binary which one worked.

sub start_server {
    my ($p, $valgrind) = @_;
    my $bin = $p->{argv}[0];
    my @limits = (undef);

    if ($valgrind) {
        @limits = (max_conns($p->{argv}) + $VALGRIND_FD_RESERVE, undef);
        @limits = reverse @limits if exists $VALGRIND_NOFILE{$bin}
                                   && !defined $VALGRIND_NOFILE{$bin};
    }
    for my $nofile (@limits) {
        unlink glob("$p->{cgout}*") if $p->{cgout};
        $p->{pid} = spawn([@{$p->{cmd}}, @{$p->{argv}}], $p->{log},
                          nofile => $nofile);
        if (answers_within($p, $valgrind ? 60 : 10, $LOADGEN)) {
            $VALGRIND_NOFILE{$bin} = $nofile if $valgrind;
            return;
        }
        progress("$p->{name} exited at start-up with fd limit "
                 . ($nofile // 'inherited'));
    }
    die "$p->{name} exited at start-up:\n" . tail_log($p->{log});
}

sub expand {
    my ($arg, $i, $ports, $rports) = @_;

    $arg =~ s/%PORT%/$ports->[$i]/g;
    $arg =~ s/%PORT(\d+)%/$ports->[$1]/g;
    $arg =~ s/%RPORT%/$rports->[$i]/g;
    $arg =~ s/%RPORT(\d+)%/$rports->[$1]/g;
    return $arg;
}

sub max_conns {
    my ($argv) = @_;

    for my $i (0 .. $#$argv - 1) {
        return $argv->[$i + 1] if $argv->[$i] eq '-c';
    }
    return 1024;
}

# Start a process with output to $log; with $nofile, under that fd
# limit (valgrind lowers the hard limit and then refuses the server's
# setrlimit unless it asks for exactly that limit).
sub stop_target {
    my ($procs) = @_;
    stop_pid($_->{pid}, 'TERM', 30) for @$procs;
}


# ---------------------------------------------------------------------
# Measurements.
# ---------------------------------------------------------------------

# A load with tls => 1 goes to the first server's TLS listener (its
# %RPORT%, see targets.pl) with loadgen -S; readiness is checked on its
# plain notls: port (%PORT%).
sub loadgen_args {
    my ($proc, $load) = @_;
    return ('-p', $load->{tls} ? $proc->{rport} : $proc->{port},
            ($load->{tls} ? ('-S') : ()),
            '-k', $load->{keys}, '-v', $load->{value},
            '-g', $load->{get}, '-w', $load->{width},
            '-P', $load->{proto});
}

# Run loadgen on $CLIENT_CPU against the target's first server and
# return its summary as a hash.  Exit 1 means error replies, which
# check_run() reports; anything else is fatal.
sub run_loadgen {
    my (@args) = @_;
    my @cmd = ('taskset', '-c', $CLIENT_CPU, $LOADGEN, @args);
    open(my $fh, '-|', @cmd) or die "loadgen: $!\n";
    my $line = join('', <$fh>);
    close $fh;
    my $rc = $? >> 8;
    die "loadgen @args failed (exit $rc)\n" if $rc > 1 || $? & 127;
    my %r = $line =~ /(\w+)=([\d.]+)/g;
    die "loadgen printed nothing useful: $line\n" unless $r{requests};
    return \%r;
}

sub loadgen {
    my ($procs, $load, @extra) = @_;
    return run_loadgen(loadgen_args($procs->[0], $load),
                       '-c', $load->{conns}, '-T', 600, @extra);
}

sub preload {
    my ($procs, $load) = @_;
    my $r = run_loadgen(loadgen_args($procs->[0], $load),
                        '-c', $PRELOAD_CONNS, '-T', 600, '-L');
    note("preload: $r->{errors} error replies") if $r->{errors};
}

# utime + stime of all threads, from /proc/PID/stat fields 14 and 15.
sub cpu_seconds {
    my ($procs) = @_;
    my $ticks = 0;

    for my $p (@$procs) {
        open(my $fh, '<', "/proc/$p->{pid}/stat")
            or die "$p->{name}: /proc/$p->{pid}/stat: $!\n";
        my $stat = <$fh>;
        my @f = split ' ', substr($stat, rindex($stat, ')') + 2);
        $ticks += $f[11] + $f[12];
    }
    return $ticks / $CLK_TCK;
}

sub rss_bytes {
    my ($procs) = @_;
    my $kb = 0;

    for my $p (@$procs) {
        open(my $fh, '<', "/proc/$p->{pid}/status")
            or die "$p->{name}: /proc/$p->{pid}/status: $!\n";
        while (my $line = <$fh>) {
            $kb += $1 if $line =~ /^VmRSS:\s+(\d+)\s+kB/;
        }
    }
    return $kb * 1024;
}

# Background work (a hash table growing, buffers freed) can move RSS
# for a moment after the last set: sample until two readings 0.5 s
# apart agree within 0.1 %, or 5 s have passed.
sub settled_rss {
    my ($procs) = @_;
    my $deadline = time + 5;
    my $rss = rss_bytes($procs);

    while (time < $deadline) {
        sleep 0.5;
        my $now = rss_bytes($procs);
        return $now if abs($now - $rss) <= $rss * 0.001;
        $rss = $now;
    }
    return $rss;
}

sub stat_value {
    my ($p, $name) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $p->{port}, Timeout => 5)
        or return undef;
    my $value;

    $s->timeout(5);
    print $s "stats\r\n";
    while (my $line = <$s>) {
        $value = $1 if $line =~ /^STAT \Q$name\E (\d+)/;
        last if $line =~ /^(END|ERROR)/;
    }
    close $s;
    return $value;
}

# System calls: strace -c -f attaches to every thread of every server,
# we run a fixed count of requests, then ^C makes strace detach and
# write its table; we take the "total" row's calls column.
sub strace_run {
    my ($procs, $load, $count, $tag) = @_;
    my $out = "$OUT/strace/$tag.txt";
    my @cmd = ('taskset', '-c', $CLIENT_CPU, 'strace', '-c', '-f',
               '-o', $out, map { ('-p', $_->{pid}) } @$procs);
    my $pid = spawn(\@cmd, "$out.log");
    my $deadline = time + 10;

    while (attached_count("$out.log") < @$procs) {
        die "$tag: strace did not attach:\n" . tail_log("$out.log")
            if time > $deadline || waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }
    my $r = loadgen($procs, $load, '-n', $count);
    stop_pid($pid, 'INT', 30);
    return strace_total($out) / $r->{requests};
}

sub attached_count {
    my ($log) = @_;
    open(my $fh, '<', $log) or return 0;
    return scalar grep { /attached/ } <$fh>;
}

sub strace_total {
    my ($file) = @_;
    open(my $fh, '<', $file) or die "$file: $!\n";
    while (my $line = <$fh>) {
        my @f = split ' ', $line;
        return $f[3] if @f >= 5 && $f[-1] eq 'total';
    }
    die "$file: no total row\n";
}

sub callgrind_control {
    my ($p, $flag) = @_;
    my $out = `callgrind_control $flag $p->{pid} 2>&1`;

    die "callgrind_control $flag $p->{name}: $out" if $? != 0;
}

# callgrind_control -d writes <out>.1 (the first dump of this server).
sub dump_ir {
    my ($p) = @_;
    my $file = "$p->{cgout}.1";
    my $deadline = time + 30;

    while (time < $deadline) {
        if (open(my $fh, '<', $file)) {
            while (my $line = <$fh>) {
                return $1 if $line =~ /^(?:summary|totals):\s+(\d+)/;
            }
        }
        sleep 0.1;
    }
    die "$file: no summary line\n";
}

# ---------------------------------------------------------------------
# Report.  Each cell is the median over rounds; the ratio is the median
# of the per-round ratios (rounds are paired), so it need not equal the
# quotient of the two medians.
# ---------------------------------------------------------------------

sub report {
    my ($loads, $targets, $mode, $mode_name, $secs) = @_;
    my @md;

    push @md, '# paircached benchmark', '';
    push @md, sprintf('%s, mode %s (%d throughput rounds of %ds), '
                      . '%.0f s, %s', strftime('%Y-%m-%d %H:%M', localtime),
                      $mode_name, $mode->{rounds}, $mode->{duration}, $secs,
                      `uname -sr` =~ s/\s+$//r);
    for my $t (@$targets) {
        my $cmd = $t->{servers}[0];
        push @md, sprintf('- %s: `%s` (%s)', $t->{name}, "@$cmd",
                          version_of($cmd->[0]));
    }
    push @md, '', '| load | metric | reference | ours | ratio |',
        '|---|---|---:|---:|---:|';
    for my $load (@$loads) {
        my ($ta, $tb) = @{$load->{targets}};
        my $name = $load->{name};
        $name .= " ($tb/$ta)" if "$ta/$tb" ne "reference/ours";
        for my $m (@{$load->{metrics}}) {
            my $res = $RESULTS{$load->{name}}{$m->[0]};
            my $ratios = $RATIOS{$load->{name}}{$m->[0]} || [];
            push @md, sprintf('| %s | %s | %s | %s | %s |', $name, $m->[0],
                              fmt($m->[1], median(@{$res->{$ta}})),
                              fmt($m->[1], median(@{$res->{$tb}})),
                              fmt('%.3f', median(@$ratios)));
        }
    }
    push @md, targets_table($loads);
    if (@NOTES) {
        push @md, '', 'Notes:', map { "- $_" } @NOTES;
    }
    my $text = join("\n", @md) . "\n";
    print $text;
    open(my $fh, '>', "$OUT/results.md") or die "$OUT/results.md: $!\n";
    print $fh $text;
    close $fh;
    open($fh, '>', "$OUT/rounds.tsv") or die "$OUT/rounds.tsv: $!\n";
    print $fh "load\tround\ttarget\tmetric\tvalue\n", map { "$_\n" } @ROUNDS;
    close $fh;
    progress("wrote $OUT/results.md and $OUT/rounds.tsv");
}

sub targets_table {
    my ($loads) = @_;
    my @rows;

    for my $load (@$loads) {
        for my $metric (sort keys %{$load->{limits}}) {
            my $ratio = median(@{$RATIOS{$load->{name}}{$metric} || []});
            my $limit = $load->{limits}{$metric};
            my $shown = fmt('%.3f', $ratio);
            my $verdict = !defined $ratio ? 'n/a'
                        : $shown <= $limit ? 'met' : 'NOT met';
            push @rows, sprintf('| %s | %s | <= %.2f | %s | %s |',
                                $load->{name}, $metric, $limit, $shown,
                                $verdict);
        }
    }
    return () unless @rows;
    return ('', 'Targets from the issue (ratio ours/reference):', '',
            '| load | metric | limit | ratio | verdict |',
            '|---|---|---:|---:|---|', @rows);
}
