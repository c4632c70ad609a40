#!/usr/bin/perl
# PHP sessions through pecl memcache (session.save_handler=memcache,
# save_path tcp://127.0.0.1:PORT) with memcache.protocol=ascii and
# =binary: write in one php process and read in another, locking
# between two concurrent processes (the client locks with "incr
# <sid>.lock 1" then "add <sid>.lock 768 <lock_timeout> 1"; in binary
# an INCREMENT that creates the key with initial value 1), a stale lock
# that the server expires, expiry by gc_maxlifetime (the client sends
# an absolute expiry time), session_destroy.  K = <sid>, L = <sid>.lock.
# pecl memcache has no validate_sid (strict mode) and no touch: a read
# rewrites the session.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcTest;
use MemcPHP;

MemcPHP::require_ext('memcache', 'session');

my $SEQ = 0;

sub new_sid {
    my ($tag) = @_;
    return sprintf('%s%x%x%x', $tag, $$, ++$SEQ, int(rand(0xffffff)));
}

sub ini_for {
    my ($srv, $proto, %over) = @_;
    return {
        MemcPHP::session_defaults(),
        'session.save_handler'        => 'memcache',
        'session.save_path'           => 'tcp://' . $srv->addr,
        'memcache.protocol'           => $proto,
        'memcache.lock_timeout'       => '5',
        'memcache.allow_failover'     => '1',
        'memcache.session_redundancy' => '2',
        'memcache.compress_threshold' => '20000',
        'memcache.session_prefix_static_key' => '',
        %over,
    };
}

sub no_warnings {
    my ($r, $what) = @_;
    is_deeply($r && $r->{warnings}, [], "$what: no PHP warnings")
        or diag(explain($r));
}

