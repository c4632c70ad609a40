#!/usr/bin/perl
# PHP sessions through php-memcached (session.save_handler=memcached,
# libmemcached), in binary mode (memcached.sess_binary_protocol=On, the
# default) and in text mode (Off): write in one php process and read
# in another, locking between two concurrent processes, strict mode
# (validate_sid: "add K 0 2678400 0" must leave no live key), expiry
# by gc_maxlifetime, the lazy_write touch path, session_destroy.
# Each php process is one "request"; we look at the keys directly too:
# K = memc.sess.key.<sid>, lock L = memc.sess.key.lock.<sid>.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcTest;
use MemcPHP;

MemcPHP::require_ext('memcached', 'session');

my $PREFIX = 'memc.sess.key.';
my $SEQ = 0;

# a fresh session id (PHP accepts [a-z0-9,-])
sub new_sid {
    my ($tag) = @_;
    return sprintf('%s%x%x%x', $tag, $$, ++$SEQ, int(rand(0xffffff)));
}

sub ini_for {
    my ($srv, $proto, %over) = @_;
    return {
        MemcPHP::session_defaults(),
        'session.save_handler'           => 'memcached',
        'session.save_path'              => $srv->addr,
        'memcached.sess_binary_protocol' => $proto,
        'memcached.sess_prefix'          => $PREFIX,
        'memcached.sess_locking'         => '1',
        # lock attempts every 50-100 ms, 100 times: a 10 s budget
        'memcached.sess_lock_wait_min'   => '50',
        'memcached.sess_lock_wait_max'   => '100',
        'memcached.sess_lock_retries'    => '100',
        'memcached.sess_lock_expire'     => '30',
        'memcached.sess_persistent'      => '0',
        'memcached.sess_number_of_replicas' => '0',
        'memcached.sess_connect_timeout' => '2000',
        %over,
    };
}

sub no_warnings {
    my ($r, $what) = @_;
    is_deeply($r && $r->{warnings}, [], "$what: no PHP warnings")
        or diag(explain($r));
}

