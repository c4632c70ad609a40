package MemcPair;

# Starts a paircached pair for the t/repl_*.t tests: two nodes on
# 127.0.0.1, each with a client port and a replication port, each
# pointed (-x) at the other's replication port, directly or through a
# TcpRelay so that a test can cut the network.  Both processes are
# started before we wait for either, since a node with -x keeps its
# client port closed until its first sync with the peer.
#
# The nodes are MemcTest objects (MemcPair::Node) with a few more
# methods: restart, kill9, sigstop, sigcont, repl_stats, item.  The
# helpers poll with a deadline (wait_linked, wait_value, wait_same);
# nothing here sleeps blindly.  MemcTest's END kills every process we
# started, restarted ones included; a stopped node is killed too.

use strict;
use warnings;

use Carp qw(croak);
use Exporter qw(import);
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(time sleep);
use MemcTest;
use TcpRelay;

our @EXPORT = qw(require_pair_build start_pair wait_linked wait_value
                 wait_same wait_stat free_ports refused esc stat_of has_all
                 missing secret_file never_link must_refuse preload_noreply
                 fake_peer lone_node peer_closed closed_ports hold_port
                 test_secret);

# true when the node closes fake-peer socket $s within $secs (default
# 5), whatever it sends meanwhile (read and dropped)
sub peer_closed {
    my ($s, $secs) = @_;
    my $deadline = time + ($secs // 5);
    while (time < $deadline) {
        MemcTest::_drain($s, 0.1);
        return 1 if MemcTest::_closed($s, 0.05);
    }
    return 0;
}

# A node whose peer never answers (-x to a free port), serving after a
# one-second initial-sync timeout: the target of a fake peer
# (fake_peer($node->repl_port)).  Returns the node, spawned.
sub lone_node {
    my (%o) = @_;
    my ($port, $rport) = free_ports(2);
    my ($nobody) = closed_ports(1);
    my $n = MemcPair::Node->create(name => 'A', port => $port,
                                   repl_port => $rport, dial => $nobody,
                                   o => ['repl_initial_sync_timeout=1',
                                         @{ $o{o} || [] }]);
    $n->spawn;
    return $n;
}

# plan skip_all unless MEMCACHED_BIN is a build with pair replication
sub require_pair_build {
    my $bin = MemcTest::memc_bin();
    plan skip_all => "$bin not found" unless -x $bin;
    my (undef, $help) = MemcTest::run_cmd([$bin, '-h'], timeout => 10);
    plan skip_all => "$bin has no pair replication (-h does not mention "
        . '--peer); set MEMCACHED_BIN to the paircached build'
        unless ($help // '') =~ /--peer/;
    return $bin;
}

# $n distinct free ports on 127.0.0.1
sub free_ports {
    my ($n) = @_;
    my %seen;
    my @p;
    while (@p < $n) {
        my $p = MemcTest::free_port();
        push @p, $p unless $seen{$p}++;
    }
    return @p;
}

# $n ports on 127.0.0.1 that refuse connections for as long as this
# test runs: each is bound (no SO_REUSEADDR) and never listens, so no
# concurrent test's free_ports() can hand it out and a node told to dial
# it ("a peer that is not there") can never reach another test's node.
my @HELD;
sub closed_ports {
    my ($n) = @_;
    my @p;
    for (1 .. $n) {
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => 0, Proto => 'tcp')
            or croak "cannot bind a closed port: $!";
        push @HELD, $s;
        push @p, $s->sockport;
    }
    return @p;
}

# let a node of this test listen on a port closed_ports() holds
sub release_port {
    my ($port) = @_;
    @HELD = grep { $_->sockport != $port or !close $_ } @HELD;
    return;
}

# keep $port (just freed by a node we stopped) bound and refusing, so
# that its peer's redials cannot reach another test's node meanwhile;
# returns the holding socket (close it before the node starts again),
# undef when the port could not be bound within $secs (default 5)
sub hold_port {
    my ($port, $secs) = @_;
    my $s;
    MemcTest::wait_until(sub {
        # ReuseAddr: past TIME_WAIT of the stopped node's connections;
        # free_ports() binds without it, so it still never gets this port
        $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                   LocalPort => $port, Proto => 'tcp',
                                   ReuseAddr => 1);
    }, $secs // 5);
    return $s;
}

# a pair secret of this test run only: tests running side by side
# (make -j2 check) never share one, so their nodes cannot link
sub test_secret {
    my ($text) = @_;
    return "$text (test pid $$)";
}

# printable form of bytes for diagnostics
sub esc {
    my ($x) = @_;
    return 'undef' unless defined $x;
    $x = substr($x, 0, 200) . '...(' . length($x) . ' bytes)'
        if length $x > 240;
    $x =~ s/\\/\\\\/g;
    $x =~ s/\r/\\r/g;
    $x =~ s/\n/\\n/g;
    $x =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
    return $x;
}

# true when nothing listens on 127.0.0.1:$port (connection refused)
sub refused {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $port, Proto => 'tcp',
                                  Timeout => 1);
    return 1 unless $s;
    close $s;
    return 0;
}

