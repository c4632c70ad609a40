package MemcTest;

# Runs the server under test (MEMCACHED_BIN, default /usr/bin/memcached)
# on 127.0.0.1 at a free port, waits until it answers "version", and
# kills every process it started when the test ends, even on die.
# Also: raw socket I/O with timeouts, reply parsers, a polling helper
# and a runner for external commands.  No bare sleeps: poll a condition
# with a deadline instead (wait_until).

use strict;
use warnings;

use Carp qw(croak);
use Cwd ();
use Errno qw(EINTR EAGAIN EWOULDBLOCK);
use Exporter qw(import);
use File::Spec;
use File::Temp qw(tempdir);
use FindBin;
use IO::Select;
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);

our @EXPORT = qw(memc_bin srcdir wait_until free_port run_cmd tmp_dir
                 new_server);

our $START_TIMEOUT = 10;    # seconds until the server must answer
our $IO_TIMEOUT    = 10;    # default per-read timeout

my %OWNED;                  # pid => pid of the process that started it
our $SEQ = 0;               # server log file counter
our $RUN_SEQ = 0;           # run_cmd file counter

# ---------------------------------------------------------------------------
# small free functions

sub memc_bin {
    return $ENV{MEMCACHED_BIN} || '/usr/bin/memcached';
}

# the source tree: $PAIRCACHED_SRCDIR (set by "make check"), else the
# parent of the directory holding the running t/*.t file
sub srcdir {
    return $ENV{PAIRCACHED_SRCDIR} if $ENV{PAIRCACHED_SRCDIR};
    my $t = $FindBin::Bin;
    $t = File::Spec->catdir((File::Spec->splitpath(
        File::Spec->rel2abs(__FILE__)))[1], File::Spec->updir)
        unless -d $t && -d "$t/lib";
    my $src = File::Spec->catdir($t, File::Spec->updir);
    return Cwd::abs_path($src) // $src;
}

my $TMP;
sub tmp_dir {
    $TMP ||= tempdir('memctest-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    return $TMP;
}

# Bind port 0 on 127.0.0.1, read the port, close.  Racy by nature:
# the server start retries on another port if this one gets taken.
sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp', Listen => 1)
        or croak "cannot bind a free port: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

# Poll $code every 20-50 ms until it returns true or $timeout seconds
# pass.  Returns the last value of $code (false on timeout).  On a
# timeout, says what it waited for when $what is given.
sub wait_until {
    my ($code, $timeout, $what) = @_;
    $timeout ||= 10;
    my $deadline = time + $timeout;
    my $delay = 0.02;
    while (1) {
        my $r = $code->();
        return $r if $r;
        if (time >= $deadline) {
            Test::More::diag("timed out after ${timeout}s waiting for "
                . $what) if defined $what && $INC{'Test/More.pm'};
            return $r;
        }
        sleep $delay;
        $delay = 0.05 if $delay < 0.05;
    }
}

# Run an external command with a deadline.  Returns ($status, $output)
# where $status is the raw wait status ($?) and $output is stdout and
# stderr merged (or separate when asked: returns ($st, $out, $err)).
#   run_cmd([argv...], timeout => 30, stdin => "...", separate => 1)
sub run_cmd {
    my ($argv, %opt) = @_;
    my $timeout = $opt{timeout} // 30;
    my $dir = tmp_dir();
    my $n = ++$MemcTest::RUN_SEQ;
    my $out = "$dir/run$n.out";
    my $err = $opt{separate} ? "$dir/run$n.err" : $out;
    my $in  = "$dir/run$n.in";
    open my $ifh, '>', $in or croak "$in: $!";
    print $ifh ($opt{stdin} // '');
    close $ifh;
    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        setpgrp(0, 0);
        open STDIN, '<', $in or POSIX::_exit(126);
        open STDOUT, '>', $out or POSIX::_exit(126);
        if ($opt{separate}) {
            open STDERR, '>', $err or POSIX::_exit(126);
        } else {
            open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
        }
        $ENV{$_} = $opt{env}{$_} for keys %{ $opt{env} || {} };
        { no warnings "exec"; exec { $argv->[0] } @$argv; }
        POSIX::_exit(127);
    }
    $OWNED{$pid} = $$;
    my $status;
    my $deadline = time + $timeout;
    while (1) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid) { $status = $?; last; }
        if (time >= $deadline) {
            kill 'KILL', -$pid;
            kill 'KILL', $pid;
            waitpid($pid, 0);
            $status = -1;
            Test::More::diag("command timed out after ${timeout}s: @$argv")
                if $INC{'Test/More.pm'};
            last;
        }
        sleep 0.02;
    }
    delete $OWNED{$pid};
    my $o = slurp($out);
    return ($status, $o, slurp($err)) if $opt{separate};
    return ($status, $o);
}

