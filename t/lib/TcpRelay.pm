package TcpRelay;

# A TCP relay on 127.0.0.1 for the replication tests: a child process
# accepts on a listen port and forwards every connection, both ways, to
# a target port, so that a test can cut the network between two nodes
# while both keep running.  The test drives the child over a control
# socket (each command is answered before the call returns, so a cut
# is in force when cut() returns):
#
#   cut('close')      close every relayed connection; new connections
#                     are accepted and closed at once (a peer that is
#                     gone, or a firewall sending resets)
#   cut('blackhole')  stop moving bytes: relayed connections stay open
#                     but nothing crosses; new connections are accepted
#                     and held without a target (a partition where
#                     packets vanish)
#   restore()         forward again: held connections of a blackhole
#                     resume (what was buffered crosses, and a side that
#                     closed meanwhile is seen closing), connections
#                     accepted during the cut are closed
#   rate(N)           forward at most N bytes a second, both directions
#                     and all connections together (0: no limit), to
#                     make a copy slow
#   counts()          {accepted, active, refused, bytes}
#
# With capture => FILE every byte relayed (both directions) is also
# appended to FILE, so a test can check what crossed the wire.
#
# The child exits when the control socket closes (the test ended or
# died), and MemcTest's END kills it anyway.  Only 127.0.0.1 is used.

use strict;
use warnings;

use Carp qw(croak);
use Errno qw(EINTR EAGAIN EWOULDBLOCK EINPROGRESS);
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Socket qw(AF_UNIX SOCK_STREAM PF_UNSPEC);
use Time::HiRes qw(time);
use MemcTest ();

my $BUF_MAX = 1 << 20;      # bytes buffered per direction before we
                            # stop reading that side

# TcpRelay->new(target => PORT [, listen => PORT] [, capture => FILE])
sub new {
    my ($class, %o) = @_;
    my $target = $o{target} or croak 'TcpRelay: target port needed';
    my $lsock;
    for my $try (1 .. 5) {
        $lsock = IO::Socket::INET->new(
            LocalAddr => '127.0.0.1', LocalPort => $o{listen} // 0,
            Proto => 'tcp', Listen => 64, ReuseAddr => 1);
        last if $lsock || $o{listen};
    }
    croak "TcpRelay: cannot listen: $!" unless $lsock;
    socketpair(my $mine, my $theirs, AF_UNIX, SOCK_STREAM, PF_UNSPEC)
        or croak "socketpair: $!";
    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        close $mine;
        my $rc = eval { _child($lsock, $theirs, $target, $o{capture}); 0 }
            // do {
            print STDERR "# TcpRelay child: $@";
            1;
        };
        POSIX::_exit($rc);
    }
    close $theirs;
    my $port = $lsock->sockport;
    close $lsock;
    MemcTest::adopt_pid($pid);
    $mine->autoflush(1);
    my $self = bless { pid => $pid, ctl => $mine, port => $port,
                       target => $target, owner => $$ }, $class;
    # the listen socket was bound in the parent already: the port is
    # ready before new() returns; make sure the child runs
    $self->_ctl('ping') eq 'ok' or croak 'TcpRelay: child does not answer';
    return $self;
}

sub port   { $_[0]{port} }
sub target { $_[0]{target} }
sub pid    { $_[0]{pid} }

sub cut {
    my ($self, $mode) = @_;
    $mode //= 'close';
    croak "TcpRelay: unknown cut mode $mode"
        unless $mode eq 'close' || $mode eq 'blackhole';
    return $self->_ctl("cut $mode") eq 'ok';
}

sub restore { return $_[0]->_ctl('restore') eq 'ok'; }

sub rate { return $_[0]->_ctl('rate ' . int($_[1])) eq 'ok'; }

sub counts {
    my ($self) = @_;
    my %h = split /[ =]/, $self->_ctl('counts');
    return \%h;
}

sub _ctl {
    my ($self, $cmd) = @_;
    my $ctl = $self->{ctl} or croak 'TcpRelay: stopped';
    MemcTest::_write_all($ctl, "$cmd\n", 5);
    my $line = MemcTest::_read_line($ctl, 5);
    croak "TcpRelay: no answer to '$cmd'" unless defined $line;
    chomp $line;
    return $line;
}

sub stop {
    my ($self) = @_;
    return unless $self->{pid} && $self->{owner} == $$;
    close delete $self->{ctl} if $self->{ctl};
    my $pid = delete $self->{pid};
    my $deadline = time + 2;
    while (waitpid($pid, POSIX::WNOHANG()) == 0) {
        if (time > $deadline) {
            kill 'KILL', $pid;
            waitpid($pid, 0);
            last;
        }
        select(undef, undef, undef, 0.02);
    }
    MemcTest::disown_pid($pid);
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $!, $@);
    $self->stop;
}

# ---------------------------------------------------------------------------
# the child: one select loop

sub _nb {
    my ($s) = @_;
    $s->blocking(0);
    binmode $s;
    return $s;
}

