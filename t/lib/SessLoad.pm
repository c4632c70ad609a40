package SessLoad;

# A steady stream of PHP web requests on a few sessions, for the
# failover tests (t/php_failover.t, scripts/php-soak.pl).  Each request
# runs t/php/counter.php, either in a fresh php-cli process or in a
# long-lived php-fpm worker through cgi-fcgi; it reads the session's
# counter and stores it plus one.  The stream keeps, per session, the
# last count it knows was stored and how many writes since then may or
# may not have landed (requests that failed), and classifies every
# answer:
#
#   logout  the counter read 0 while the session held a count
#   stale   the counter read went back (below the known count)
#   error   session_start or session_write_close failed, or the
#           request died or hung
#
# A request that worked but raised PHP warnings (a client logs each
# server it failed over from) is counted as "warned", not as an error.
# An error whose request was running when a node was SIGKILLed or
# SIGSTOPped (see event()) is counted apart, as "in flight at a kill":
# a client that already sent its request to that node gets no answer.  Nothing here
# blocks: tick() reaps finished requests and starts the next one when
# it is due; the caller calls it from its wait loops (pump()).

use strict;
use warnings;

use Carp qw(croak);
use JSON::PP ();
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);
use MemcTest ();
use MemcPHP ();

our @EVENTS;                # [time, what, is_kill]
my $JSON = JSON::PP->new;

