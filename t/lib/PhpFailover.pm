package PhpFailover;

# The PHP client configurations the README recommends for a pair, and
# the faults they must ride through, for t/php_failover.t (short run)
# and scripts/php-soak.pl (minutes).  Every configuration names both
# nodes in session.save_path.  A schedule is a list of steps (SIGKILL
# of a node, its restart with the gate closed until synced, SIGSTOP
# for longer than the clients' timeouts, SIGCONT, a cut of the link
# with both nodes up, its repair); run_steps() plays it while ticking
# SessLoad streams, so the request rate stays steady throughout.

use strict;
use warnings;

use Carp qw(croak);
use Time::HiRes qw(time);
use MemcPHP ();
use MemcPair ();
use PhpFpm ();
use SessLoad ();

# Seconds a SIGSTOP lasts: longer than every client's timeout (pecl
# memcache: 1 s per server; php-memcached: libmemcached's poll timeout,
# 5 s, which its session handler cannot change).
our $STOP_SECS = 7;

# The configurations, each { name, ext, ini, cli, fpm, expect }: ini
# for php-cli and for the php-fpm pool alike (persistent connections
# off, the clients' default), run in php-cli when cli, in php-fpm when
# fpm; expect "clean" (no logout, no stale read, no failed request
# beyond those in flight at a SIGKILL or SIGSTOP), "hang_errors" (the
# same, except that requests may fail while a node is stopped),
# "down_errors" (no logout, no stale read, no failed request while both
# nodes answer; those while a node is down or stopped are counted and
# shown) or "measure" (shown only).  The recommended
# ones come first; with $all, also the set-ups the README warns
# against, each with what goes wrong (measured by scripts/php-soak.pl).
# $A, $B: the two nodes.
sub configs {
    my ($A, $B, $all) = @_;
    my %base = (MemcPHP::session_defaults());
    my $memc_path = join ',', map { '127.0.0.1:' . $_->port } $A, $B;
    # php-memcached: sessions fail over only with the binary protocol
    # and a replica (reads go to it when the key's server does not
    # answer) and with failed servers removed (the lock key moves to the
    # other node); the lock must expire, or a lock that a hung node
    # stores when it wakes up (the add a timed-out request left in its
    # socket) blocks the session for good
    my %memd = (%base,
        'session.save_handler'                 => 'memcached',
        'session.save_path'                    => $memc_path,
        'memcached.sess_binary_protocol'       => '1',
        'memcached.sess_number_of_replicas'    => '1',
        'memcached.sess_remove_failed_servers' => '1',
        'memcached.sess_server_failure_limit'  => '1',
        'memcached.sess_locking'               => '1',
        'memcached.sess_lock_expire'           => '3',
        'memcached.sess_lock_wait_min'         => '150',
        'memcached.sess_lock_wait_max'         => '150',
        'memcached.sess_lock_retries'          => '60',
        'memcached.sess_persistent'            => '0',
        'memcached.sess_connect_timeout'       => '1000');
    my $pecl_path = sub {
        my ($q) = @_;
        return join ', ', map { 'tcp://127.0.0.1:' . $_->port . $q } $A, $B;
    };
    # pecl memcache: the seed's set-up; session_redundancy left at 2
    my %pecl = (%base,
        'session.save_handler'           => 'memcache',
        'session.save_path'              => $pecl_path->(''),
        'memcache.allow_failover'        => '1',
        'memcache.max_failover_attempts' => '20',
        'memcache.hash_strategy'         => 'standard',
        'memcache.hash_function'         => 'crc32');
    my @c = (
        { name => 'pecl memcache ascii (seed)', ext => 'memcache',
          ini => { %pecl, 'memcache.protocol' => 'ascii' } },
        { name => 'pecl memcache binary', ext => 'memcache',
          ini => { %pecl, 'memcache.protocol' => 'binary' } },
        # a get sent to a node that then hangs is not retried: requests
        # for the sessions on a stopped node can fail until it is back
        { name => 'php-memcached binary', ext => 'memcached',
          ini => { %memd }, expect => 'hang_errors' },
        # libmemcached reads from a replica in the binary protocol only:
        # a session whose key is on a dead or hung node fails to load
        # when its lock key is on the other node (the get is then the
        # first request to the dead node, and is not retried)
        { name => 'php-memcached text', ext => 'memcached',
          ini => { %memd, 'memcached.sess_binary_protocol' => '0' },
          expect => 'down_errors' },
    );
    push @c, (
        # every session on a node is lost while it is down or hung
        { name => 'pecl memcache, session_redundancy=1', ext => 'memcache',
          ini => { %pecl, 'memcache.session_redundancy' => '1' },
          expect => 'measure' },
        { name => 'pecl memcache ascii, persistent', ext => 'memcache',
          ini => { %pecl, 'session.save_path' => $pecl_path->(
              '?persistent=1') }, cli => 0, expect => 'measure' },
        # the get is not retried on the other node
        { name => 'php-memcached binary, no replica', ext => 'memcached',
          ini => { %memd, 'memcached.sess_number_of_replicas' => '0' },
          expect => 'measure' },
        # the lock never expires in php-cli (max_execution_time 0)
        { name => 'php-memcached binary, lock_expire 0', ext => 'memcached',
          ini => { %memd, 'memcached.sess_lock_expire' => '0' },
          fpm => 0, expect => 'measure' },
        # libmemcached never retries a server it marked dead
        { name => 'php-memcached binary, persistent', ext => 'memcached',
          ini => { %memd, 'memcached.sess_persistent' => '1' }, cli => 0,
          expect => 'measure' },
    ) if $all;
    for my $c (@c) {
        $c->{cli} //= 1;
        $c->{fpm} //= 1;
        $c->{expect} //= 'clean';
    }
    return @c;
}

