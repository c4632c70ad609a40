#!/usr/bin/perl
# -d -P pidfile: the daemon writes its pid, answers, and on SIGTERM
# exits and removes the pid file.  Root without -u is refused.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use MemcTest;

my $bin = memc_bin();
my $dir = tmp_dir();
my @user = $> == 0 ? ('-u', 'root') : ();

sub answers {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 1) or return 0;
    my $line = eval {
        MemcTest::_write_all($s, "version\r\n", 2);
        MemcTest::_read_line($s, 2);
    };
    return defined $line && $line =~ /\AVERSION /;
}

my ($port, $pidfile, $pid);
for my $try (1 .. 3) {
    $port = free_port();
    $pidfile = "$dir/daemon-$try.pid";
    my ($st, $out) = run_cmd([$bin, '-d', '-P', $pidfile, @user, '-U', '0',
                              '-l', '127.0.0.1', '-p', $port], timeout => 10);
    is($st, 0, '-d: the launching process exits 0') if $try == 1;
    MemcTest::wait_until(sub { -s $pidfile }, 10, 'pid file');
    if (-s $pidfile) {
        ($pid) = MemcTest::slurp($pidfile) =~ /\A(\d+)\n?\z/;
        MemcTest::adopt_pid($pid);
    }
    last if $pid && MemcTest::wait_until(sub { answers($port) }, 10,
                                          'daemon to answer');
    diag("daemon start try $try failed: $out");
    kill 'KILL', $pid if $pid;
    $pid = undef;
}
ok($pid, 'pid file holds a pid');
ok(answers($port), 'daemon answers version');
ok(MemcTest::pid_alive($pid), 'daemon process is running');
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port)
        or die "connect: $!";
    MemcTest::_write_all($s, "stats\r\n");
    my $raw = '';
    while (defined(my $l = MemcTest::_read_line($s))) {
        $raw .= $l;
        last if $l eq "END\r\n";
    }
    my ($spid) = $raw =~ /^STAT pid (\d+)\r$/m;
    is($spid, $pid, 'stats pid equals the pid file');
    my $ppid = do {
        my $stat = MemcTest::slurp("/proc/$pid/stat");
        $stat =~ /^\d+ \(.*\) \S (\d+) / ? $1 : undef;
    };
    isnt($ppid, $$, 'daemon is not our child (it detached)');
}

kill 'TERM', $pid;
ok(MemcTest::wait_until(sub { !MemcTest::pid_alive($pid) }, 10,
                        'daemon to exit'), 'SIGTERM ends the daemon');
ok(MemcTest::wait_until(sub { !-e $pidfile }, 5, 'pid file removal'),
   'pid file removed on exit');
ok(!answers($port), 'port closed');
MemcTest::disown_pid($pid);

# running as root without -u is refused
SKIP: {
    skip 'not running as root', 3 unless $> == 0;
    my $p = free_port();
    my ($st, $out, $err) = run_cmd([$bin, '-U', '0', '-l', '127.0.0.1',
                                    '-p', $p], timeout => 10, separate => 1);
    isnt($st, 0, 'root without -u: non-zero exit');
    is($st >> 8, 64, 'exit code 64 (EX_USAGE)');
    like($out . $err, qr/can't run as root without the -u switch/,
         'message: can\'t run as root without the -u switch');
}

done_testing();
