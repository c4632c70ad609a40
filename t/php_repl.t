#!/usr/bin/perl
# PHP sessions on a paircached pair, each PHP process talking to one
# node only: php-memcached (binary, the default, and text) and pecl
# memcache (ascii and binary).  A session written via A reads back via
# B; with A killed (-9) B still serves it; an update made via B while A
# is down reads back via A once A has restarted (A's client port opens
# only after its resync, so its first answer already has the update).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;
use MemcPHP;
use MemcPair;

require_pair_build();
my @have;
{
    # skip only what is missing: each client is checked on its own
    my $php = MemcPHP::php_bin();
    plan skip_all => 'php-cli not installed' unless $php && -x $php;
    for my $ext (qw(memcached memcache)) {
        my ($st) = MemcTest::run_cmd([$php, '-r',
            "exit(extension_loaded('$ext') && extension_loaded('session')"
            . ' ? 0 : 1);'], timeout => 30);
        push @have, $ext if $st == 0;
    }
    plan skip_all => 'neither php-memcached nor pecl memcache loads'
        unless @have;
    MemcPHP::require_ext(@have, 'session');
}

my $SEQ = 0;
sub new_sid {
    my ($tag) = @_;
    return sprintf('%s%x%x%x', $tag, $$, ++$SEQ, int(rand(0xffffff)));
}

my %CLIENT = (
    'php-memcached binary' => ['memcached', 'On'],
    'php-memcached text'   => ['memcached', 'Off'],
    'pecl memcache ascii'  => ['memcache', 'ascii'],
    'pecl memcache binary' => ['memcache', 'binary'],
);

sub ini_for {
    my ($ext, $proto, $node) = @_;
    my %ini = MemcPHP::session_defaults();
    if ($ext eq 'memcached') {
        %ini = (%ini,
            'session.save_handler'           => 'memcached',
            'session.save_path'              => $node->addr,
            'memcached.sess_binary_protocol' => $proto,
            'memcached.sess_prefix'          => 'memc.sess.key.',
            'memcached.sess_locking'         => '1',
            'memcached.sess_lock_wait_min'   => '50',
            'memcached.sess_lock_wait_max'   => '100',
            'memcached.sess_lock_retries'    => '50',
            'memcached.sess_lock_expire'     => '30',
            'memcached.sess_persistent'      => '0',
            'memcached.sess_number_of_replicas' => '0',
            'memcached.sess_connect_timeout' => '2000');
    } else {
        %ini = (%ini,
            'session.save_handler'        => 'memcache',
            'session.save_path'           => 'tcp://' . $node->addr,
            'memcache.protocol'           => $proto,
            'memcache.lock_timeout'       => '5',
            'memcache.allow_failover'     => '0',
            'memcache.session_redundancy' => '1',
            'memcache.session_prefix_static_key' => '');
    }
    return \%ini;
}

for my $name (sort keys %CLIENT) {
    my ($ext, $proto) = @{ $CLIENT{$name} };
    next unless grep { $_ eq $ext } @have;
    my ($A, $B) = start_pair(linked => 1, repl_timeout => 2);
    my $key = sub { $ext eq 'memcached' ? "memc.sess.key.$_[0]" : $_[0] };
    my $php = sub {
        my ($node, @args) = @_;
        return MemcPHP::run_json(ini_for($ext, $proto, $node), 'session.php',
                                 @args);
    };
    # "read" = start + close: releases the lock ("peek", read_and_close,
    # leaves pecl memcache's lock behind until lock_timeout)
    my $read = sub {
        my ($node, $id) = @_;
        my $r = $php->($node, "read", $id);
        return MemcPHP::sess_data($r && $r->{data_read}), $r;
    };
    my $sid = new_sid('r');

    my $r = $php->($A, 'write', $sid, 'k', 'v');
    ok($r && $r->{start} && $r->{close}, "$name: write via A");
    ok(wait_same($A, $B, $key->($sid), 5)
       && defined $B->item($key->($sid)),
       "$name: the session item is on B, same on both");
    my ($d, $rr) = $read->($B, $sid);
    is_deeply($d, { k => 'v' }, "$name: read via B");
    is_deeply($rr && $rr->{warnings}, [], "$name: no PHP warnings via B");

    $A->kill9;
    ($d) = $read->($B, $sid);
    is_deeply($d, { k => 'v' }, "$name: read via B with A killed");
    $r = $php->($B, 'write', $sid, 'k2', 'while A was down');
    ok($r && $r->{start} && $r->{close}, "$name: update via B while A is "
       . 'down');

    $A->restart;
    ($d, $rr) = $read->($A, $sid);
    is_deeply($d, { k => 'v', k2 => 'while A was down' },
              "$name: the restarted A serves the update at once");
    is_deeply($rr && $rr->{warnings}, [], "$name: no PHP warnings via A");

    # and a normal read-modify-write via A reaches B again
    $r = $php->($A, 'write', $sid, 'k3', 'after');
    ok($r && $r->{close}, "$name: write via A after the restart");
    ok(wait_until(sub {
        my $it = $B->item($key->($sid));
        ref $it && index($it->{value}, 'k3|s:5:"after"') >= 0;
    }, 5), "$name: it reaches B");
    ($d) = $read->($B, $sid);
    is_deeply($d, { k => 'v', k2 => 'while A was down', k3 => 'after' },
              "$name: read via B");
}

done_testing();