# Make END kill a process we caused but did not fork ourselves (a
# daemonized server, read from its pid file).
sub adopt_pid {
    my ($pid) = @_;
    $OWNED{$pid} = $$ if $pid && $pid =~ /^\d+$/;
}

sub disown_pid {
    my ($pid) = @_;
    delete $OWNED{$pid} if $pid;
}

# true while a process exists and is not a zombie
sub pid_alive {
    my ($pid) = @_;
    return 0 unless $pid && kill(0, $pid);
    if (open my $fh, '<', "/proc/$pid/stat") {
        my $st = <$fh> // '';
        return 0 if $st =~ /^\d+ \(.*\) Z /;
    }
    return 1;
}

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    binmode $fh;
    local $/;
    my $d = <$fh>;
    close $fh;
    return $d // '';
}

# ---------------------------------------------------------------------------
# the server object

sub new_server { return MemcTest->start(@_); }

# MemcTest->start(@args) or MemcTest->start({args => [...], port => N,
#   no_default_args => 1, start_timeout => S})
sub start {
    my ($class, @rest) = @_;
    my %opt = (@rest == 1 && ref $rest[0] eq 'HASH') ? %{ $rest[0] }
                                                     : (args => [@rest]);
    my @args = @{ $opt{args} || [] };
    my $tries = $opt{port} ? 1 : 5;
    my $last_err = '';
    for my $try (1 .. $tries) {
        my $port = $opt{port} || free_port();
        my $self = bless {
            port => $port, host => '127.0.0.1', args => [@args],
            owner => $$,
        }, $class;
        my $ok = $self->_spawn(\%opt);
        return $self if $ok;
        $last_err = $self->{start_error} // 'unknown';
        $self->stop;
        # another process took the port between free_port and bind: retry
        next if $last_err =~ /in use|failed to listen|bind/i;
        last;
    }
    croak "server did not start (" . memc_bin() . "): $last_err";
}

sub _spawn {
    my ($self, $opt) = @_;
    my @argv = (memc_bin());
    push @argv, '-U', '0', '-l', '127.0.0.1', '-p', $self->{port}
        unless $opt->{no_default_args};
    my @args = @{ $self->{args} };
    push @argv, '-u', 'root'
        if $> == 0 && !grep { /^(-u|--user)/ } @args;
    push @argv, @args;
    $self->{argv} = \@argv;
    my $log = tmp_dir() . "/server-$self->{port}-" . (++$MemcTest::SEQ)
        . '.log';
    $self->{log} = $log;
    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $log or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
        { no warnings "exec"; exec { $argv[0] } @argv; }
        POSIX::_exit(127);
    }
    $self->{pid} = $pid;
    $OWNED{$pid} = $$;
    my $timeout = $opt->{start_timeout} // $START_TIMEOUT;
    my $deadline = time + $timeout;
    while (time < $deadline) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid) {
            $self->{exit_status} = $?;
            delete $OWNED{$pid};
            $self->{pid} = undef;
            $self->{start_error} = "exited ($?): " . slurp($log);
            return 0;
        }
        # a caller may say how to tell the server is up (e.g. with -Y,
        # where "version" is refused until the client authenticates)
        return 1 if $opt->{ready} ? $opt->{ready}->($self)
                                  : $self->_answers_version;
        sleep 0.03;
    }
    $self->{start_error} = "no answer within ${timeout}s: " . slurp($log);
    return 0;
}

# true when the port answers "version" and the answering process is
# ours ("stats" pid): with tests running in parallel another test's
# server could hold the port while ours is failing to bind.  A
# MEMCACHED_BIN wrapper script must therefore exec the server.
sub _answers_version {
    my ($self) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => $self->{host},
                                  PeerPort => $self->{port},
                                  Proto => 'tcp', Timeout => 1)
        or return 0;
    my $ok = eval {
        _write_all($s, "version\r\n", 2);
        my $line = _read_line($s, 2);
        die "no version\n" unless defined $line && $line =~ /^VERSION /;
        _write_all($s, "stats\r\n", 2);
        my $pid;
        while (defined(my $l = _read_line($s, 2))) {
            $pid = $1 if $l =~ /^STAT pid (\d+)\r\n/;
            last if $l eq "END\r\n" || $l =~ /ERROR/;
        }
        # a server without a pid stat is accepted on "version" alone
        !defined $pid || $pid == $self->{pid};
    };
    close $s;
    return $ok ? 1 : 0;
}

