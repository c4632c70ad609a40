#!/usr/bin/perl
# SASL PLAIN over the binary protocol (-S), as memcached 1.6 does it:
# LIST_MECHS, AUTH, STEP, what an unauthenticated connection may do,
# failures, re-authentication, the auth stats, text commands on a SASL
# server, and no ANONYMOUS mechanism (memcached 1.6.18 offers it) on a
# Cyrus setup without mech_list.
#
# Our server reads a password file of "user:password" lines, given by
# -o sasl_pwdb=PATH or by the environment variable MEMCACHED_SASL_PWDB
# (memcached's own --enable-sasl-pwdb format).  Debian's memcached is
# built without sasl-pwdb and takes its users from Cyrus SASL instead,
# so when the binary under test is /usr/bin/memcached the same users
# go into a Cyrus sasldb (a Berkeley DB hash written here with DB_File)
# named by a memcached.conf in a directory SASL_CONF_PATH points to;
# every assertion below was checked against Debian's memcached 1.6.18
# that way.  Skipped when the server does not answer SASL_LIST_MECHS.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Cwd qw(abs_path);
use POSIX ();
use Sys::Hostname qw(hostname);
use MemcTest;
use MemcBin;

my %USERS = (testuser => 'testpass', alice => 'wonder land');

my $dir = MemcTest::tmp_dir();
my $pwdb = "$dir/sasl-pwdb";
{
    open my $fh, '>', $pwdb or die "$pwdb: $!";
    print $fh "$_:$USERS{$_}\n" for sort keys %USERS;
    close $fh;
}

