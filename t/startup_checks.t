#!/usr/bin/perl
# Start-up checks that fail fast and say why (issue #22, README "Running
# a pair", doc/paircached.1):
#  - -x HOST:PORT with a port outside 1-65535 (99999 used to dial 34463)
#    refuses to start;
#  - repl_port equal to -p refuses at once, not after the 30 s gate, and
#    so does a client port another process holds (it opens after the
#    first sync);
#  - an unwritable -P pid file is only a warning, as in memcached (the
#    server runs; Debian's memcached is checked for the same);
#  - a repl_secret_file readable by group or others refuses to start;
#  - as root with -u: a congestion control the kernel will refuse once
#    root is dropped is said at start (default cubic) or refused (named);
#    full copies that cannot run at idle priority are said at start with
#    the cause, and nothing is said when they can.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time);
use MemcTest;
use MemcPair;

my $bin = require_pair_build();
my $dir = tmp_dir();

# run the server with @args, expecting it to exit within $secs
sub refuses {
    my ($name, $args, $want, $secs) = @_;
    my ($port) = free_ports(1);
    my @u = $> == 0 ? ('-u', 'root') : ();
    my $t0 = time;
    my ($st, $out) = run_cmd([$bin, @u, '-l', '127.0.0.1', '-p', $port,
                              @$args], timeout => 40);
    my $took = time - $t0;
    ok($st != 0 && $st != -1, "$name: refuses to start (status $st)");
    ok($took < ($secs // 5), sprintf("$name: at once (%.1f s)", $took));
    like($out, $want, "$name: says why") or diag($out);
}

# --- -x port ------------------------------------------------------------
for my $p (qw(99999 0 65536 abc 11212x)) {
    refuses("-x 127.0.0.1:$p", ['-x', "127.0.0.1:$p"],
            qr/bad -x peer address: 127\.0\.0\.1:\Q$p\E/);
}
refuses('-x [::1]:70000', ['-x', '[::1]:70000'], qr/bad -x peer address/);

# --- repl_port equal to -p ----------------------------------------------
{
    my ($port) = free_ports(1);
    refuses('repl_port = -p',
            ['-p', $port, '-x', '127.0.0.1:1', '-o', "repl_port=$port"],
            qr/repl_port $port is also the client port/);
}

# --- a client port already taken, with -x ---------------------------------
# It opens after the first sync (up to 30 s later): the server checks at
# start that it can bind it, and stops at once if not.
{
    my $holder = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                       LocalPort => 0, Listen => 5,
                                       Proto => 'tcp', ReuseAddr => 1)
        or die "listen: $!";
    my ($rport) = free_ports(1);
    refuses('client port taken', ['-p', $holder->sockport, '-x',
                                  '127.0.0.1:1', '-o', "repl_port=$rport"],
            qr/failed to listen on .*port @{[$holder->sockport]}/);
    close $holder;
}

# --- -P pid file --------------------------------------------------------
{
    my $bad = "$dir/no-such-dir/mc.pid";
    for my $which (['paircached', $bin], ['memcached', '/usr/bin/memcached']) {
        my ($name, $b) = @$which;
        SKIP: {
            skip "$b not installed", 3 unless -x $b;
            local $ENV{MEMCACHED_BIN} = $b;
            my $srv = eval { MemcTest->start('-P', $bad) };
            ok($srv, "$name: an unwritable -P pid file does not stop it")
                or diag($@);
            skip "$name did not start", 2 unless $srv;
            like($srv->log_text, qr/Could not open the pid file \Q$bad\E\.tmp/,
                 "$name: warns about the pid file");
            is($srv->mem_get('nothing'), undef, "$name: serves");
            $srv->stop;
        }
    }
    my $good = "$dir/mc.pid";
    my $srv = MemcTest->start('-P', $good);
    ok(wait_until(sub { -s $good }, 10), 'a writable pid file is written');
    is(MemcTest::slurp($good), $srv->pid . "\n", 'it holds the pid');
    ok(!-e "$good.tmp", 'no .tmp file left');
    $srv->stop;
}

# --- secret file mode ---------------------------------------------------
SKIP: {
    my (undef, $help) = run_cmd([$bin, '-h']);
    skip 'no OpenSSL in this build', 6 unless $help =~ /repl_secret_file/;
    my $f = secret_file('open-secret', 'correct horse battery staple 9');
    chmod 0644, $f;
    refuses('secret file 0644', ['-x', '127.0.0.1:1', '-o',
                                 "repl_secret_file=$f"],
            qr/repl_secret_file \Q$f\E has mode 0644.*chmod 600/);
    chmod 0640, $f;
    refuses('secret file 0640', ['-x', '127.0.0.1:1', '-o',
                                 "repl_secret_file=$f"],
            qr/has mode 0640/);
}

# --- as root with -u another user ---------------------------------------
SKIP: {
    skip 'needs root to drop privileges', 5 unless $> == 0;
    my $user = getpwnam('nobody') ? 'nobody' : undef;
    skip 'no user nobody', 5 unless $user;
    my $allowed = eval { MemcTest::slurp(
        '/proc/sys/net/ipv4/tcp_allowed_congestion_control') } // 'cubic';
    my $avail = eval { MemcTest::slurp(
        '/proc/sys/net/ipv4/tcp_available_congestion_control') } // '';
    my ($port, $rport) = free_ports(2);
    my ($dead) = closed_ports(1);
    my @pair = ('-x', "127.0.0.1:$dead", '-o',
                "repl_port=$rport,repl_initial_sync_timeout=1");
    local $MemcTest::START_TIMEOUT = 20;
    my $srv = MemcTest->start('-u', $user, @pair);
    my $log = $srv->log_text;
    if ($allowed !~ /\bcubic\b/ && $avail =~ /\bcubic\b/) {
        like($log, qr/cubic is not in net\.ipv4\.tcp_allowed_congestion/,
             'cubic that -u will lose: said at start');
    } else {
        unlike($log, qr/tcp_allowed_congestion/,
               'cubic allowed: nothing said');
    }
    # Can a thread of user nobody return from SCHED_IDLE?  Only with an
    # RLIMIT_NICE of 20, which root raises before -u when it may.
    my $caps = eval { MemcTest::slurp('/proc/self/status') } // '';
    my ($eff) = $caps =~ /^CapEff:\s*([0-9a-f]+)/mi;
    my $sys_resource = defined $eff && (hex(substr($eff, -8)) >> 24) & 1;
    my $nice_hard = `sh -c 'ulimit -He' 2>/dev/null` // '';
    chomp $nice_hard;
    my $can_raise = $sys_resource || $nice_hard eq 'unlimited'
                    || ($nice_hard =~ /^\d+$/ && $nice_hard >= 20);
    my @idle = $log =~ /(full copies will run at normal CPU priority)/g;
    if ($can_raise) {
        is(scalar @idle, 0, 'idle priority possible: nothing said');
    } else {
        is(scalar @idle, 1, 'idle priority impossible: said once at start');
        like($log, qr/RLIMIT_NICE is \d+ \(hard \d+\)/, '... with the cause');
    }
    $srv->stop;

    # -u root keeps CAP_SYS_NICE and CAP_NET_ADMIN: nothing to say.
    my ($p2, $r2) = free_ports(2);
    my ($d2) = closed_ports(1);
    my $root = MemcTest->start('-u', 'root', '-x', "127.0.0.1:$d2", '-o',
                               "repl_port=$r2,repl_initial_sync_timeout=1");
    unlike($root->log_text, qr/normal CPU priority|tcp_allowed_congestion/,
           '-u root: no priority or congestion warning');
    $root->stop;

    SKIP: {
        skip 'cubic allowed or missing here', 3
            if $allowed =~ /\bcubic\b/ || $avail !~ /\bcubic\b/;
        refuses('repl_tcp_congestion=cubic with -u nobody',
                ['-u', $user, '-x', '127.0.0.1:1', '-o',
                 'repl_tcp_congestion=cubic'],
                qr/repl_tcp_congestion: "cubic" is not in/);
    }
}

done_testing();