sub port { $_[0]{port} }
sub pid  { $_[0]{pid} }
sub host { $_[0]{host} }
sub argv { @{ $_[0]{argv} } }
sub log_text { slurp($_[0]{log}) }
sub addr { "$_[0]{host}:$_[0]{port}" }

# a fresh connection each call
sub new_sock {
    my ($self, %o) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => $self->{host},
                                  PeerPort => $self->{port},
                                  Proto => 'tcp',
                                  Timeout => $o{timeout} // 5)
        or croak "connect to $self->{host}:$self->{port}: $!";
    $s->autoflush(1);
    binmode $s;
    return $s;
}

# the default connection of this server (opened on first use)
sub sock {
    my ($self) = @_;
    $self->{sock} ||= $self->new_sock;
    return $self->{sock};
}

# drop the default connection (next ->sock reconnects)
sub reset_sock {
    my ($self) = @_;
    close delete $self->{sock} if $self->{sock};
}

sub is_alive {
    my ($self) = @_;
    return 0 unless $self->{pid};
    my $r = waitpid($self->{pid}, WNOHANG);
    if ($r == $self->{pid}) {
        $self->{exit_status} = $?;
        delete $OWNED{ $self->{pid} };
        $self->{pid} = undef;
        return 0;
    }
    return 1;
}

# wait status of the exited server (after stop or is_alive == 0)
sub exit_status { $_[0]{exit_status} }

# SIGTERM (or $sig), wait up to $timeout, then SIGKILL.  Returns the
# wait status ($?) of the server.
sub stop {
    my ($self, $sig, $timeout) = @_;
    $sig ||= 'TERM';
    $timeout ||= 10;
    $self->reset_sock;
    my $pid = $self->{pid} or return $self->{exit_status};
    return undef unless ($self->{owner} // 0) == $$;
    kill $sig, $pid;
    my $deadline = time + $timeout;
    my $status;
    while (1) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid) { $status = $?; last; }
        if ($r < 0) { last; }
        if (time >= $deadline) {
            kill 'KILL', $pid;
            waitpid($pid, 0);
            $status = $?;
            $self->{killed} = 1;
            last;
        }
        sleep 0.02;
    }
    delete $OWNED{$pid};
    $self->{pid} = undef;
    $self->{exit_status} = $status;
    return $status;
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $!, $@);
    $self->stop('KILL', 5) if $self->{pid} && ($self->{owner} // 0) == $$;
}