# the default schedule: each node in turn killed, restarted, stopped
# and continued, then the link cut and repaired
sub default_steps {
    my (%o) = @_;
    my $calm = $o{calm} // 2.5;
    my @s = $o{no_warm} ? () : (['warm', $calm]);
    for my $n ($o{b_first} ? qw(B A) : qw(A B)) {
        push @s, ["kill $n", $calm], ["restart $n", $calm],
                 ["stop $n", $o{stop} // $STOP_SECS], ["cont $n", $calm];
    }
    push @s, ['cut link ' . ($o{cut_mode} // 'blackhole'), $o{cut} // 4],
             ['repair link', $calm];
    return @s;
}

# php-fpm with a pool per configuration that runs there (undef when
# $no_fpm), and a SessLoad stream per configuration and SAPI; each
# stream gets {config} = its configuration
sub start_loads {
    my ($configs, %o) = @_;
    my $fpm;
    my $i = 0;
    $_->{pool} = 'p' . ++$i for @$configs;
    if (!$o{no_fpm}) {
        my %pools = map { ($_->{pool} => { ini => $_->{ini}, workers => 2 }) }
                    grep { $_->{fpm} } @$configs;
        $fpm = PhpFpm->start(pools => \%pools, extra => [@MemcPHP::EXTRA])
            if %pools;
    }
    my @loads;
    for my $c (@$configs) {
        my %common = (sessions => $o{sessions} // 6,
                      interval => $o{interval} // 0.3);
        if ($c->{cli}) {
            push @loads, SessLoad->new(%common, name => "$c->{name}, php-cli",
                                       tag => "c$c->{pool}x",
                                       cli => $c->{ini});
        }
        if ($c->{fpm} && $fpm) {
            push @loads, SessLoad->new(%common, name => "$c->{name}, php-fpm",
                                       tag => "f$c->{pool}x", fpm => $fpm,
                                       pool => $c->{pool});
        }
        $loads[-1]{config} = $c if @loads;
        if ($o{nodes}) {
            my $prefix = $c->{ext} eq 'memcached'
                ? $c->{ini}{'memcached.sess_prefix'} // 'memc.sess.key.' : '';
            my $peek = sub { _peek($o{nodes}, $prefix . $_[0]) };
            $loads[-1]{on_bad} = $peek;
            $loads[-2]{on_bad} = $peek if $c->{cli} && $c->{fpm} && $fpm;
        }
        $loads[-2]{config} = $c if $c->{cli} && $c->{fpm} && $fpm;
    }
    return ($fpm, \@loads);
}

# "A: n=7 (cas 123), B: absent" for session key $key on each node
sub _peek {
    my ($nodes, $key) = @_;
    my @o;
    for my $n (@$nodes) {
        next if $n->{stopped} || !$n->{pid};
        my $it = $n->item($key);
        push @o, $n->name . ': ' . (!defined $it ? 'absent'
            : !ref $it ? 'no answer'
            : ($it->{value} =~ /n\|i:(\d+);/ ? "n=$1" : 'no count')
              . " (cas $it->{cas})");
    }
    return join ', ', @o;
}

# both nodes linked with nothing left to send: the pair has healed
sub caught_up {
    my ($A, $B) = @_;
    for my $n ($A, $B) {
        my $s = $n->repl_stats or return 0;
        return 0 unless ($s->{link_state} // '') eq 'linked'
            && ($s->{lag_items} // 1) == 0 && ($s->{buffer_bytes} // 1) == 0;
    }
    return 1;
}

# play @$steps on nodes $A, $B (a pair started with relay => 1) while
# ticking @$loads; returns a list of problems with the pair itself
# (a node that did not come back, a link that did not return)
sub run_steps {
    my ($A, $B, $loads, $steps, %o) = @_;
    my %node = (A => $A, B => $B);
    my @trouble;
    my $log = $o{log} // sub {};
    for my $st (@$steps) {
        my ($what, $secs) = @$st;
        my ($verb, $who) = split / /, $what;
        $who = '' unless $who && $node{$who};
        my $n = $node{$who // ''};
        SessLoad::event($what, kind => $verb);
        $log->($what);
        if ($verb eq 'kill') {
            $n->kill9;
        } elsif ($verb eq 'restart') {
            $n->spawn;
            SessLoad::pump($loads, 30, sub { $n->_answers_version })
                or push @trouble, "$who did not reopen its client port "
                    . 'within 30 s: ' . $n->log_tail(10);
            SessLoad::event("$who open", kind => 'open');
        } elsif ($verb eq 'stop') {
            $n->sigstop;
        } elsif ($verb eq 'cont') {
            $n->sigcont;
        } elsif ($what =~ /^cut link (\S+)$/) {
            $_->relay->cut($1) for $A, $B;
        } elsif ($what eq 'repair link') {
            $_->relay->restore for $A, $B;
        } elsif ($verb ne 'warm' && $verb ne 'calm') {
            croak "unknown step $what";
        }
        if ($verb =~ /^(restart|cont|repair)$/) {
            # the next fault only once the pair has healed from this one
            my $t = time;
            SessLoad::pump($loads, 30, sub { caught_up($A, $B) })
                or push @trouble, "after '$what' the pair did not catch "
                    . 'up within 30 s';
            SessLoad::event('caught up');
            $log->(sprintf 'caught up in %.1f s', time - $t);
        }
        SessLoad::pump($loads, $secs);
    }
    return @trouble;
}

1;
