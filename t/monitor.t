#!/usr/bin/perl
# -o monitor_listen=HOST:PORT: a loopback-only text port that serves
# stats, version and quit without authentication, so that exporters can
# scrape a server whose client port needs SASL (-S) or -Y.  paircached
# only: memcached has no such listener.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp qw(tempdir);
use MemcTest;
use MemcBin;

{
    my ($st, $out) = MemcTest::run_cmd([MemcTest::memc_bin(), '-h'],
                                       timeout => 10);
    plan skip_all => 'server has no monitor_listen option'
        unless $out =~ /monitor_listen/;
}

my $dir = tempdir(CLEANUP => 1);
my $pwdb = "$dir/pwdb";
open my $fh, '>', $pwdb or die "$pwdb: $!";
print $fh "user:pass\n";
close $fh;
chmod 0600, $pwdb;

my $mport = MemcTest::free_port();
# Up when the monitor port answers with our pid.
my $ready = sub {
    my ($srv) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $mport,
                                  Timeout => 1) or return 0;
    print $s "stats\r\n";
    while (defined(my $l = MemcTest::_read_line($s, 1))) {
        return $1 == $srv->pid if $l =~ /^STAT pid (\d+)\r\n/;
    }
    return 0;
};
my $srv = MemcTest->start({args => ['-S', '-o', "sasl_pwdb=$pwdb",
                                    '-o', "monitor_listen=127.0.0.1:$mport"],
                           ready => $ready});
my $m = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $mport)
    or die "monitor port: $!";

my $st = $srv->stats('', $m);
is($st->{pid}, $srv->pid, 'stats on the monitor port: our pid');
ok(defined $st->{cmd_get} && defined $st->{curr_items},
   'the counters an exporter reads');
is($srv->stats('settings', $m)->{auth_enabled_sasl}, 'yes',
   'stats settings: SASL is on for clients');
ok(scalar keys %{ $srv->stats('slabs', $m) }, 'stats slabs');
ok(defined $srv->stats('items', $m), 'stats items');
like($srv->cmd('version', $m), qr/\AVERSION /, 'version');

my $NO = "CLIENT_ERROR not allowed on the monitor port\r\n";
is($srv->cmd('get k', $m), $NO, 'get refused');
is($srv->cmd('set k 0 0 1', $m), $NO, 'set refused (no data expected)');
is($srv->cmd('delete k', $m), $NO, 'delete refused');
is($srv->cmd('flush_all', $m), $NO, 'flush_all refused');
is($srv->cmd('stats reset', $m), $NO, 'stats reset refused');
is($srv->cmd('stats detail on', $m), $NO, 'stats detail refused');
{
    # key names are the clients' data (a PHP session key holds the
    # session id): not for an unauthenticated port
    my $s = $srv->new_sock;
    my $r = bin_cmd($srv, $s, 'SASL_AUTH', key => 'PLAIN',
                    value => "\0user\0pass");
    bin_cmd($srv, $s, 'SET', key => 'memc.sess.key.s3cret',
            extras => set_extras(), value => 'v');
    is($srv->cmd('stats cachedump 1 100', $m), $NO,
       'stats cachedump refused (no key names)');
}
is($srv->cmd('mg k v', $m), $NO, 'meta refused');
like($srv->cmd('version', $m), qr/\AVERSION /, 'the connection goes on');
$srv->send("quit\r\n", $m);
ok($srv->closed_within($m, 3), 'quit closes it');

# The client port still wants SASL.
{
    my $s = $srv->new_sock;
    my $r = bin_cmd($srv, $s, 'GET', key => 'k');
    is($r && $r->{status}, 0x20, 'client port: GET without SASL is refused');
}

# A binary frame on the monitor port is not a stats request.
{
    my $b = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $mport)
        or die;
    print $b bin_req('NOOP');
    my $line = MemcTest::_read_line($b, 2);
    ok(!defined $line || $line eq "ERROR\r\n" || $line =~ /^CLIENT_ERROR/,
       'binary bytes on the monitor port get no binary answer');
}

# Only loopback addresses.
{
    my $p = MemcTest::free_port();
    my ($st2, $out) = MemcTest::run_cmd([MemcTest::memc_bin(),
        ($> == 0 ? ('-u', 'root') : ()), '-U', '0', '-l', '127.0.0.1',
        '-p', '0', '-o', "monitor_listen=0.0.0.0:$p"], timeout => 10);
    ok($st2 != 0, 'monitor_listen on 0.0.0.0: refused to start');
    like($out, qr/not a loopback address/, '... saying why');
}

ok($srv->is_alive, 'server still running');
done_testing();
