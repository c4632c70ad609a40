#!/usr/bin/perl
# Many pairs behind twemproxy (doc/topology.txt, "Many pairs behind
# twemproxy"): two pairs, each one twemproxy target through an
# active/backup haproxy listener (doc/haproxy.cfg, doc/twemproxy.yml, run
# with only addresses and ports replaced).  Through twemproxy:
#   - 1,000 keys written; node A1 (pair 1's active node) kill -9'd;
#     every key reads its value (0 misses) once haproxy has moved pair 1
#     to B1 (requests that fail meanwhile are retried, and counted);
#   - new values written for every key while A1 is down; A1 restarts,
#     syncs behind its start-up gate, haproxy moves pair 1 back to it;
#     every key reads the new value (0 stale, 0 misses), read until A1
#     has served a full pass.
# Then the same steps with twemproxy pointed at the four nodes directly
# (ketama, auto_eject_hosts), the set-up the docs warn against: it is
# shown to serve misses while A1 is down and stale values after it
# returns, which is why each pair must be one target.
# Runs on 127.0.0.1; needs haproxy and nutcracker (skipped otherwise).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX ();
use Time::HiRes qw(time sleep);
use MemcTest;
use MemcPair;

my $BIN = require_pair_build();
my %EXE;
for my $p (qw(haproxy nutcracker)) {
    ($EXE{$p}) = grep { -x } map { "$_/$p" }
        split(/:/, $ENV{PATH} // ''), '/usr/sbin', '/sbin';
    plan skip_all => "$p is not installed (apt-get install $p)"
        unless $EXE{$p};
}

my $SRC = MemcTest::srcdir();
my $N = 1000;
my $tmp = tmp_dir();
my @PROCS;                      # helper pids (haproxy, nutcracker)

END {
    local ($?, $!);
    for my $pid (@PROCS) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
}

sub spawn_helper {
    my ($name, @argv) = @_;
    my $log = "$tmp/$name.log";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
        { no warnings 'exec'; exec { $argv[0] } @argv; }
        POSIX::_exit(127);
    }
    push @PROCS, $pid;
    return $pid;
}

sub helper_logs {
    return join "\n", map {
        my @l = split /\n/, MemcTest::slurp("$tmp/$_.log");
        "--- $_:", @l > 10 ? @l[-10 .. -1] : @l;
    } qw(haproxy nutcracker);
}

sub stop_helpers {
    for my $pid (splice @PROCS) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
}

sub write_file {
    my ($f, $text) = @_;
    open my $fh, '>', $f or die "$f: $!";
    print $fh $text;
    close $fh;
    return $f;
}

# --- a client of twemproxy --------------------------------------------------

# send $req on a fresh connection to $port, read until $done or 3 s;
# undef on any failure
sub roundtrip {
    my ($port, $req, $done) = @_;
    my $to = bless { host => '127.0.0.1', port => $port }, 'MemcTest';
    my $s = eval { $to->new_sock(timeout => 2) } or return undef;
    my $buf = '';
    my $ok = eval {
        MemcTest::_write_all($s, $req, 3);
        my $deadline = time + 3;
        while (!$done->($buf)) {
            die "timeout\n" if time > $deadline;
            my $rin = '';
            vec($rin, fileno($s), 1) = 1;
            next unless select($rin, undef, undef, 0.2);
            my $n = sysread($s, $buf, 262144, length $buf);
            die "closed\n" unless $n;
        }
        1;
    };
    close $s;
    return $ok ? $buf : undef;
}

my $errors = 0;                 # requests retried after a failure

