package NetNs;

# Network namespaces as test hosts, for the topology tests
# (t/topo_keepalived.t): create a namespace, make a socket inside one
# (setns(2) just long enough to create it: a socket stays in the
# namespace it was made in), run a program inside one in its own process
# group, and delete all of it at exit, even when the test dies.
#
#   my $why = NetNs::unavailable();       # undef, or why we cannot
#   my $ns = NetNs::add('a');             # "pctopo-a-<pid>", lo up
#   NetNs::must_ip('-n', $ns, 'addr', 'add', ...);
#   my $s = NetNs::in_ns($ns, sub { IO::Socket::INET->new(...) });
#   my $p = NetNs::spawn($ns, [argv...], $log);   # pid = process group
#   NetNs::kill_group($p);                # SIGKILL the whole group
#
# END kills every group spawned here that is still running, then deletes
# every namespace added here; nothing is left in the root namespace.
# t/repl_netns.t does the same with code of its own.

use strict;
use warnings;
use Config;
use POSIX ();
use Time::HiRes qw(time sleep);
use MemcTest ();

my $CLONE_NEWNET = 0x40000000;
my $OWNER = $$;
my @CREATED;            # namespaces to delete at the end
my %GROUPS;             # pid (= process group) => 1, still to kill
my %NS_FH;              # namespace => open nsfs file

# setns(2) has no Perl builtin: call it by number
my $SYS_SETNS = eval { require 'syscall.ph'; &SYS_setns() } // {
    x86_64 => 308, i386 => 346, i486 => 346, i586 => 346, i686 => 346,
    aarch64 => 268, riscv64 => 268, loongarch64 => 268, arm => 375,
    ppc64 => 350, ppc64le => 350, powerpc => 350, s390x => 339,
}->{ (split /-/, $Config{archname})[0] };

my $ROOT_NS;

# run `ip @argv`; (ok, output)
sub ip {
    my (@argv) = @_;
    my ($st, $out) = MemcTest::run_cmd(['ip', @argv], timeout => 10);
    return ($st == 0, $out);
}

sub must_ip {
    my (@argv) = @_;
    my ($ok, $out) = ip(@argv);
    die "ip @argv: $out" unless $ok;
    return $out;
}

# undef when this process can create namespaces, else the reason
sub unavailable {
    return 'network namespaces need root' if $> != 0;
    return 'no setns(2) syscall number for ' . $Config{archname}
        unless defined $SYS_SETNS;
    my ($ok, $out) = ip('netns', 'list');
    return "`ip netns` is not available (iproute2): $out" unless $ok;
    open($ROOT_NS, '<', '/proc/self/ns/net')
        or return "cannot open /proc/self/ns/net: $!";
    my $probe = "pctopo-probe-$$";
    ($ok, $out) = ip('netns', 'add', $probe);
    if (!$ok) {
        chomp $out;
        return "cannot create a network namespace (ip netns add: $out)";
    }
    ip('netns', 'del', $probe);
    return undef;
}

# create namespace "pctopo-$tag-$$" with lo up; returns its name
sub add {
    my ($tag) = @_;
    my $ns = "pctopo-$tag-$$";
    # one named after our pid can only be left over from a killed run
    ip('netns', 'del', $ns) if -e "/run/netns/$ns";
    must_ip('netns', 'add', $ns);
    push @CREATED, $ns;
    must_ip('-n', $ns, 'link', 'set', 'lo', 'up');
    return $ns;
}

sub setns_fh {
    my ($fh) = @_;
    return syscall($SYS_SETNS, fileno($fh), $CLONE_NEWNET) == 0;
}

# run $code (scalar context) inside namespace $ns, then come back, even
# when it dies
sub in_ns {
    my ($ns, $code) = @_;
    my $fh = $NS_FH{$ns};
    if (!$fh) {
        open $fh, '<', "/run/netns/$ns" or die "/run/netns/$ns: $!\n";
        $NS_FH{$ns} = $fh;
    }
    setns_fh($fh) or die "setns into $ns: $!\n";
    my $r = eval { $code->() };
    my $err = $@;
    setns_fh($ROOT_NS) or die "cannot return to the root namespace: $!\n";
    die $err if $err;
    return $r;
}

# Run @$argv inside $ns (`ip netns exec`, which execs it) in a process
# group of its own, output to $log.  Returns the pid, which is also the
# group id: kill_group() kills the program and every child it forked.
sub spawn {
    my ($ns, $argv, $log) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        setpgrp(0, 0);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
        my @cmd = ('ip', 'netns', 'exec', $ns, @$argv);
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        POSIX::_exit(127);
    }
    $GROUPS{$pid} = 1;
    # wait for ip to exec the program (or to fail)
    MemcTest::wait_until(sub {
        my $exe = readlink("/proc/$pid/exe") // '';
        return $exe !~ m{/ip$} || !alive($pid);
    }, 5);
    return $pid;
}

# true while $pid runs (reaps it when it has exited)
sub alive {
    my ($pid) = @_;
    return 0 unless $pid;
    my $r = waitpid($pid, POSIX::WNOHANG());
    return 0 if $r == $pid || $r < 0;
    return 1;
}

# SIGKILL process group $pid (ours) and reap its leader
sub kill_group {
    my ($pid, $sig) = @_;
    return unless $pid && $GROUPS{$pid};
    kill($sig // 'KILL', -$pid);
    MemcTest::wait_until(sub { !alive($pid) }, 5);
    if (alive($pid)) {
        kill 'KILL', -$pid;
        waitpid($pid, 0);
    }
    # children that outlive the leader (none expected) die with the group
    kill 'KILL', -$pid;
    delete $GROUPS{$pid};
}

# the IPv4 addresses on $dev in $ns
sub addrs {
    my ($ns, $dev) = @_;
    my ($ok, $out) = ip('-n', $ns, '-4', '-o', 'addr', 'show', 'dev', $dev);
    return () unless $ok;
    return $out =~ m{\binet (\d+\.\d+\.\d+\.\d+)/}g;
}

END {
    local ($?, $!);
    if ($OWNER == $$) {
        for my $pid (keys %GROUPS) {
            kill 'KILL', -$pid;
            waitpid($pid, 0);
        }
        close $_ for values %NS_FH;
        system('ip', 'netns', 'del', $_) for @CREATED;
    }
}

1;
