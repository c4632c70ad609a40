#!/usr/bin/perl
# The set-up memcached users run with -S and -Z, on one node: PHP
# sessions through php-memcached with memcached.sess_sasl_username and
# sess_sasl_password (binary protocol, Cyrus SASL against a sasldb made
# with saslpasswd2 and named by memcached.conf in SASL_CONF_PATH) on
# the plain "notls:" loopback listener (php-memcached has no TLS), a
# TLS listener beside it that demands SASL too, and a monitoring tool
# that keeps one connection to the loopback monitor port
# (-o monitor_listen) and reads `stats` while PHP requests run.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Sys::Hostname qw(hostname);
use MemcTest;
use MemcBin;
use MemcPHP;
use MemcTLS qw(tls_skip_reason self_signed tls_sock);

my $why = tls_skip_reason();
plan skip_all => $why if $why;
plan skip_all => 'this build has no Cyrus SASL (libsasl2-dev)'
    unless `${\ memc_bin()} -h` =~ /Cyrus SASL/;
my ($saslpasswd) = grep { -x $_ } map { "$_/saslpasswd2" }
    split(/:/, $ENV{PATH} // ''), '/usr/sbin';
plan skip_all => 'saslpasswd2 missing (sasl2-bin)' unless $saslpasswd;
MemcPHP::require_ext('memcached', 'session');
{
    my ($st, $out) = MemcTest::run_cmd([MemcPHP::php_bin(), @MemcPHP::EXTRA,
        '-r', 'echo Memcached::HAVE_SASL ? "yes" : "no";'], timeout => 30);
    plan skip_all => 'php-memcached was built without SASL'
        unless $out =~ /yes/;
}

# --- the node ------------------------------------------------------------
my $dir = MemcTest::tmp_dir();
my ($cert, $key) = self_signed($dir, 'node');
{
    open my $fh, '>', "$dir/memcached.conf" or die $!;
    print $fh "mech_list: plain\nsasldb_path: $dir/sasldb2\n";
    close $fh;
    # Cyrus names the user user@realm, the realm being the server's host
    my $host = hostname();
    system("echo 'sess pass' | $saslpasswd -p -c -f $dir/sasldb2"
           . " -a memcached -u $host phpuser") == 0
        or BAIL_OUT('saslpasswd2 failed');
}
local $ENV{SASL_CONF_PATH} = $dir;
my ($plain, $tls, $mon) = map { MemcTest::free_port() } 1 .. 3;
my $monitor_answers = sub {
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$mon") or return 0;
    my $ok = eval { MemcTest::_write_all($s, "version\r\n", 2);
                    (MemcTest::_read_line($s, 2) // '') =~ /^VERSION / };
    return $ok ? 1 : 0;
};
my $srv = MemcTest->start({
    no_default_args => 1, port => $plain, ready => $monitor_answers,
    args => ['-U', '0', '-p', $tls, '-S', '-Z',
             '-o', "ssl_chain_cert=$cert,ssl_key=$key",
             '-o', "monitor_listen=127.0.0.1:$mon",
             '-l', "notls:127.0.0.1:$plain,127.0.0.1:$tls"] });

# the monitoring tool's one connection, kept open throughout
my $mon_sock = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$mon")
    or die "monitor port: $!";
sub mon_stats { return $srv->stats(undef, $mon_sock) }

my $PREFIX = 'memc.sess.key.';
sub ini {
    my (%over) = @_;
    return {
        MemcPHP::session_defaults(),
        'session.save_handler'           => 'memcached',
        'session.save_path'              => "127.0.0.1:$plain",
        'memcached.sess_binary_protocol' => '1',
        'memcached.sess_sasl_username'   => 'phpuser',
        'memcached.sess_sasl_password'   => 'sess pass',
        'memcached.sess_prefix'          => $PREFIX,
        'memcached.sess_locking'         => '1',
        'memcached.sess_lock_wait_min'   => '50',
        'memcached.sess_lock_wait_max'   => '100',
        'memcached.sess_lock_retries'    => '100',
        'memcached.sess_persistent'      => '0',
        'memcached.sess_connect_timeout' => '2000',
        %over,
    };
}

# --- sessions with SASL, watched from the monitor port ---------------------
my $before = mon_stats();
is($before->{auth_cmds}, 0, 'monitor: stats before any client');
my $sid = "sasl$$" . int(rand(1e6));
my $r = MemcPHP::run_json(ini(), 'session.php', 'write', $sid, 'user', 'ann');
ok($r && $r->{start} && $r->{close}, 'PHP session written with SASL');
is_deeply($r && $r->{warnings}, [], '... no PHP warnings') or diag(explain($r));
$r = MemcPHP::run_json(ini(), 'session.php', 'peek', $sid);
is_deeply(MemcPHP::sess_data($r && $r->{data}), { user => 'ann' },
          'read back by a second PHP process');

# a request holding the session lock while the monitor reads stats
my $ready = "$dir/ready-$sid";
my $h = MemcPHP::spawn(ini(), 'session.php', 'incr', $sid, 1000, $ready);
ok(MemcTest::wait_until(sub { -e $ready }, 15), 'PHP request holds its lock');
my $during = mon_stats();
cmp_ok($during->{curr_connections}, '>=', 2,
       'monitor reads stats while the PHP request is open');
my $j = MemcPHP::wait_json($h);
ok($j && $j->{close} && $j->{data}{n} == 1, '... which then ends normally');
my $after = mon_stats();
cmp_ok($after->{auth_cmds}, '>=', 3, 'monitor: auth_cmds counts the PHP AUTHs');
is($after->{auth_errors}, 0, 'monitor: no auth_errors');
is($srv->stats('settings', $mon_sock)->{auth_enabled_sasl}, 'yes',
   'monitor: stats settings shows SASL on');

# --- a wrong password ---------------------------------------------------------
$r = MemcPHP::run_json(ini('memcached.sess_sasl_password' => 'wrong'),
                       'session.php', 'peek', $sid);
ok($r && !($r->{start} && keys %{ MemcPHP::sess_data($r->{data}) }),
   'wrong SASL password: PHP gets no session data');
cmp_ok(mon_stats()->{auth_errors}, '>=', 1, 'monitor: auth_errors counted');

# --- the TLS listener demands SASL too ------------------------------------
{
    my $s = tls_sock($tls) or BAIL_OUT('TLS connect failed');
    bin_send($srv, $s, bin_req('GET', key => "$PREFIX$sid", opaque => 7));
    my $res = bin_read($srv, $s);
    is($res && $res->{status}, 0x20, 'TLS port: GET before AUTH is refused');
    $s = tls_sock($tls);
    my $a = bin_cmd($srv, $s, 'SASL_AUTH', key => 'PLAIN',
                    value => "\0phpuser\0sess pass");
    is($a && $a->{status}, 0, 'TLS port: AUTH PLAIN with the sasldb user');
    my $g = bin_cmd($srv, $s, 'GET', key => "$PREFIX$sid");
    like($g && $g->{value}, qr/user\|s:3:"ann"/,
         '... then the session is readable over TLS');
}

ok($srv->is_alive, 'server still running');
done_testing();