END {
    local ($?, $!);
    for my $pid (keys %OWNED) {
        next unless $OWNED{$pid} == $$;
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
}

# a write to a connection the server closed must fail, not kill us
$SIG{PIPE} = 'IGNORE';

# a hung server must not hang "make check": each test file gets a
# deadline (MEMCTEST_TIMEOUT seconds, default 300), then fails
our $FILE_TIMEOUT = $ENV{MEMCTEST_TIMEOUT} || 300;
$SIG{ALRM} = sub {
    print STDOUT "not ok - test file timed out after ${FILE_TIMEOUT}s\n";
    print STDERR "# test file timed out after ${FILE_TIMEOUT}s\n";
    exit 124;
};
alarm $FILE_TIMEOUT;

# make SIGINT/SIGTERM of the test itself run END
$SIG{INT}  = sub { exit 130 } unless ref $SIG{INT};
$SIG{TERM} = sub { exit 143 } unless ref $SIG{TERM};

# ---------------------------------------------------------------------------
# raw I/O on sockets; each socket keeps its own read buffer, so
# line reads and byte-count reads can be mixed freely.

sub _buf { my ($s) = @_; return \${*$s}{memctest_buf}; }

sub _write_all {
    my ($s, $data, $timeout) = @_;
    $timeout //= $IO_TIMEOUT;
    my $deadline = time + $timeout;
    my $off = 0;
    my $sel = IO::Select->new($s);
    while ($off < length $data) {
        my $left = $deadline - time;
        die "write timeout\n" if $left <= 0;
        next unless $sel->can_write($left);
        my $n = syswrite($s, $data, length($data) - $off, $off);
        if (!defined $n) {
            next if $! == EINTR || $! == EAGAIN || $! == EWOULDBLOCK;
            die "write error: $!\n";
        }
        $off += $n;
    }
    return 1;
}

# read more into the socket's buffer; returns bytes read, 0 on EOF,
# undef on timeout
sub _fill {
    my ($s, $deadline) = @_;
    my $buf = _buf($s);
    $$buf //= '';
    my $sel = IO::Select->new($s);
    while (1) {
        my $left = $deadline - time;
        return undef if $left <= 0;
        next unless $sel->can_read($left);
        my $n = sysread($s, $$buf, 65536, length $$buf);
        if (!defined $n) {
            next if $! == EINTR || $! == EAGAIN || $! == EWOULDBLOCK;
            return 0;    # ECONNRESET and friends: treat as closed
        }
        return $n;
    }
}

# one line including its "\n"; undef on timeout or EOF (the partial
# data stays buffered)
sub _read_line {
    my ($s, $timeout) = @_;
    $timeout //= $IO_TIMEOUT;
    my $deadline = time + $timeout;
    my $buf = _buf($s);
    $$buf //= '';
    while (1) {
        my $i = index($$buf, "\n");
        return substr($$buf, 0, $i + 1, '') if $i >= 0;
        my $n = _fill($s, $deadline);
        return undef unless $n;
    }
}

sub _read_bytes {
    my ($s, $len, $timeout) = @_;
    $timeout //= $IO_TIMEOUT;
    my $deadline = time + $timeout;
    my $buf = _buf($s);
    $$buf //= '';
    while (length $$buf < $len) {
        my $n = _fill($s, $deadline);
        return undef unless $n;
    }
    return substr($$buf, 0, $len, '');
}

# everything that arrives until the peer is quiet for $quiet seconds
# (or closes); for replies of unknown length
sub _drain {
    my ($s, $quiet) = @_;
    $quiet //= 0.3;
    my $buf = _buf($s);
    $$buf //= '';
    while (1) {
        my $n = _fill($s, time + $quiet);
        last unless $n;
    }
    my $d = $$buf;
    $$buf = '';
    return $d;
}

# true when the peer closed the connection within $timeout (buffered
# unread data is discarded)
sub _closed {
    my ($s, $timeout) = @_;
    $timeout //= 5;
    my $deadline = time + $timeout;
    my $buf = _buf($s);
    while (1) {
        $$buf = '';
        my $n = _fill($s, $deadline);
        return 0 unless defined $n;   # timeout, still open
        return 1 if $n == 0;
    }
}

# methods: the socket argument is optional (default connection)

sub send {
    my ($self, $data, $s) = @_;
    _write_all($s || $self->sock, $data);
}

sub read_line {
    my ($self, $s, $timeout) = @_;
    return _read_line($s || $self->sock, $timeout);
}

sub read_bytes {
    my ($self, $len, $s, $timeout) = @_;
    return _read_bytes($s || $self->sock, $len, $timeout);
}

sub drain {
    my ($self, $s, $quiet) = @_;
    return _drain($s || $self->sock, $quiet);
}

sub closed_within {
    my ($self, $s, $timeout) = @_;
    return _closed($s || $self->sock, $timeout);
}

# send "$line\r\n" and return the reply line (with its "\r\n")
sub cmd {
    my ($self, $line, $s) = @_;
    $s ||= $self->sock;
    _write_all($s, "$line\r\n");
    return _read_line($s);
}

# storage command: store("set", key, value, flags, exptime, [sock],
# [extra like "noreply" or a cas id]).  Returns the reply line.
sub store {
    my ($self, $verb, $key, $val, $flags, $exp, $s, $extra) = @_;
    $s ||= $self->sock;
    $flags //= 0;
    $exp //= 0;
    my $line = "$verb $key $flags $exp " . length($val);
    $line .= " $extra" if defined $extra && length $extra;
    _write_all($s, "$line\r\n$val\r\n");
    return undef if defined $extra && $extra =~ /noreply/;
    return _read_line($s);
}

sub mem_set     { my $self = shift; $self->store('set', @_) }
sub mem_add     { my $self = shift; $self->store('add', @_) }
sub mem_replace { my $self = shift; $self->store('replace', @_) }

# Read a retrieval reply: VALUE blocks until END.  Returns
# ($raw_bytes, \@items) where each item is {key, flags, value, cas}.
# On an unexpected line (error) returns that line as raw and no items.
sub read_values {
    my ($self, $s, $timeout) = @_;
    $s ||= $self->sock;
    my $raw = '';
    my @items;
    while (1) {
        my $line = _read_line($s, $timeout);
        return ($raw, \@items, 'timeout') unless defined $line;
        $raw .= $line;
        if ($line =~ /^VALUE (\S+) (\d+) (\d+)(?: (\d+))?\r\n\z/) {
            my %it = (key => $1, flags => $2, len => $3, cas => $4);
            my $data = _read_bytes($s, $3 + 2, $timeout);
            return ($raw, \@items, 'timeout') unless defined $data;
            $raw .= $data;
            $it{value} = substr($data, 0, $3);
            $it{trailer_ok} = substr($data, $3) eq "\r\n";
            push @items, \%it;
            next;
        }
        return ($raw, \@items) if $line eq "END\r\n";
        return ($raw, \@items, 'error');
    }
}

# "get k1 k2" style: returns the raw reply bytes
sub get_raw {
    my ($self, $line, $s) = @_;
    $s ||= $self->sock;
    _write_all($s, "$line\r\n");
    my ($raw) = $self->read_values($s);
    return $raw;
}

# send a command and read reply lines until one that ends it: END,
# or a single-line status/error (OK, ERROR, CLIENT_ERROR ..., etc.).
# Returns the raw bytes.  $end defaults to the usual terminators.
sub cmd_lines {
    my ($self, $line, $s, $end) = @_;
    $s ||= $self->sock;
    $end ||= qr/\A(?:END|ERROR|CLIENT_ERROR|SERVER_ERROR|BADCLASS|BUSY|OK)\b/;
    _write_all($s, "$line\r\n");
    my $raw = '';
    while (defined(my $l = _read_line($s))) {
        $raw .= $l;
        last if $l =~ $end;
    }
    return $raw;
}

# "lru_crawler metadump all", polled until the reply matches $want (a
# regex; default: any complete reply).  memcached's crawler may miss an
# item for a moment right after it was read or touched (the LRU moves
# it), and answers BUSY while another crawl runs.  Returns the raw
# reply of the last try.
sub metadump {
    my ($self, $want, $timeout, $s) = @_;
    my $raw = '';
    wait_until(sub {
        $raw = $self->cmd_lines('lru_crawler metadump all', $s);
        return 0 unless $raw =~ /(?:\A|\n)END\r\n\z/;
        return defined $want ? scalar($raw =~ $want) : 1;
    }, $timeout // 5);
    return $raw;
}

# the metadump line of one key, waiting for it to show up; undef if it
# never does within $timeout
sub metadump_line {
    my ($self, $key, $timeout) = @_;
    my $raw = $self->metadump(qr/^key=\Q$key\E /m, $timeout);
    return $raw =~ /^(key=\Q$key\E .*)$/m ? $1 : undef;
}

# value of one key (undef on miss); in list context (value, flags, cas)
sub mem_get {
    my ($self, $key, $s) = @_;
    $s ||= $self->sock;
    _write_all($s, "gets $key\r\n");
    my ($raw, $items) = $self->read_values($s);
    my ($it) = grep { $_->{key} eq $key } @$items;
    return unless $it;
    return wantarray ? ($it->{value}, $it->{flags}, $it->{cas})
                     : $it->{value};
}

# cas unique of a key (undef on miss)
sub mem_cas {
    my ($self, $key, $s) = @_;
    my (undef, undef, $cas) = $self->mem_get($key, $s);
    return $cas;
}

# "stats [type]": hashref name => value.  Also fills {_raw} with the
# exact bytes and {_order} with the names in order.
sub stats {
    my ($self, $type, $s) = @_;
    $s ||= $self->sock;
    my $line = (defined $type && length $type) ? "stats $type" : 'stats';
    _write_all($s, "$line\r\n");
    my %h;
    my @order;
    my $raw = '';
    while (defined(my $l = _read_line($s))) {
        $raw .= $l;
        last if $l eq "END\r\n";
        if ($l =~ /^STAT (\S+) (.*)\r\n\z/) {
            $h{$1} = $2;
            push @order, $1;
        } else {
            $h{_error} = $l;
            last;
        }
    }
    $h{_raw} = $raw;
    $h{_order} = \@order;
    return \%h;
}

sub stat_value {
    my ($self, $name, $type) = @_;
    return $self->stats($type)->{$name};
}

1;