# start_pair(%o) -> ($a, $b)
#   o        => [k=v, ...]  -o settings for both nodes
#   o_a, o_b => [k=v, ...]  for one node
#   args, args_a, args_b => [...]  more command-line arguments
#   repl_timeout => SECS    shorthand for o => ['repl_timeout=SECS']
#   relay    => 1           each node dials its peer through a TcpRelay
#                           ($a->{relay} forwards to B's repl port,
#                           $b->{relay} to A's)
#   capture  => FILE        with relay: append every relayed byte to FILE
#   wait     => 0           return at once after spawning both
#   start_timeout => SECS   until both client ports answer (20)
#   linked   => 1           also wait until both report "linked"
#   tls      => [CERT, KEY] -Z with that certificate: each node's
#                           client port stays plain (notls:) and
#                           {tls_port} is its TLS listener
sub start_pair {
    my (%o) = @_;
    my $last = '';
    for my $try (1 .. 3) {
        my ($a, $b) = eval { _start_pair_once(%o) };
        return ($a, $b) if $a;
        $last = $@;
        # another process took a port between free_port and bind
        next if $last =~ /in use|failed to listen|bind/i;
        last;
    }
    croak "pair did not start: $last";
}

sub _start_pair_once {
    my (%o) = @_;
    my ($pa, $pb, $ra, $rb, $ta, $tb) = free_ports($o{tls} ? 6 : 4);
    my %relay;
    my ($xa, $xb) = ($rb, $ra);           # where A and B dial
    if ($o{relay}) {
        $relay{a} = TcpRelay->new(target => $rb, capture => $o{capture});
        $relay{b} = TcpRelay->new(target => $ra, capture => $o{capture});
        ($xa, $xb) = ($relay{a}->port, $relay{b}->port);
    }
    my @o = @{ $o{o} || [] };
    push @o, "repl_timeout=$o{repl_timeout}" if $o{repl_timeout};
    my (%tls, %targs);
    if ($o{tls}) {
        @tls{qw(a b)} = ($ta, $tb);
        for my $n ([a => $pa], [b => $pb]) {
            $targs{$n->[0]} = ['-Z', '-o', "ssl_chain_cert=$o{tls}[0]",
                '-o', "ssl_key=$o{tls}[1]", '-l',
                "notls:127.0.0.1:$n->[1],127.0.0.1:$tls{$n->[0]}"];
        }
    }
    my $a = MemcPair::Node->create(
        name => 'A', port => $pa, repl_port => $ra, dial => $xa,
        o => [@o, @{ $o{o_a} || [] }],
        args => [@{ $o{args} || [] }, @{ $o{args_a} || [] },
                 @{ $targs{a} || [] }],
        relay => $relay{a});
    my $b = MemcPair::Node->create(
        name => 'B', port => $pb, repl_port => $rb, dial => $xb,
        o => [@o, @{ $o{o_b} || [] }],
        args => [@{ $o{args} || [] }, @{ $o{args_b} || [] },
                 @{ $targs{b} || [] }],
        relay => $relay{b});
    ($a->{tls_port}, $b->{tls_port}) = @tls{qw(a b)};
    $a->{peer_node} = $b;
    $b->{peer_node} = $a;
    $_->spawn for $a, $b;
    return ($a, $b) if defined $o{wait} && !$o{wait};
    my $t = $o{start_timeout} // 20;
    for my $n ($a, $b) {
        $n->wait_ready($t) or croak "node $n->{name} did not open its client"
            . " port within ${t}s: " . ($n->{start_error} // '');
    }
    if ($o{linked}) {
        wait_linked($a, $b, $t) or croak 'pair did not link';
    }
    return ($a, $b);
}

# store $n items on $node with pipelined "set ... noreply" (much faster
# than a round trip each), then wait for "version"; $item->($i) returns
# (key, value, flags) for i = 1..$n.  Returns the version reply.
sub preload_noreply {
    my ($node, $n, $item) = @_;
    my $s = $node->new_sock;
    my $buf = '';
    for my $i (1 .. $n) {
        my ($k, $v, $f) = $item->($i);
        $buf .= "set $k " . ($f // 0) . ' 0 ' . length($v)
              . " noreply\r\n$v\r\n";
        if (length $buf > 262144) {
            $node->send($buf, $s);
            $buf = '';
        }
    }
    $node->send($buf, $s);
    return $node->cmd('version', $s);
}

# Play a peer that dials replication port $rport of a node (protocol 3,
# doc/replication.txt "Handshake and authentication"): PAIR, AUTH (a
# proof of $o{secret}, or "none" without one), HELLO with our wall clock
# in ms ($o{clock_ms}, default now; each call is a new run id) and
# $o{item_size_max} (default 1 MB, as -I), $o{maxbytes} (64 MB, as -m),
# $o{no_evict} (0; 1 as -M), and RESUME from nothing.
# Returns the socket once the node has answered with its HELLO, else
# undef.
my $fake_run = 4242424242;
sub fake_peer {
    my ($rport, %o) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $rport, Proto => 'tcp',
                                  Timeout => 2) or return undef;
    binmode $s;
    my $ms = $o{clock_ms} // int(time * 1000);
    my $isize = $o{item_size_max} // 1048576;
    my $maxb = $o{maxbytes} // 64 * 1024 * 1024;
    my $noev = $o{no_evict} // 0;
    my $nd = join '', map { sprintf '%02x', int(rand(256)) } 1 .. 32;
    $fake_run++;
    MemcTest::_write_all($s, "PAIR 3 $nd\r\n", 2);
    my ($na) = (MemcTest::_read_line($s, 5) // '') =~ /^PAIR 3 ([0-9a-f]{64})/
        or return undef;
    my $proof = 'none';
    if (defined $o{secret}) {
        require Digest::SHA;
        $proof = Digest::SHA::hmac_sha256_hex("paircached-v2|dial|$nd|$na",
                                              $o{secret});
    }
    MemcTest::_write_all($s, "AUTH $proof\r\n", 2);
    (MemcTest::_read_line($s, 5) // '') =~ /^AUTH / or return undef;
    MemcTest::_write_all($s, "HELLO $fake_run 77 $ms $isize $maxb $noev\r\n"
                             . "RESUME 0 0 0 0\r\n", 2);
    my $line = MemcTest::_read_line($s, 5) // '';
    return $line =~ /^HELLO / ? $s : undef;
}

# one "stats replication" field of $node; undef if it does not answer
sub stat_of {
    my ($node, $name) = @_;
    my $s = $node->repl_stats or return undef;
    return $s->{$name};
}

# true when every key of %$want (undef = absent) reads so on $node
sub has_all {
    my ($node, $want) = @_;
    for my $k (sort keys %$want) {
        my $it = $node->item($k);
        return 0 if defined $it && !ref $it;
        if (defined $want->{$k}) {
            return 0 unless $it && $it->{value} eq $want->{$k};
        } else {
            return 0 if $it;
        }
    }
    return 1;
}

# the keys of %$want that $node does not hold as wanted, for diagnostics
sub missing {
    my ($node, $want) = @_;
    my @m;
    for my $k (sort keys %$want) {
        my $it = $node->item($k);
        my $got = !defined $it ? undef : ref $it ? $it->{value} : $it;
        push @m, "$k: want " . ($want->{$k} // 'absent') . ', got '
            . ($got // 'absent')
            if (defined $got xor defined $want->{$k})
               || defined $got && $got ne $want->{$k};
    }
    return join('; ', @m[0 .. ($#m < 9 ? $#m : 9)])
        . (@m > 10 ? ' ... (' . scalar(@m) . ' keys)' : '');
}

# a 0600 file in the test directory whose first line is $secret
sub secret_file {
    my ($name, $secret) = @_;
    my $f = MemcTest::tmp_dir() . "/$name";
    open my $fh, '>', $f or die "$f: $!";
    print $fh "$secret\n";
    close $fh;
    chmod 0600, $f;
    return $f;
}

# poll both nodes for $secs; returns how many polls saw "linked" and the
# sums of the tls_failures and auth_failures seen (> 0: some failed)
sub never_link {
    my ($c, $d, $secs) = @_;
    my ($linked, %max) = (0);
    my $t0 = time;
    while (time - $t0 < $secs) {
        for my $n ($c, $d) {
            my $st = $n->repl_stats or next;
            $linked++ if ($st->{link_state} // '') eq 'linked';
            for my $k (qw(tls_failures auth_failures)) {
                $max{$k} += $st->{$k} // 0;
            }
        }
        select(undef, undef, undef, 0.2);
    }
    return ($linked, \%max);
}

# start a node with -o $o and check that it refuses to start: exits with
# a failure status, never listens, and its log matches $want_log;
# %opt: peer => 'HOST:PORT' for -x (default 127.0.0.1 and a free port)
sub must_refuse {
    my ($name, $o, $want_log, %opt) = @_;
    my ($port, $rport) = free_ports(2);
    my ($peer) = closed_ports(1);
    my $n = MemcPair::Node->create(name => $name, port => $port,
                                   repl_port => $rport, dial => $peer,
                                   peer => $opt{peer}, o => $o);
    # spawn() croaks when the process is already gone at its first look:
    # for a node that must refuse, that is a quick success
    eval { $n->spawn };
    my $bound = 0;
    my $exited = MemcTest::wait_until(sub {
        $bound++ if !refused($port) || !refused($rport);
        return !$n->is_alive;
    }, 10);
    ok($exited, "$name: the server exits") or $n->kill9;
    my $st = $n->exit_status;
    ok(defined $st && $st != 0, "$name: with a failure status ("
       . ($st // 'none') . ')');
    is($bound, 0, "$name: nothing was listening on 127.0.0.1 meanwhile");
    like($n->log_text, $want_log, "$name: says why") or diag($n->log_text);
}

# poll until both nodes report link_state linked; false (with a diag of
# both states) after $timeout seconds
sub wait_linked {
    my ($a, $b, $timeout) = @_;
    my ($sa, $sb);
    my $ok = wait_until(sub {
        $sa = $a->repl_stats;
        $sb = $b->repl_stats;
        return $sa && $sb && ($sa->{link_state} // '') eq 'linked'
            && ($sb->{link_state} // '') eq 'linked';
    }, $timeout // 10);
    if (!$ok) {
        diag("not linked within " . ($timeout // 10) . "s: A "
             . _state($sa) . ", B " . _state($sb));
    }
    return $ok ? 1 : 0;
}

sub _state {
    my ($s) = @_;
    return 'no answer' unless $s;
    return join ' ', map { "$_=" . ($s->{$_} // '?') }
        qw(link_state link_state_secs initial_sync_done reconnects
           auth_failures last_error);
}

# poll until a stats replication field satisfies $test (a code ref on
# the value, or a value to equal); returns the last value seen
sub wait_stat {
    my ($node, $name, $test, $timeout) = @_;
    my $code = ref $test eq 'CODE' ? $test
             : sub { defined $_[0] && $_[0] eq $test };
    my $v;
    my $ok = wait_until(sub {
        my $s = $node->repl_stats or return 0;
        $v = $s->{$name};
        return $code->($v);
    }, $timeout // 10);
    return wantarray ? ($ok, $v) : $ok;
}

# Poll $node until key $key matches $want: undef = absent; a string =
# that value; a hash ref = those of value, flags, cas (the others are
# not compared).  Returns true on a match; the last item seen (or
# undef for a miss) is left in $node->{last_item}.
sub wait_value {
    my ($node, $key, $want, $timeout) = @_;
    my $ok = wait_until(sub {
        my $it = $node->item($key);
        return 0 if defined $it && !ref $it;        # an I/O error
        $node->{last_item} = $it;
        return !defined $it if !defined $want;
        return 0 unless $it;
        if (!ref $want) {
            return $it->{value} eq $want;
        }
        for my $f (qw(value flags cas)) {
            next unless exists $want->{$f};
            return 0 unless defined $it->{$f} && $it->{$f} eq $want->{$f};
        }
        return 1;
    }, $timeout // 10);
    return $ok ? 1 : 0;
}

# Poll until $key reads the same (present with equal value, flags and
# cas, or absent) on both nodes.  Returns (ok, item_a, item_b).
sub wait_same {
    my ($a, $b, $key, $timeout) = @_;
    my ($ia, $ib);
    my $ok = wait_until(sub {
        $ia = $a->item($key);
        $ib = $b->item($key);
        return 0 if defined $ia && !ref $ia || defined $ib && !ref $ib;
        return 1 if !$ia && !$ib;
        return 0 unless $ia && $ib;
        return $ia->{value} eq $ib->{value} && $ia->{flags} eq $ib->{flags}
            && $ia->{cas} eq $ib->{cas};
    }, $timeout // 10);
    return ($ok ? 1 : 0, $ia, $ib);
}

# ---------------------------------------------------------------------------

package MemcPair::Node;
our @ISA = ('MemcTest');

use Carp qw(croak);
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

sub create {
    my ($class, %o) = @_;
    my @o = ("repl_port=$o{repl_port}", @{ $o{o} || [] });
    my @args = ('-v', '-o', join(',', @o), '-x',
                $o{peer} // "127.0.0.1:$o{dial}",
                @{ $o{args} || [] });
    return bless {
        port => $o{port}, host => '127.0.0.1', args => \@args,
        owner => $$, name => $o{name}, repl_port => $o{repl_port},
        dial => $o{dial}, relay => $o{relay},
    }, $class;
}

sub name      { $_[0]{name} }
sub repl_port { $_[0]{repl_port} }
sub relay     { $_[0]{relay} }

# fork the server and return at once (its client port may stay closed
# until the first sync); dies if it exits immediately
sub spawn {
    my ($self) = @_;
    croak "node $self->{name} is running" if $self->{pid};
    $self->reset_sock;
    delete $self->{stopped};
    $self->{spawned_at} = time;
    $self->_spawn({ ready => sub { 1 } })
        or croak "node $self->{name} failed: $self->{start_error}";
    return $self;
}

# wait until the client port answers "version" from this process; false
# (and {start_error}) if it exits or the time runs out
sub wait_ready {
    my ($self, $timeout) = @_;
    my $ok = MemcTest::wait_until(sub {
        if (!$self->is_alive) {
            $self->{start_error} = 'exited (' . ($self->exit_status // '?')
                . '): ' . $self->log_text;
            return -1;
        }
        return $self->_answers_version;
    }, $timeout // 20);
    $self->{start_error} //= "no answer: " . $self->log_tail(20) unless $ok;
    return $ok && $ok > 0 ? 1 : 0;
}

sub kill9 {
    my ($self) = @_;
    $self->stop('KILL', 5);
    delete $self->{stopped};
}

# kill(2) only queues SIGSTOP: one thread takes it and then stops the
# others, so a thread the kernel has not got round to yet may still run
# (and, for example, acknowledge a record) after kill returns.  Wait until
# every thread of the process is stopped.
sub sigstop {
    my ($self) = @_;
    my $pid = $self->{pid};
    kill 'STOP', $pid or croak "SIGSTOP $self->{name}: $!";
    my $all = MemcTest::wait_until(sub {
        opendir(my $d, "/proc/$pid/task") or return 0;
        my @tids = grep { /^\d+$/ } readdir $d;
        closedir $d;
        for my $tid (@tids) {
            my $stat = MemcTest::slurp("/proc/$pid/task/$tid/stat") // '';
            return 0 unless $stat =~ /\)\s+([A-Za-z])/ && $1 eq 'T';
        }
        return @tids ? 1 : 0;
    }, 5);
    diag("SIGSTOP $self->{name}: not every thread stopped within 5 s")
        unless $all;
    $self->{stopped} = 1;
    $self->reset_sock;
}

sub sigcont {
    my ($self) = @_;
    kill 'CONT', $self->{pid} or croak "SIGCONT $self->{name}: $!";
    delete $self->{stopped};
}

# kill -9 (if running) and start again on the same ports; waits until
# the client port answers unless nowait => 1
sub restart {
    my ($self, %o) = @_;
    $self->kill9 if $self->{pid};
    $self->spawn;
    return $self if $o{nowait};
    $self->wait_ready($o{timeout} // 20)
        or croak "node $self->{name} did not come back: "
               . ($self->{start_error} // '');
    return $self;
}

sub log_tail {
    my ($self, $n) = @_;
    my @l = split /\n/, $self->log_text;
    @l = @l[-$n .. -1] if @l > $n;
    return join("\n", @l);
}

# "stats replication" as a hash ref, from a fresh connection with short
# timeouts; undef when the node does not answer
sub repl_stats {
    my ($self) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $self->{port}, Proto => 'tcp',
                                  Timeout => 1) or return undef;
    binmode $s;
    local $MemcTest::IO_TIMEOUT = 2;
    my $h = eval { $self->stats('replication', $s) };
    close $s;
    return undef unless $h && !$h->{_error} && $h->{link_state};
    return $h;
}

sub stats_fresh {
    my ($self, $type) = @_;
    my $s = eval { $self->new_sock(timeout => 2) } or return undef;
    local $MemcTest::IO_TIMEOUT = 5;
    my $h = eval { $self->stats($type, $s) };
    close $s;
    return $h;
}

# gets of one key: undef on a miss, {value, flags, cas} on a hit, the
# string 'error' when the node does not answer properly
sub item {
    my ($self, $key) = @_;
    my $r = eval {
        local $MemcTest::IO_TIMEOUT = 3;
        my $s = $self->sock;
        MemcTest::_write_all($s, "gets $key\r\n", 3);
        my ($raw, $items, $err) = $self->read_values($s, 3);
        die "gets: " . ($err // '') . " $raw\n" if $err;
        my ($it) = grep { $_->{key} eq $key } @$items;
        $it ? { value => $it->{value}, flags => $it->{flags},
                cas => $it->{cas} } : 'miss';
    };
    if (!defined $r) {
        $self->reset_sock;
        $self->{last_error} = $@;
        return 'error';
    }
    return $r eq 'miss' ? undef : $r;
}

1;