sub data_of {
    my ($r, $field) = @_;
    return MemcPHP::sess_data($r && $r->{ $field // 'data_read' });
}

sub mode_tests {
    my ($mode) = @_;
    my $srv = MemcTest->start();
    my $ini = sub { ini_for($srv, $mode, @_) };
    # "read" = start + close: the request every other check reads with
    # (read_and_close would leave this client's lock behind)
    my $php = sub {
        my ($over, @args) = @_;
        return MemcPHP::run_json($ini->(%$over), 'session.php', @args);
    };

    # --- write in one process, read in another ---------------------------
    my $sid = new_sid('w');
    my $r = $php->({}, 'write', $sid, 'k', 'v');
    ok($r && $r->{start} && $r->{close}, 'write: session_start and close ok');
    is($r && $r->{id}, $sid, 'write: our session id was used');
    no_warnings($r, 'write');
    my ($val, $flags) = $srv->mem_get($sid);
    is($val, 'k|s:1:"v";', 'the server holds the session under <sid>');
    is($flags, 0, 'session stored with flags 0');
    my ($lv, $lf) = $srv->mem_get("$sid.lock");
    is($lv, '0', 'lock key set to "0" (released) at the end');
    is($lf, 768, 'lock key has flags 768');

    $r = $php->({}, 'read', $sid);
    ok($r && $r->{start} && $r->{close},
       'read: session_start ok in a second process');
    is($r && $r->{id}, $sid, 'read: same session id');
    is_deeply(data_of($r), { k => 'v' },
              'read: data written by the first process');
    no_warnings($r, 'read');

    $r = $php->({}, 'write', $sid, 'k2', 'second');
    is_deeply(data_of($r), { k => 'v' },
              'third process reads the session before changing it');
    $r = $php->({}, 'read', $sid);
    is_deeply(data_of($r), { k => 'v', k2 => 'second' },
              'the rewrite replaced the value');

    $r = $php->({}, 'write', '-', 'fresh', 'yes');
    my $newid = $r && $r->{id};
    ok(defined $newid && length $newid >= 22, 'PHP generated a session id');
    $r = $php->({}, 'read', $newid // 'none');
    is_deeply(data_of($r), { fresh => 'yes' },
              'session with a generated id reads back');

    # 200 KB: above compress_threshold the client compresses and sets
    # flag bit 0x2; the server must keep flags and bytes as they are
    my $bsid = new_sid('b');
    $r = $php->({}, 'big', $bsid, 200000);
    ok($r && $r->{close}, 'write a 200 KB session');
    my $want = ref($r && $r->{data}) eq 'HASH' ? $r->{data}{big} : undef;
    (undef, $flags) = $srv->mem_get($bsid);
    ok(defined $flags && ($flags & 2), 'big session stored compressed')
        or diag('flags ' . ($flags // 'undef'));
    $r = $php->({}, 'read', $bsid);
    my $got = data_of($r)->{big};
    ok(defined $got && defined $want && length($got) == 200000
       && $got eq $want, '200 KB session reads back intact');

    # --- locking: two concurrent processes on one session ---------------
    {
        my $lsid = new_sid('l');
        my $dir = tmp_dir();
        my ($ra, $rb) = map { "$dir/ready-$lsid-$_" } qw(a b);
        my $a = MemcPHP::spawn($ini->(), 'session.php', 'incr', $lsid,
                               1500, $ra);
        ok(wait_until(sub { -e $ra }, 15, 'first process holds the lock'),
           'lock: first process started its session');
        is(scalar $srv->mem_get("$lsid.lock"), '1',
           'lock: lock key holds "1" while the session is open');
        my $b = MemcPHP::spawn($ini->(), 'session.php', 'incr', $lsid, 0,
                               $rb);
        my $ja = MemcPHP::wait_json($a);
        my $jb = MemcPHP::wait_json($b);
        ok($ja && $ja->{start} && $ja->{close}, 'lock: first process ok');
        ok($jb && $jb->{start} && $jb->{close}, 'lock: second process ok');
        no_warnings($ja, 'lock: first');
        no_warnings($jb, 'lock: second');
        is($ja && $ja->{n_read}, 0, 'lock: first process read n = 0');
        ok($jb && $ja && $jb->{t_begin} < $ja->{t_closing},
           'lock: second process started while the first held the lock');
        ok($jb && $ja && $jb->{t_started} >= $ja->{t_closing},
           'lock: second session_start returned after the first closed')
            or diag(explain([$ja, $jb]));
        is($jb && $jb->{n_read}, 1, 'lock: second process read n = 1');
        $r = $php->({}, 'read', $lsid);
        is_deeply(data_of($r), { n => 2 },
                  'lock: final counter is 2, no lost update');
        is(scalar $srv->mem_get("$lsid.lock"), '0',
           'lock: lock key released ("0") at the end');
    }

    # --- a stale lock (its request died) expires on the server ----------
    {
        my $ssid = new_sid('s');
        $php->({}, 'write', $ssid, 's', '1');
        # what a request that died holding the lock leaves behind, with
        # a 1 s lifetime (memcache.lock_timeout=1 in that request)
        is($srv->mem_add("$ssid.lock", '1', 768, 1), "NOT_STORED\r\n",
           'stale lock: the released lock key exists');
        is($srv->mem_set("$ssid.lock", '1', 768, 1), "STORED\r\n",
           'stale lock: lock taken with a 1 s ttl');
        # the next request spins on incr (2, 3, ...) until the server
        # expires the key; then incr misses (ascii: NOT_FOUND, then add
        # wins) or creates it anew (binary: initial value 1)
        my $t0 = time;
        $r = $php->({}, 'write', $ssid, 's', '2');
        ok($r && $r->{start} && $r->{close},
           'stale lock: the next request got the lock once it expired');
        no_warnings($r, 'stale lock');
        my $waited = $r ? $r->{t_started} - $r->{t_begin} : -1;
        note(sprintf('stale lock: waited %.2f s for the lock', $waited));
        ok(time - $t0 < 4, 'stale lock: within the lock ttl');
        is_deeply(data_of($r), { s => '1' }, 'stale lock: data read');
        is(scalar $srv->mem_get($ssid), 's|s:1:"2";',
           'stale lock: the new data was written');
        is(scalar $srv->mem_get("$ssid.lock"), '0',
           'stale lock: lock released');
    }

    # --- expiry (absolute expiry time) and extension by a later request
    {
        my $short = { 'session.gc_maxlifetime' => '2' };
        my $esid = new_sid('e');
        my $xsid = new_sid('x');
        my $t0 = time;
        $r = $php->($short, 'write', $esid, 'e', '1');
        ok($r && $r->{close}, 'expiry: session written with lifetime 2');
        $r = $php->($short, 'write', $xsid, 'x', '1');
        my $t_x = time;
        ok($r && $r->{close}, 'extend: session written with lifetime 2');
        ok(defined $srv->mem_get($esid), 'expiry: live at first');
        # no touch in this client: an unchanged session is written again,
        # here with a longer lifetime
        $r = $php->({ 'session.gc_maxlifetime' => '3600' }, 'read', $xsid);
        ok($r && $r->{start} && $r->{close}, 'extend: session read');
        no_warnings($r, 'extend');

        ok(wait_until(sub { !defined $srv->mem_get($esid) }, 8,
                      'session with gc_maxlifetime=2 to expire'),
           'expiry: the session key expired');
        my $took = time - $t0;
        ok($took <= 4.5, 'expiry: within about 3 s') or diag("took ${took}s");
        $r = $php->({}, 'read', $esid);
        is_deeply(data_of($r), {}, 'expiry: PHP finds the session empty');

        wait_until(sub { time >= $t_x + 3.2 }, 5);
        is(scalar $srv->mem_get($xsid), 'x|s:1:"1";',
           'extend: the rewritten session outlived its first lifetime');
        $r = $php->({}, 'read', $xsid);
        is_deeply(data_of($r), { x => '1' }, 'extend: PHP reads it back');
    }

    # --- session_destroy -------------------------------------------------
    {
        my $dsid = new_sid('d');
        $php->({}, 'write', $dsid, 'gone', 'soon');
        ok(defined $srv->mem_get($dsid), 'destroy: session exists');
        $r = $php->({}, 'destroy', $dsid);
        ok($r && $r->{start} && $r->{destroy}, 'destroy: session_destroy ok');
        no_warnings($r, 'destroy');
        is(scalar $srv->mem_get($dsid), undef, 'destroy: session key deleted');
        is(scalar $srv->mem_get("$dsid.lock"), undef,
           'destroy: lock key deleted');
        $r = $php->({}, 'read', $dsid);
        is_deeply(data_of($r), {}, 'destroy: a later request finds no data');
    }

    like($srv->cmd('version'), qr/\AVERSION /, 'server still answers');
    $srv->stop;
}

for my $mode (qw(ascii binary)) {
    subtest "pecl memcache sessions, $mode protocol" => sub {
        mode_tests($mode);
    };
}

done_testing();