sub _child {
    my ($lsock, $ctl, $target, $capture) = @_;
    my $cap;
    if (defined $capture) {
        open $cap, '>>', $capture or die "capture $capture: $!";
        binmode $cap;
        $cap->autoflush(1);
    }
    $SIG{PIPE} = 'IGNORE';
    $SIG{ALRM} = 'DEFAULT';
    alarm 0;
    _nb($lsock);
    my $ctlbuf = '';
    my $mode = 'open';          # open | close | blackhole
    my @links;                  # {a, b, ab, ba, held}
    my @held;                   # accepted during a blackhole, no target
    my %n = (accepted => 0, refused => 0, bytes => 0);
    my ($rate, $allow, $last) = (0, 0, time);    # rate(): a token bucket

    my $drop = sub {
        my ($l) = @_;
        close $l->{a} if $l->{a};
        close $l->{b} if $l->{b};
        $l->{dead} = 1;
    };

    while (1) {
        @links = grep { !$_->{dead} } @links;
        my $rd = IO::Select->new($lsock, $ctl);
        my $wr = IO::Select->new;
        if ($rate) {
            my $now = time;
            my $cap = $rate / 10 > 4096 ? $rate / 10 : 4096;
            $allow += ($now - $last) * $rate;
            $allow = $cap if $allow > $cap;
            $last = $now;
        }
        my $may_write = !$rate || $allow >= 1;
        if ($mode ne 'blackhole') {
            for my $l (@links) {
                $rd->add($l->{a}) if length $l->{ab} < $BUF_MAX;
                $rd->add($l->{b}) if length $l->{ba} < $BUF_MAX;
                $wr->add($l->{b}) if length $l->{ab} && $may_write;
                $wr->add($l->{a}) if length $l->{ba} && $may_write;
            }
        }
        my ($r, $w) = IO::Select->select($rd, $wr, undef,
                                         $rate ? 0.01 : 1);
        $r ||= [];
        $w ||= [];
        my %ready_r = map { (0 + $_ => 1) } @$r;
        my %ready_w = map { (0 + $_ => 1) } @$w;

        if ($ready_r{ 0 + $ctl }) {
            my $got = sysread($ctl, $ctlbuf, 4096, length $ctlbuf);
            return if !defined $got && $! != EINTR && $! != EAGAIN;
            return if defined $got && $got == 0;      # the test is gone
            while ($ctlbuf =~ s/\A([^\n]*)\n//) {
                my $cmd = $1;
                my $ans = 'ok';
                if ($cmd eq 'ping') {
                } elsif ($cmd =~ /^cut (close|blackhole)$/) {
                    $mode = $1;
                    if ($mode eq 'close') {
                        $drop->($_) for @links;
                        @links = ();
                    }
                } elsif ($cmd =~ /^rate (\d+)$/) {
                    $rate = $1;
                    ($allow, $last) = (0, time);
                } elsif ($cmd eq 'restore') {
                    close $_ for @held;
                    @held = ();
                    $mode = 'open';
                } elsif ($cmd eq 'counts') {
                    $ans = join ' ', map { "$_=$n{$_}" } sort keys %n;
                    $ans .= ' active=' . scalar(@links)
                          . ' held=' . scalar(@held);
                } else {
                    $ans = "unknown command $cmd";
                }
                MemcTest::_write_all($ctl, "$ans\n", 5);
            }
        }

        if ($ready_r{ 0 + $lsock }) {
            while (my $c = $lsock->accept) {
                $n{accepted}++;
                if ($mode eq 'close') {
                    $n{refused}++;
                    close $c;
                    next;
                }
                if ($mode eq 'blackhole') {
                    push @held, $c;
                    next;
                }
                my $t = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                              PeerPort => $target,
                                              Proto => 'tcp', Timeout => 2);
                if (!$t) {
                    $n{refused}++;
                    close $c;
                    next;
                }
                push @links, { a => _nb($c), b => _nb($t), ab => '',
                               ba => '' };
            }
        }

        next if $mode eq 'blackhole';
        for my $l (@links) {
            for my $dir (['a', 'b', 'ab'], ['b', 'a', 'ba']) {
                my ($from, $to, $buf) = @$dir;
                next if $l->{dead};
                if ($ready_r{ 0 + $l->{$from} }) {
                    my $got = sysread($l->{$from}, $l->{$buf}, 65536,
                                      length $l->{$buf});
                    print {$cap} substr($l->{$buf}, -$got)
                        if $cap && $got;
                    if (defined $got && $got == 0
                        || !defined $got && $! != EINTR && $! != EAGAIN
                           && $! != EWOULDBLOCK) {
                        # one side closed: pass on what is buffered for
                        # the other side (best effort), then close both
                        my $rest = $l->{$buf};
                        syswrite($l->{$to}, $rest) if length $rest;
                        $drop->($l);
                        next;
                    }
                }
            }
            next if $l->{dead};
            for my $dir (['b', 'ab'], ['a', 'ba']) {
                my ($to, $buf) = @$dir;
                next unless length $l->{$buf} && $ready_w{ 0 + $l->{$to} };
                my $len = length $l->{$buf};
                if ($rate) {
                    last if $allow < 1;
                    $len = int $allow if $len > $allow;
                }
                my $put = syswrite($l->{$to}, $l->{$buf}, $len);
                if (!defined $put) {
                    next if $! == EINTR || $! == EAGAIN || $! == EWOULDBLOCK;
                    $drop->($l);
                    last;
                }
                $n{bytes} += $put;
                $allow -= $put if $rate;
                substr($l->{$buf}, 0, $put, '');
            }
        }
    }
}

1;