sub mode_tests {
    my ($mode, $proto) = @_;
    my $srv = MemcTest->start();
    my $ini = sub { ini_for($srv, $proto, @_) };
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
    is(scalar $srv->mem_get("$PREFIX$sid"), 'k|s:1:"v";',
       'the server holds the serialized session under memc.sess.key.<sid>');
    my (undef, $flags) = $srv->mem_get("$PREFIX$sid");
    is($flags, 0, 'session stored with flags 0');
    is(scalar $srv->mem_get("${PREFIX}lock.$sid"), undef,
       'lock key deleted at the end of the request');

    $r = $php->({}, 'peek', $sid);
    ok($r && $r->{start}, 'read: session_start ok in a second process');
    is($r && $r->{id}, $sid, 'read: same session id');
    is_deeply(MemcPHP::sess_data($r && $r->{data}), { k => 'v' },
              'read: data written by the first process');
    no_warnings($r, 'read');

    $r = $php->({}, 'write', $sid, 'k2', 'second');
    is_deeply(MemcPHP::sess_data($r && $r->{data_read}), { k => 'v' },
              'third process reads the session before changing it');
    $r = $php->({}, 'peek', $sid);
    is_deeply(MemcPHP::sess_data($r && $r->{data}),
              { k => 'v', k2 => 'second' }, 'the rewrite replaced the value');

    # a new id made by PHP (create_sid: "add K" with an empty value)
    $r = $php->({}, 'write', '-', 'fresh', 'yes');
    my $newid = $r && $r->{id};
    ok(defined $newid && length $newid >= 22, 'PHP generated a session id');
    $r = $php->({}, 'peek', $newid // 'none');
    is_deeply(MemcPHP::sess_data($r && $r->{data}), { fresh => 'yes' },
              'session with a generated id reads back');

    # a large session (200 KB)
    my $bsid = new_sid('b');
    $r = $php->({}, 'big', $bsid, 200000);
    ok($r && $r->{close}, 'write a 200 KB session');
    my $want = $r && sess_big($r->{data});
    $r = $php->({}, 'peek', $bsid);
    my $got = $r && sess_big($r->{data});
    ok(defined $got && defined $want && length($got) == 200000
       && $got eq $want, '200 KB session reads back intact');

    # --- locking: two concurrent processes on one session ---------------
    {
        my $lsid = new_sid('l');
        my $dir = tmp_dir();
        my ($ra, $rb, $rc) = map { "$dir/ready-$lsid-$_" } qw(a b c);
        my $a = MemcPHP::spawn($ini->(), 'session.php', 'incr', $lsid,
                               1500, $ra);
        ok(wait_until(sub { -e $ra }, 15, 'first process holds the lock'),
           'lock: first process started its session');
        is(scalar $srv->mem_get("${PREFIX}lock.$lsid"), '1',
           'lock: lock key holds "1" while the session is open');

        # a process with no patience gives up: the server keeps refusing
        # "add" on the lock key (NOT_STORED / KEY_EEXISTS)
        my $rcj = MemcPHP::run_json($ini->(
            'memcached.sess_lock_retries' => '1',
            'memcached.sess_lock_wait_min' => '20',
            'memcached.sess_lock_wait_max' => '20'),
            'session.php', 'read', $lsid);
        ok($rcj && !$rcj->{start},
           'lock: session_start fails for a process that cannot wait')
            or diag(explain($rcj));

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
        $r = $php->({}, 'peek', $lsid);
        is_deeply(MemcPHP::sess_data($r && $r->{data}), { n => 2 },
                  'lock: final counter is 2, no lost update');
        is(scalar $srv->mem_get("${PREFIX}lock.$lsid"), undef,
           'lock: lock key gone at the end');
    }

    # --- strict mode: validate_sid is "add K 0 2678400 0" --------------
    {
        my $strict = { 'session.use_strict_mode' => '1' };
        my $unknown = new_sid('u');
        $r = $php->($strict, 'peek', $unknown);
        ok($r && $r->{start}, 'strict: session_start ok');
        isnt($r && $r->{id}, $unknown,
             'strict: an unknown client id is rejected, a new one made');
        is_deeply(MemcPHP::sess_data($r && $r->{data}), {},
                  'strict: the new session is empty');
        no_warnings($r, 'strict');
        is(scalar $srv->mem_get("$PREFIX$unknown"), undef,
           'strict: "add" with exptime 2678400 (1970) left no live key');
        $r = $php->($strict, 'peek', $unknown);
        isnt($r && $r->{id}, $unknown,
             'strict: the same unknown id is rejected again');
        $r = $php->($strict, 'peek', $sid);
        is($r && $r->{id}, $sid, 'strict: a stored session id is accepted');
        is_deeply(MemcPHP::sess_data($r && $r->{data}),
                  { k => 'v', k2 => 'second' }, 'strict: with its data');
    }

    # --- expiry and the lazy_write touch path --------------------------
    {
        my $short = { 'session.gc_maxlifetime' => '2' };
        my $esid = new_sid('e');
        my $tsid = new_sid('t');
        my $t0 = time;
        $r = $php->($short, 'write', $esid, 'e', '1');
        ok($r && $r->{close}, 'expiry: session written with ttl 2');
        $r = $php->($short, 'write', $tsid, 't', '1');
        my $t_write = time;
        ok($r && $r->{close}, 'touch: session written with ttl 2');
        ok(defined $srv->mem_get("$PREFIX$esid"), 'expiry: live at first');

        # unchanged data + lazy_write: the handler only touches the key,
        # here with a longer lifetime
        my $before = $srv->stats;
        my $cas0 = $srv->mem_cas("$PREFIX$tsid");
        $r = $php->({ 'session.gc_maxlifetime' => '3600' }, 'read', $tsid);
        my $after = $srv->stats;
        ok($r && $r->{start} && $r->{close}, 'touch: unchanged session read');
        is($after->{cmd_touch} - $before->{cmd_touch}, 1,
           'touch: lazy_write sent one touch');
        is($after->{touch_hits} - $before->{touch_hits}, 1,
           'touch: it hit');
        # cmd_set counts the lock "add" only; a touch keeps the cas
        is($after->{cmd_set} - $before->{cmd_set}, 1,
           'touch: the only store was the lock add');
        is($srv->mem_cas("$PREFIX$tsid"), $cas0,
           'touch: the session item was not rewritten (same cas)');
        no_warnings($r, 'touch');

        ok(wait_until(sub { !defined $srv->mem_get("$PREFIX$esid") }, 8,
                      'session with gc_maxlifetime=2 to expire'),
           'expiry: the session key expired');
        my $took = time - $t0;
        ok($took <= 4.5, 'expiry: within about 3 s')
            or diag("took ${took}s");
        $r = $php->({}, 'peek', $esid);
        is_deeply(MemcPHP::sess_data($r && $r->{data}), {},
                  'expiry: PHP finds the session empty');

        # the touched session outlives its first 2 s lifetime
        wait_until(sub { time >= $t_write + 3.2 }, 5);
        is(scalar $srv->mem_get("$PREFIX$tsid"), 't|s:1:"1";',
           'touch: the touched session outlived its first ttl');
        $r = $php->({}, 'peek', $tsid);
        is_deeply(MemcPHP::sess_data($r && $r->{data}), { t => '1' },
                  'touch: PHP reads it back');
    }

    # --- session_destroy -------------------------------------------------
    {
        my $dsid = new_sid('d');
        $php->({}, 'write', $dsid, 'gone', 'soon');
        ok(defined $srv->mem_get("$PREFIX$dsid"), 'destroy: session exists');
        $r = $php->({}, 'destroy', $dsid);
        ok($r && $r->{start} && $r->{destroy}, 'destroy: session_destroy ok');
        no_warnings($r, 'destroy');
        is(scalar $srv->mem_get("$PREFIX$dsid"), undef,
           'destroy: session key deleted');
        is(scalar $srv->mem_get("${PREFIX}lock.$dsid"), undef,
           'destroy: lock key deleted');
        $r = $php->({}, 'peek', $dsid);
        is_deeply(MemcPHP::sess_data($r && $r->{data}), {},
                  'destroy: a later request finds no data');
    }

    like($srv->cmd('version'), qr/\AVERSION /, 'server still answers');
    $srv->stop;
}

sub sess_big {
    my ($d) = @_;
    return ref $d eq 'HASH' ? $d->{big} : undef;
}

for my $m (['binary', 'On'], ['text', 'Off']) {
    subtest "php-memcached sessions, $m->[0] protocol" => sub {
        mode_tests(@$m);
    };
}

done_testing();