# record a step at the current time; kind => 'kill', 'stop' or 'cont'
# for a SIGKILL, SIGSTOP or SIGCONT, 'open' for a restarted node's client
# port answering again (see summary)
sub event {
    my ($what, %o) = @_;
    push @EVENTS, [time, $what, $o{kind} // ''];
}

# SessLoad->new(name => LABEL, tag => [a-z0-9]+ for the session ids,
#   sessions => N, interval => SECS between request starts,
#   cli => { ini hash }  or  fpm => PhpFpm object, pool => NAME,
#   timeout => SECS a request may take before it is killed (30))
sub new {
    my ($class, %o) = @_;
    croak 'cli or fpm' unless $o{cli} || $o{fpm};
    my $self = bless {
        name => $o{name}, cli => $o{cli}, fpm => $o{fpm}, pool => $o{pool},
        interval => $o{interval} // 0.25, timeout => $o{timeout} // 30,
        next_at => 0, turn => 0, running => undef, log => [],
        sess => [],
    }, $class;
    for my $i (1 .. ($o{sessions} // 6)) {
        push @{ $self->{sess} }, {
            id => sprintf('%s%xx%x%06x', $o{tag}, $$, $i,
                          int(rand(0xffffff))),
            known => 0, pending => 0,
        };
    }
    return $self;
}

sub name { $_[0]{name} }

sub _argv {
    my ($self, $sid) = @_;
    my $script = MemcPHP::script('counter.php');
    my $t = $self->{timeout};
    if ($self->{cli}) {
        return (['timeout', '-k', '2', $t, MemcPHP::php_bin(),
                 @MemcPHP::EXTRA, MemcPHP::ini_args(%{ $self->{cli} }),
                 $script, $sid], {});
    }
    my ($argv, $env) = $self->{fpm}->request_cmd($self->{pool}, $script,
                                                 "sid=$sid");
    return (['timeout', '-k', '2', $t, @$argv], $env);
}

sub _start {
    my ($self) = @_;
    my $s = $self->{sess}[ $self->{turn}++ % @{ $self->{sess} } ];
    my ($argv, $env) = $self->_argv($s->{id});
    my $out = MemcTest::tmp_dir() . "/load$$-" . (++$MemcTest::RUN_SEQ);
    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        setpgrp(0, 0);
        open STDIN, '<', '/dev/null' or POSIX::_exit(126);
        open STDOUT, '>', $out or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
        $ENV{$_} = $env->{$_} for keys %$env;
        { no warnings 'exec'; exec { $argv->[0] } @$argv; }
        POSIX::_exit(127);
    }
    MemcTest::adopt_pid($pid);
    $self->{running} = { pid => $pid, out => $out, sess => $s,
                         t0 => time };
}

# reap the running request if it ended; start the next one when due
sub tick {
    my ($self) = @_;
    my $r = $self->{running};
    if ($r) {
        my $w = waitpid($r->{pid}, WNOHANG);
        return if $w == 0;
        my $st = $w == $r->{pid} ? $? : -1;
        MemcTest::disown_pid($r->{pid});
        $r->{t1} = time;
        $r->{status} = $st;
        $r->{raw} = MemcTest::slurp($r->{out});
        unlink $r->{out};
        $self->{running} = undef;
        $self->_judge($r);
    }
    return if $self->{stopped};
    my $now = time;
    if ($now >= $self->{next_at}) {
        $self->{next_at} = $now + $self->{interval};
        $self->_start;
    }
}

sub _judge {
    my ($self, $r) = @_;
    my ($line) = grep { /^\{/ } reverse split /\r?\n/, $r->{raw};
    my $j = defined $line ? eval { $JSON->decode($line) } : undef;
    my $s = $r->{sess};
    my %rec = (t0 => $r->{t0}, t1 => $r->{t1}, sid => $s->{id},
               known => $s->{known}, pending => $s->{pending},
               since => $s->{known_t} // $r->{t0});
    $self->{pids}{ $j->{pid} }++ if $j && $j->{pid};
    my $started = $j && $j->{start};
    my $closed = $j && $j->{close};
    my @warn = _squeeze($j ? @{ $j->{warnings} || [] } : ());
    if ($started) {
        my $n = $j->{n_read} // -1;
        $rec{n} = $n;
        if ($s->{known} > 0 && $n == 0) {
            $rec{verdict} = 'logout';
        } elsif ($n < $s->{known}) {
            $rec{verdict} = 'stale';
        } elsif ($n > $s->{known} + $s->{pending}) {
            $rec{verdict} = 'ahead';
        }
        $s->{known} = $n;
        $s->{pending} = 0;
    }
    if ($started && $closed && $r->{status} == 0) {
        $s->{known}++;
        $s->{known_t} = $r->{t1};
        $rec{verdict} //= 'ok';
        if (@warn) {
            $rec{warned} = join '; ', @warn;
            $self->{warned}++;
            $self->{first_warning} //= $rec{warned};
        }
    } else {
        $s->{pending}++;
        $rec{verdict} //= 'error';
        $rec{error} = !$j ? 'no answer (exit status ' . $r->{status}
                            . '): ' . substr($r->{raw}, 0, 300)
                    : join('; ', (!$started ? 'start failed' : ()),
                           ($started && !$closed ? 'close failed' : ()),
                           @warn);
    }
    # what each node holds right now, to tell a stale node from a
    # client that read the wrong one
    $rec{seen} = $self->{on_bad}->($s->{id})
        if $self->{on_bad} && $rec{verdict} ne 'ok';
    push @{ $self->{log} }, \%rec;
}

# repeated warnings once, with a count: "text (x61)"
sub _squeeze {
    my (@w) = @_;
    my (@o, %n);
    for my $w (@w) {
        push @o, $w unless $n{$w}++;
    }
    return map { $n{$_} > 1 ? "$_ (x$n{$_})" : $_ } @o;
}

# stop starting requests; wait (ticking) for the running one
sub finish {
    my ($self, $timeout) = @_;
    $self->{stopped} = 1;
    MemcTest::wait_until(sub { $self->tick; !$self->{running} },
                         $timeout // $self->{timeout} + 5);
    if (my $r = $self->{running}) {
        kill 'KILL', -$r->{pid};
        waitpid($r->{pid}, 0);
        MemcTest::disown_pid($r->{pid});
        $self->{running} = undef;
    }
}

# tick every stream for $secs seconds (or until $until->() is true;
# returns its last value)
sub pump {
    my ($loads, $secs, $until) = @_;
    my $deadline = time + $secs;
    while (1) {
        $_->tick for @$loads;
        if ($until) {
            my $v = $until->();
            return $v if $v;
        }
        return 0 if time >= $deadline;
        sleep 0.01;
    }
}

# true when an event of kind $kind happened while $rec ran
sub _during {
    my ($rec, $kind) = @_;
    for my $e (@EVENTS) {
        return 1 if $e->[2] eq $kind && $e->[0] >= $rec->{t0}
                    && $e->[0] <= $rec->{t1};
    }
    return 0;
}

# true when $rec overlaps a span from an event of kind $from_kind to the
# next of kind $to_kind (or the end)
sub _overlaps {
    my ($rec, $from_kind, $to_kind) = @_;
    my $from;
    for my $e (@EVENTS, [9e9, 'end', $to_kind]) {
        if ($e->[2] eq $from_kind) {
            $from = $e->[0];
        } elsif ($e->[2] eq $to_kind && defined $from) {
            return 1 if $rec->{t0} <= $e->[0] && $rec->{t1} >= $from;
            undef $from;
        }
    }
    return 0;
}

# a hang: from a SIGSTOP to its SIGCONT
sub _in_hang { return _overlaps($_[0], 'stop', 'cont'); }

# a node down: from its SIGKILL until its restarted client port answers
sub _node_down { return _overlaps($_[0], 'kill', 'open'); }

# the phase a time falls in: the last event at or before it
sub phase_of {
    my ($t) = @_;
    my $p = 'start';
    for my $e (@EVENTS) {
        last if $e->[0] > $t;
        $p = $e->[1];
    }
    return $p;
}

# Counts by verdict: requests, ok, logout, stale, ahead (a count above
# any write made: the session's copies diverged), error; and apart:
#   error_at_kill  failed, and a node was SIGKILLed or SIGSTOPped while
#                  it ran (it may have been waiting on that node)
#   error_in_hang  failed while a node was stopped (SIGSTOP to SIGCONT)
#   error_down     failed while a node was down (SIGKILL until its
#                  restarted client port answered)
#   stale_at_wake  a stale (or ahead) read when a stopped node got
#                  SIGCONT between the session's last known write and
#                  the read: on waking, a node applies the writes that
#                  clients left in its sockets before they gave up, with
#                  new versions, and serves its old copy until the link
#                  catches it up
# plus by_phase => {phase => {verdict => n}}, bad => [records].
sub summary {
    my ($self) = @_;
    my %c = (requests => 0, ok => 0, logout => 0, stale => 0, ahead => 0,
             error => 0, error_at_kill => 0, error_in_hang => 0,
             error_down => 0, stale_at_wake => 0);
    my (%phase, @bad);
    for my $rec (@{ $self->{log} }) {
        $c{requests}++;
        my $v = $rec->{verdict};
        if ($v eq 'error') {
            $v = _during($rec, 'kill') || _during($rec, 'stop')
                   ? 'error_at_kill'
               : _in_hang($rec) ? 'error_in_hang'
               : _node_down($rec) ? 'error_down' : $v;
        } elsif (($v eq 'stale' || $v eq 'ahead')
                 && _during({ t0 => $rec->{since}, t1 => $rec->{t1} },
                            'cont')) {
            $v = 'stale_at_wake';
        }
        $rec->{class} = $v;
        $c{$v}++;
        $phase{ phase_of($rec->{t0}) }{$v}++;
        push @bad, $rec if $v ne 'ok' && $v ne 'error_at_kill';
    }
    $c{by_phase} = \%phase;
    $c{bad} = \@bad;
    return \%c;
}

# how many PHP processes answered (php-fpm: its workers, reused)
sub processes { return scalar keys %{ $_[0]{pids} || {} }; }

# one line: "NAME: 120 requests, 118 ok, 0 logouts, ..."
sub summary_line {
    my ($self) = @_;
    my $c = $self->summary;
    my @t = sort { $b <=> $a } map { $_->{t1} - $_->{t0} }
            @{ $self->{log} };
    return sprintf('%s: %d requests, %d ok, %d logouts, %d stale, '
                   . '%d errors; apart: %d failed in flight at a kill or '
                   . 'stop, %d failed during a stop, %d failed while a '
                   . 'node was down, %d stale after a '
                   . 'SIGCONT; %d ok with warnings; slowest %.1fs%s',
                   $self->{name}, $c->{requests}, $c->{ok}, $c->{logout},
                   $c->{stale} + $c->{ahead}, $c->{error},
                   $c->{error_at_kill}, $c->{error_in_hang},
                   $c->{error_down}, $c->{stale_at_wake}, $self->{warned} // 0, $t[0] // 0,
                   $c->{ahead} ? " ($c->{ahead} counts ahead)" : '');
}

# a few lines on what went wrong, by phase, for diag
sub explain {
    my ($self, $max) = @_;
    my $c = $self->summary;
    my @l;
    for my $p (sort keys %{ $c->{by_phase} }) {
        my $h = $c->{by_phase}{$p};
        my @bad = grep { $_ ne 'ok' } sort keys %$h;
        push @l, "  phase '$p': " . join(', ', map { "$h->{$_} $_" }
                                                  sort keys %$h) if @bad;
    }
    my $t00 = @EVENTS ? $EVENTS[0][0] : 0;
    my $n = 0;
    for my $rec (@{ $c->{bad} }) {
        last if ++$n > ($max // 8);
        push @l, sprintf('  %.2f-%.2fs %s %s: known %d, read %s%s',
                         $rec->{t0} - $t00, $rec->{t1} - $t00, $rec->{sid},
                         $rec->{class}, $rec->{known}, $rec->{n} // '-',
                         ($rec->{error} ? " ($rec->{error})"
                          : $rec->{warned} ? " (warnings: $rec->{warned})"
                          : '')
                         . ($rec->{seen} ? "; then $rec->{seen}" : ''));
    }
    return join "\n", @l;
}

1;