# set key$i to "$tag-$i", 100 to a request; true when all STORED
sub write_all {
    my ($port, $tag) = @_;
    for (my $i = 1; $i <= $N; $i += 100) {
        my $req = join '', map {
            my $v = "$tag-$_";
            "set sess:$_ 0 0 " . length($v) . "\r\n$v\r\n";
        } $i .. $i + 99;
        my $ok;
        my $deadline = time + 15;
        while (time < $deadline) {
            my $r = roundtrip($port, $req, sub { ($_[0] =~ tr/\n//) >= 100 });
            $ok = defined $r && ($r =~ s/^STORED\r\n//mg) == 100;
            last if $ok;
            $errors++;
            sleep 0.1;
        }
        return 0 unless $ok;
    }
    return 1;
}

# read every key one get at a time (twemproxy may send the keys of one
# multi-get to several targets): (hits of "$tag-$i", misses, other);
# a request that fails is retried for up to 15 s
sub read_all {
    my ($port, $tag) = @_;
    my ($hit, $miss, $stale) = (0, 0, 0);
    for (my $i = 1; $i <= $N; $i += 100) {
        my $req = join '', map { "get sess:$_\r\n" } $i .. $i + 99;
        my $r;
        my $deadline = time + 15;
        while (time < $deadline) {
            $r = roundtrip($port, $req, sub {
                (() = $_[0] =~ /^END\r$/mg) >= 100
                    || $_[0] =~ /^(?:SERVER_|CLIENT_)?ERROR/m });
            last if defined $r && $r !~ /^(?:SERVER_|CLIENT_)?ERROR/m;
            $errors++;
            sleep 0.1;
        }
        die "no answer from twemproxy for 15 s\n" . helper_logs()
            unless defined $r;
        my %got;
        $got{$1} = $2 while $r =~ /^VALUE (\S+) \d+ \d+\r\n([^\r]*)\r\n/mg;
        for my $n ($i .. $i + 99) {
            my $v = $got{"sess:$n"};
            if (!defined $v) {
                $miss++;
            } elsif ($v eq "$tag-$n") {
                $hit++;
            } else {
                $stale++;
            }
        }
    }
    return ($hit, $miss, $stale);
}

sub curr_items {
    my ($node) = @_;
    my $h = $node->stats_fresh('') or return -1;
    return $h->{curr_items} // -1;
}

sub cmd_get {
    my ($node) = @_;
    my $h = $node->stats_fresh('') or return 0;
    return $h->{cmd_get} // 0;
}

# --- the set-ups ------------------------------------------------------------

# the nodes' stand-ins for doc/'s addresses
sub node_addrs {
    my (@nodes) = @_;
    my %a;
    my $i = 1;
    $a{ '10.0.0.' . $i++ . ':11211' } = '127.0.0.1:' . $_->port for @nodes;
    return %a;
}

sub twemproxy_conf {
    my ($listen, %targets) = @_;
    my $c = MemcTest::slurp("$SRC/doc/twemproxy.yml")
        or die "cannot read doc/twemproxy.yml\n";
    $c =~ s/127\.0\.0\.1:22121/127.0.0.1:$listen/;
    $c =~ s{127\.0\.0\.1:(2212[23])}{$targets{$1} // "127.0.0.1:$1"}ge;
    return $c;
}

# twemproxy straight at the four nodes, as the issue tried: one server
# per node, ejecting a failed one
sub four_targets_conf {
    my ($listen, @nodes) = @_;
    my $c = twemproxy_conf($listen);
    my $eject = "auto_eject_hosts: true\n  server_retry_timeout: 1000\n"
        . '  server_failure_limit: 1';
    $c =~ s/auto_eject_hosts: false/$eject/;
    my $i = 0;
    my @names = qw(a1 b1 a2 b2);
    my $servers = join '', map {
        "   - 127.0.0.1:" . $_->port . ":1 " . $names[$i++] . "\n"
    } @nodes;
    $c =~ s/^   - .*\n(?:   - .*\n)*/$servers/m;
    return $c;
}

sub start_twemproxy {
    my ($conf) = @_;
    my $f = write_file("$tmp/twemproxy-" . ++$MemcTest::RUN_SEQ . '.yml',
                       $conf);
    my ($st, $out) = run_cmd([$EXE{nutcracker}, '-t', '-c', $f]);
    die "nutcracker refuses $f: $out\n" unless $st == 0;
    my ($stats) = free_ports(1);
    spawn_helper('nutcracker', $EXE{nutcracker}, '-c', $f, '-s', $stats,
                 '-a', '127.0.0.1', '-p', "$tmp/nutcracker.pid");
}

sub start_haproxy {
    my ($l1, $l2, @nodes) = @_;
    my $c = MemcTest::slurp("$SRC/doc/haproxy.cfg")
        or die "cannot read doc/haproxy.cfg\n";
    my %a = node_addrs(@nodes);
    $c =~ s/(10\.0\.0\.\d:11211)/$a{$1}/g;
    $c =~ s/127\.0\.0\.1:22122/127.0.0.1:$l1/;
    $c =~ s/127\.0\.0\.1:22123/127.0.0.1:$l2/;
    my $f = write_file("$tmp/haproxy.cfg", $c);
    my ($st, $out) = run_cmd([$EXE{haproxy}, '-c', '-f', $f]);
    die "haproxy refuses $f: $out\n" unless $st == 0;
    spawn_helper('haproxy', $EXE{haproxy}, '-db', '-f', $f);
}

# the scenario: write, kill A1, read, write, restart A1, read until A1
# has served a whole pass.  Returns a hash of counts.
sub scenario {
    my ($listen, @pairs) = @_;
    my ($a1, $b1) = @pairs;
    my %r;
    ok(wait_until(sub { write_all($listen, 'v1') }, 15),
       "$N keys written through twemproxy");
    ok(wait_until(sub {
        my ($ia1, $ib1, $ia2, $ib2) = map { curr_items($_) } @pairs;
        $ia1 == $ib1 && $ia2 == $ib2 && $ia1 + $ia2 == $N }, 5),
       '... and replicated within each pair');
    # how many of the gets A1 serves (all of pair 1's, or a quarter)
    my $g = cmd_get($a1);
    read_all($listen, 'v1');
    $r{a1_share} = cmd_get($a1) - $g;
    my $t0 = time;
    $a1->kill9;
    my $e0 = $errors;
    @r{qw(hit_down miss_down stale_down)} = read_all($listen, 'v1');
    ok(write_all($listen, 'v2'), 'new values written while A1 is down');
    $r{errors_down} = $errors - $e0;
    $r{secs_down} = time - $t0;
    $a1->restart(timeout => 20);
    ok(wait_linked($a1, $b1, 20), 'A1 back and linked');
    # read until A1 has served a whole pass (or 20 s); count the worst
    my ($g0, $passes) = (cmd_get($a1), 0);
    die "A1 served none of the reads before the kill\n" unless $r{a1_share};
    @r{qw(miss_back stale_back)} = (0, 0);
    my $served = wait_until(sub {
        my ($h, $m, $s) = read_all($listen, 'v2');
        $passes++;
        $r{miss_back} = $m if $m > $r{miss_back};
        $r{stale_back} = $s if $s > $r{stale_back};
        my $g = cmd_get($a1);
        my $done = $g - $g0 >= $r{a1_share};
        $g0 = $g;
        return $done;
    }, 20);
    $r{a1_served} = $served ? 1 : 0;
    $r{passes} = $passes;
    $r{secs_back} = time - $t0;
    return %r;
}

sub report {
    my ($what, %r) = @_;
    diag("$what: while A1 down $r{hit_down} hits, $r{miss_down} misses, "
         . "$r{stale_down} other values ($r{errors_down} requests retried); "
         . "after its return (worst of $r{passes} passes) $r{miss_back} "
         . "misses, $r{stale_back} stale ("
         . sprintf('%.1fs down, %.1fs in all)', $r{secs_down}, $r{secs_back}));
}

# --- 1. each pair one target through haproxy --------------------------------

my ($a1, $b1) = start_pair(linked => 1);
my ($a2, $b2) = start_pair(linked => 1);
my ($tw, $l1, $l2) = free_ports(3);
start_haproxy($l1, $l2, $a1, $b1, $a2, $b2);
start_twemproxy(twemproxy_conf($tw, 22122 => "127.0.0.1:$l1",
                               22123 => "127.0.0.1:$l2"));
my %r = scenario($tw, $a1, $b1, $a2, $b2);
report('haproxy listener per pair', %r);
is("$r{hit_down}/$r{miss_down}/$r{stale_down}", "$N/0/0",
   'one target per pair: every key reads while A1 is down '
   . '(hits/misses/other)');
is($r{miss_back}, 0, '... no miss after A1 returns');
is($r{stale_back}, 0, '... no stale value after A1 returns');
ok($r{a1_served}, '... and A1 served a whole pass of reads once back');

stop_helpers();
$_->stop('KILL') for $a1, $b1, $a2, $b2;

# --- 2. the four nodes as four targets: what the docs warn against ----------

($a1, $b1) = start_pair(linked => 1);
($a2, $b2) = start_pair(linked => 1);
($tw) = free_ports(1);
start_twemproxy(four_targets_conf($tw, $a1, $b1, $a2, $b2));
%r = scenario($tw, $a1, $b1, $a2, $b2);
report('four nodes as four targets', %r);
# with four targets A1 serves only its own share of the keys
cmp_ok($r{miss_down}, '>', 0, 'four targets: misses while A1 is down');
cmp_ok($r{stale_back}, '>', 0, 'four targets: stale values after A1 '
       . 'returns (why doc/topology.txt says one target per pair)');

done_testing();