my $bin = memc_bin();
my $is_debian = (abs_path($bin) // $bin) eq
                (abs_path('/usr/bin/memcached') // '/usr/bin/memcached');
if ($is_debian) {
    # Cyrus SASL: sasldb keys are "user\0realm\0userPassword"; memcached
    # passes gethostname() as the realm
    eval { require DB_File; 1 }
        or plan skip_all => 'DB_File missing: cannot write a Cyrus sasldb';
    my $sasldb = "$dir/sasldb2";
    my %h;
    my $hash = do { no warnings 'once'; $DB_File::DB_HASH };
    tie %h, 'DB_File', $sasldb, POSIX::O_RDWR() | POSIX::O_CREAT(), 0600,
        $hash or plan skip_all => "cannot create $sasldb: $!";
    my %realms = map { $_ => 1 } grep { defined && length }
                 hostname(), (POSIX::uname())[1];
    for my $realm (keys %realms) {
        $h{"$_\0$realm\0userPassword"} = $USERS{$_} for keys %USERS;
    }
    untie %h;
    open my $fh, '>', "$dir/memcached.conf" or die "$dir: $!";
    print $fh "mech_list: plain\nsasldb_path: $sasldb\n";
    close $fh;
    $ENV{SASL_CONF_PATH} = $dir;
}

# server A: our -o sasl_pwdb (Debian: the Cyrus setup above)
my $srv = eval {
    local $ENV{MEMCACHED_SASL_PWDB};
    delete $ENV{MEMCACHED_SASL_PWDB};
    MemcBin::Server->start('-S', $is_debian ? () : ('-o', "sasl_pwdb=$pwdb"));
};
plan skip_all => "server does not start with -S: "
    . (split /\n/, $@ // '')[0] unless $srv;
{
    my $c = $srv->new_sock;
    my $r = bin_cmd($srv, $c, 'SASL_LIST_MECHS', opaque => 1, timeout => 3);
    plan skip_all => 'server does not answer SASL_LIST_MECHS'
        unless $r && $r->{status} == 0;
    plan skip_all => "no PLAIN in the mechanisms ($r->{value}): on Debian"
        . ' install libsasl2-modules and libsasl2-modules-db'
        unless $r->{value} =~ /(?:^| )PLAIN(?: |$)/;
}

my $AUTHED = bin_res('SASL_AUTH', value => 'Authenticated');

sub plain { my ($u, $p) = @_; return "\0$u\0$p"; }

sub auth {
    my ($s, $data, $opaque, $server) = @_;
    $server ||= $srv;
    return bin_cmd($server, $s, 'SASL_AUTH', key => 'PLAIN', value => $data,
                   opaque => $opaque // 0);
}

# an authenticated connection
sub authed_sock {
    my ($server, $u) = @_;
    $server ||= $srv;
    $u //= 'testuser';
    my $s = $server->new_sock;
    my $r = auth($s, plain($u, $USERS{$u}), 0, $server);
    die "auth failed\n" unless $r && $r->{status} == 0;
    return $s;
}

# --- LIST_MECHS, VERSION: allowed before authentication -------------------
{
    my $s = $srv->new_sock;
    my $r = bin_cmd($srv, $s, 'SASL_LIST_MECHS', opaque => 0x1234);
    ok($r && $r->{magic} == 0x81 && $r->{opcode} == 0x20
       && $r->{status} == 0 && $r->{extlen} == 0 && $r->{keylen} == 0
       && $r->{opaque} == 0x1234 && $r->{cas} == 0,
       'SASL_LIST_MECHS: success, mechanisms in the value');
    like($r->{value}, qr/\A[A-Z0-9_-]+(?: [A-Z0-9_-]+)*\z/,
         'mechanisms: a space separated list');
    like($r->{value}, qr/(?:^| )PLAIN(?: |$)/, '... including PLAIN');
    my $v = bin_cmd($srv, $s, 'VERSION', opaque => 2);
    ok($v && $v->{status} == 0 && $v->{opaque} == 2 && length $v->{value},
       'VERSION works before authentication');
    my $a = auth($s, plain('testuser', 'testpass'), 0x77);
    bin_is($a, bin_res('SASL_AUTH', value => 'Authenticated', opaque => 0x77),
           'LIST_MECHS then AUTH PLAIN on one connection: "Authenticated"');
}

# --- everything else needs authentication ---------------------------------
for my $case (['GET', bin_req('GET', key => 'k', opaque => 11)],
              ['GETQ', bin_req('GETQ', key => 'k', opaque => 12)],
              ['SET', bin_req('SET', key => 'k', extras => set_extras(),
                              value => 'v', opaque => 13)],
              ['SETQ', bin_req('SETQ', key => 'k', extras => set_extras(),
                               value => 'v', opaque => 14)],
              ['NOOP', bin_req('NOOP', opaque => 15)],
              ['STAT', bin_req('STAT', opaque => 16)],
              ['QUIT', bin_req('QUIT', opaque => 17)],
              ['FLUSH', bin_req('FLUSH', opaque => 18)],
              ['INCREMENT', bin_req('INCREMENT', key => 'n', opaque => 19,
                                    extras => incr_extras(1, 1, 0))],
              [0x55, bin_req(0x55, opaque => 20)],
              ['GET', bin_req('GET', key => 'k', extras => '1234',
                              opaque => 21)]) {
    my ($op, $bytes) = @$case;
    my $s = $srv->new_sock;
    $srv->send($bytes, $s);
    my $r = bin_read($srv, $s);
    my $opq = unpack('N', substr($bytes, 12, 4));
    my $name = $op =~ /^\d+$/ ? sprintf('opcode 0x%02x', $op) : $op;
    $name .= ' (malformed)' if $opq == 21;
    bin_is($r, bin_err($op, 'AUTH_ERROR', $opq),
           "$name before AUTH: AUTH_ERROR \"Auth failure.\"");
    ok(bin_closed($srv, $s, 3), '... and the connection is closed');
}
{
    my $s = $srv->new_sock;
    bin_cmd($srv, $s, 'SASL_LIST_MECHS');
    bin_is(bin_cmd($srv, $s, 'GET', key => 'k', opaque => 3),
           bin_err('GET', 'AUTH_ERROR', 3),
           'LIST_MECHS does not authenticate');
}

# --- failures -------------------------------------------------------------
{
    my $s = $srv->new_sock;
    for my $case (['a wrong password', plain('testuser', 'wrong')],
                  ['a prefix of the password', plain('testuser', 'testpas')],
                  ['the password plus a byte', plain('testuser', 'testpass!')],
                  ['an unknown user', plain('nobody', 'testpass')],
                  ['an empty password', plain('testuser', '')],
                  ['another user\'s password', plain('alice', 'testpass')],
                  ['no NUL separators', 'testusertestpass']) {
        my ($name, $data) = @$case;
        bin_is(auth($s, $data, 0x42), bin_err('SASL_AUTH', 'AUTH_ERROR', 0x42),
               "AUTH PLAIN with $name: AUTH_ERROR \"Auth failure.\"");
    }
    bin_is(bin_cmd($srv, $s, 'SASL_AUTH', key => 'BOGUS-MECH',
                   value => plain('testuser', 'testpass'), opaque => 5),
           bin_err('SASL_AUTH', 'AUTH_ERROR', 5),
           'AUTH with an unknown mechanism: AUTH_ERROR');
    bin_is(bin_cmd($srv, $s, 'SASL_STEP', key => 'PLAIN',
                   value => plain('testuser', 'testpass'), opaque => 6),
           bin_err('SASL_STEP', 'AUTH_ERROR', 6),
           'SASL_STEP without an AUTH first: AUTH_ERROR');
    my $v = bin_cmd($srv, $s, 'VERSION', opaque => 7);
    ok($v && $v->{status} == 0, 'failed AUTHs leave the connection open');
    bin_is(bin_cmd($srv, $s, 'GET', key => 'k', opaque => 8),
           bin_err('GET', 'AUTH_ERROR', 8), '... and unauthenticated');
    ok(bin_closed($srv, $s, 3), '... closed after the refused GET');
}

# --- success ----------------------------------------------------------------
my $cas;
{
    my $s = $srv->new_sock;
    bin_is(auth($s, plain('testuser', 'testpass'), 0xabcdef),
           bin_res('SASL_AUTH', value => 'Authenticated', opaque => 0xabcdef),
           'AUTH PLAIN "\0user\0password": success, body "Authenticated"');
    my $r = bin_cmd($srv, $s, 'SET', key => 'sk', extras => set_extras(4, 0),
                    value => 'secret', opaque => 2);
    $cas = $r ? $r->{cas} : 0;
    ok($cas, 'SET after AUTH: success with a CAS');
    bin_is(bin_cmd($srv, $s, 'GET', key => 'sk', opaque => 3),
           bin_res('GET', extras => pack('N', 4), value => 'secret',
                   opaque => 3, cas => $cas), 'GET after AUTH');
    my @st = bin_stats($srv, $s, 'settings');
    my ($ae) = grep { $_->{key} eq 'auth_enabled_sasl' } @st;
    is($ae && $ae->{value}, 'yes', 'stats settings: auth_enabled_sasl yes');
    bin_send($srv, $s, bin_req('GETKQ', key => 'nope', opaque => 4),
             bin_req('GETKQ', key => 'sk', opaque => 5),
             bin_req('NOOP', opaque => 6));
    bin_is(bin_read($srv, $s), bin_res('GETKQ', extras => pack('N', 4),
                                       key => 'sk', value => 'secret',
                                       opaque => 5, cas => $cas),
           'pipelined GETKQ after AUTH');
    bin_is(bin_read($srv, $s), bin_res('NOOP', opaque => 6), '... and NOOP');

    my $o = $srv->new_sock;
    bin_is(bin_cmd($srv, $o, 'GET', key => 'sk', opaque => 9),
           bin_err('GET', 'AUTH_ERROR', 9),
           'authentication is per connection');

    # re-authenticating with a wrong password drops the authentication
    bin_is(auth($s, plain('testuser', 'nope'), 10),
           bin_err('SASL_AUTH', 'AUTH_ERROR', 10),
           'a failed second AUTH on an authenticated connection');
    bin_is(bin_cmd($srv, $s, 'GET', key => 'sk', opaque => 11),
           bin_err('GET', 'AUTH_ERROR', 11), '... leaves it unauthenticated');
}
{
    my $s = $srv->new_sock;
    bin_is(auth($s, plain('alice', 'wonder land')), $AUTHED,
           'second user of the password file');
    $s = $srv->new_sock;
    bin_is(auth($s, "testuser\0testuser\0testpass"), $AUTHED,
           'PLAIN with authzid equal to the user');
    $s = $srv->new_sock;
    bin_is(bin_cmd($srv, $s, 'SASL_AUTH', key => 'plain',
                   value => plain('testuser', 'testpass')), $AUTHED,
           'mechanism name is not case sensitive');
}

# --- AUTH without data, then STEP (AUTH_CONTINUE) --------------------------
{
    my $s = $srv->new_sock;
    bin_is(auth($s, '', 31), bin_res('SASL_AUTH', status => 0x21, opaque => 31),
           'AUTH PLAIN without data: AUTH_CONTINUE (0x21), empty challenge');
    bin_is(bin_cmd($srv, $s, 'SASL_STEP', key => 'PLAIN',
                   value => plain('testuser', 'testpass'), opaque => 32),
           bin_res('SASL_STEP', value => 'Authenticated', opaque => 32),
           'SASL_STEP with the credentials: "Authenticated"');
    bin_is(bin_cmd($srv, $s, 'GET', key => 'sk', opaque => 33),
           bin_res('GET', extras => pack('N', 4), value => 'secret',
                   opaque => 33, cas => $cas), '... and the GET works');
    $s = $srv->new_sock;
    auth($s, '', 34);
    bin_is(bin_cmd($srv, $s, 'SASL_STEP', key => 'PLAIN',
                   value => plain('testuser', 'bad'), opaque => 35),
           bin_err('SASL_STEP', 'AUTH_ERROR', 35),
           'SASL_STEP with a wrong password: AUTH_ERROR');
}

# --- what pecl-memcache sends: AUTH (no LIST_MECHS), then a batch ---------
{
    my $s = $srv->new_sock;
    bin_send($srv, $s,
             bin_req('SASL_AUTH', key => 'PLAIN',
                     value => plain('testuser', 'testpass'), opaque => 1),
             bin_req('INCREMENT', key => 'sess.lock', opaque => 2,
                     extras => incr_extras(1, 1, 15)),
             bin_req('ADD', key => 'sess.lock', opaque => 3,
                     extras => set_extras(768, 15), value => '1'),
             bin_req('GET', key => 'sess', opaque => 4));
    my @r = map { bin_read($srv, $s) } 1 .. 4;
    is_deeply([map { $_ ? [$_->{opcode}, $_->{status}, $_->{opaque}] : undef }
               @r],
              [[0x21, 0, 1], [0x05, 0, 2], [0x02, 2, 3], [0x00, 1, 4]],
              'AUTH + INCREMENT + ADD + GET in one write: answered in order');
    is($r[1] && $r[1]->{value}, pack('Q>', 1), 'INCREMENT created the lock');
}

# --- auth stats ----------------------------------------------------------
{
    my $s = authed_sock();
    my %a = map { $_->{key} => $_->{value} } bin_stats($srv, $s);
    my $t = $srv->new_sock;
    auth($t, plain('testuser', 'x'));
    auth($t, plain('nobody', 'x'));
    auth($t, plain('alice', 'wonder land'));
    my %b = map { $_->{key} => $_->{value} } bin_stats($srv, $s);
    is($b{auth_cmds} - $a{auth_cmds}, 3, 'auth_cmds counts every AUTH');
    is($b{auth_errors} - $a{auth_errors}, 2, 'auth_errors counts failures');
}

# --- text commands on a SASL server ----------------------------------
{
    # -S makes memcached binary-only: a text line is a bad binary header
    my $s = $srv->new_sock;
    $srv->send("get sk and some more keys here\r\n", $s);
    my $got;
    ok(bin_closed($srv, $s, 3, \$got),
       'text command (24+ bytes) on a SASL server: closed without a reply')
        or diag("got: $got");
    $s = $srv->new_sock;
    $srv->send("version\r\n", $s);
    ok(bin_no_reply($srv, $s, 0.3),
       'short text command: no reply (waits for a 24-byte header)');
}

# --- the password file given by MEMCACHED_SASL_PWDB ----------------------
{
    my $env = do {
        local $ENV{MEMCACHED_SASL_PWDB} = $pwdb;
        MemcBin::Server->start('-S');
    };
    my $s = $env->new_sock;
    bin_is(auth($s, plain('alice', 'wonder land'), 0, $env), $AUTHED,
           'MEMCACHED_SASL_PWDB: a user of the file authenticates');
    my $r = bin_cmd($env, $s, 'SET', key => 'e', extras => set_extras(),
                    value => 'v');
    is($r && $r->{status}, 0, '... and can store');
    $s = $env->new_sock;
    bin_is(auth($s, plain('alice', 'wonderland'), 0, $env),
           bin_err('SASL_AUTH', 'AUTH_ERROR'),
           '... a wrong password is refused');
    $env->stop;
}

# --- no ANONYMOUS mechanism (memcached 1.6.18 offers it) ------------------
# A Cyrus memcached.conf without mech_list offers every installed plugin;
# Debian's libsasl2-modules has ANONYMOUS, which lets anyone in.
SKIP: {
    skip 'memcached 1.6.18 offers ANONYMOUS: this is where we differ', 3
        if $is_debian;
    my $cdir = "$dir/nomechlist";
    mkdir $cdir or die "$cdir: $!";
    open my $fh, '>', "$cdir/memcached.conf" or die "$cdir: $!";
    print $fh "sasldb_path: $cdir/sasldb2\n";
    close $fh;
    my $anon = do {
        local $ENV{SASL_CONF_PATH} = $cdir;
        local $ENV{MEMCACHED_SASL_PWDB};
        delete $ENV{MEMCACHED_SASL_PWDB};
        MemcBin::Server->start('-S');
    };
    my $s = $anon->new_sock;
    my $r = bin_cmd($anon, $s, 'SASL_LIST_MECHS', opaque => 1);
    ok($r && $r->{status} == 0 && $r->{value} !~ /ANONYMOUS/,
       'no mech_list: ANONYMOUS is not offered');
    $r = bin_cmd($anon, $s, 'SASL_AUTH', key => 'ANONYMOUS',
                 value => 'nobody');
    ok($r && $r->{status} != 0, 'SASL_AUTH ANONYMOUS is refused');
    $s = $anon->new_sock;
    bin_cmd($anon, $s, 'SASL_AUTH', key => 'ANONYMOUS', value => 'nobody');
    $r = bin_cmd($anon, $s, 'GET', key => 'k', timeout => 2);
    ok(!$r || $r->{status} != 1,
       '... and gives no access (a GET is not answered "not found")');
    $anon->stop;
}

ok($srv->is_alive, 'server still running');

done_testing();
