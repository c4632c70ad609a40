# BenchProc.pm: what harness.pl (run.sh) and repl.pl (repl.sh) share:
# starting and stopping the processes a benchmark owns, free loopback
# ports, and the small formatting helpers of their tables.  Every pid
# started through spawn() is kept in %LIVE and killed at exit (END), on
# an error or ^C alike.
package BenchProc;

use strict;
use warnings;
use Exporter 'import';
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);

our @EXPORT = qw(%LIVE free_port spawn stop_pid cleanup tail_log
                 answers_within median fmt version_of);

our %LIVE;                  # pid => what it is, for cleanup at exit

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, Proto => 'tcp')
        or die "cannot bind a free port: $!\n";
    my $port = $s->sockport;
    close $s;
    return $port;
}

# Start @$cmd with stdin from /dev/null and stdout + stderr to $log.
# Options: name => what %LIVE calls it (default: the command line),
# nofile => an fd limit to set first (ulimit -n).
sub spawn {
    my ($cmd, $log, %o) = @_;
    my $pid = fork();

    die "fork: $!\n" unless defined $pid;
    if ($pid == 0) {
        open(STDIN, '<', '/dev/null');
        if (!open(STDOUT, '>', $log) || !open(STDERR, '>&', \*STDOUT)) {
            print STDERR "$log: $!\n";
            POSIX::_exit(127);
        }
        my @argv = $o{nofile}
            ? ('bash', '-c', 'ulimit -n "$0" && exec "$@"', $o{nofile},
               @$cmd)
            : @$cmd;
        exec { $argv[0] } @argv or do {
            print STDERR "exec $cmd->[0]: $!\n";
            POSIX::_exit(127);
        };
    }
    $LIVE{$pid} = $o{name} // "@$cmd";
    return $pid;
}

# Send $sig (TERM) to a pid of ours and reap it; SIGKILL after $limit
# seconds (20).
sub stop_pid {
    my ($pid, $sig, $limit) = @_;
    return unless $pid && $LIVE{$pid};
    my $deadline = time + ($limit // 20);
    kill $sig // 'TERM', $pid;
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

# The last 10 lines of a log, for error messages.
sub tail_log {
    my ($file) = @_;
    open(my $fh, '<', $file) or return "(no log)\n";
    my @l = <$fh>;
    return join('', @l[($#l > 9 ? $#l - 9 : 0) .. $#l]);
}

# Wait until server $p ({pid, port, name, log}) answers "version"
# (checked with `loadgen -W`): 1 when it does, 0 when it exited first;
# dies after $limit seconds.
sub answers_within {
    my ($p, $limit, $loadgen) = @_;
    my $deadline = time + $limit;

    while (time < $deadline) {
        if (waitpid($p->{pid}, WNOHANG) == $p->{pid}) {
            delete $LIVE{$p->{pid}};
            return 0;
        }
        return 1 if system("'$loadgen' -p $p->{port} -W 0.5 2>/dev/null")
                    == 0;
    }
    die "$p->{name} did not answer within ${limit}s:\n"
        . tail_log($p->{log});
}

sub median {
    my @v = sort { $a <=> $b } grep { defined } @_;
    return undef unless @v;
    return $v[$#v / 2] if @v % 2;
    return ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

sub fmt {
    my ($f, $v) = @_;
    return defined $v ? sprintf($f, $v) : 'n/a';
}

sub version_of {
    my ($bin) = @_;
    my $v = `timeout 2 '$bin' -V 2>/dev/null`;
    chomp $v;
    return $v || '?';
}

1;
