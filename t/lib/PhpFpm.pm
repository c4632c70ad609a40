package PhpFpm;

# Runs Debian's php-fpm for the PHP session tests: one master in the
# foreground with a pool per client configuration, each pool a few
# long-lived workers listening on a unix socket in the test's temp
# directory, so a worker keeps its PHP state (persistent connections,
# libmemcached's idea of which server failed) from one request to the
# next as it does behind a web server.  Requests go through cgi-fcgi
# (libfcgi-bin), one process per request, the way a web server's
# FastCGI client would send them.  MemcTest's END kills the master.

use strict;
use warnings;

use Carp qw(croak);
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);
use MemcTest ();

my %LIVE;                   # master pid => object, stopped at END

# the php-fpm binary (Debian names it php-fpmX.Y), or undef
sub fpm_bin {
    return $ENV{MEMCTEST_PHP_FPM} if $ENV{MEMCTEST_PHP_FPM};
    for my $d ('/usr/sbin', '/usr/local/sbin', split(/:/, $ENV{PATH} // '')) {
        next unless length $d && -d $d;
        opendir(my $dh, $d) or next;
        my @c = sort { $b cmp $a }
                grep { /^php-fpm[0-9.]*$/ && -x "$d/$_" } readdir $dh;
        closedir $dh;
        return "$d/$c[0]" if @c;
    }
    return undef;
}

sub cgi_fcgi_bin {
    for my $d (split(/:/, $ENV{PATH} // ''), '/usr/bin') {
        return "$d/cgi-fcgi" if length $d && -x "$d/cgi-fcgi";
    }
    return undef;
}

# why php-fpm cannot be used here, or undef when it can
sub missing {
    return 'php-fpm not installed (Debian: php-fpm)' unless fpm_bin();
    return 'cgi-fcgi not installed (Debian: libfcgi-bin)'
        unless cgi_fcgi_bin();
    return undef;
}

# PhpFpm->start(pools => { NAME => { ini => {k => v}, workers => N } },
#               extra => [-d options to load extensions])
# Returns once every pool's socket accepts connections.
sub start {
    my ($class, %o) = @_;
    my $bin = fpm_bin() or croak 'php-fpm not found';
    my $dir = MemcTest::tmp_dir() . '/fpm' . (++$MemcTest::RUN_SEQ);
    mkdir $dir or croak "$dir: $!";
    my $conf = "$dir/php-fpm.conf";
    open my $fh, '>', $conf or croak "$conf: $!";
    print $fh "[global]\nerror_log = $dir/fpm.log\ndaemonize = no\n"
        . "pid = $dir/fpm.pid\nlog_level = warning\n";
    my %sock;
    for my $name (sort keys %{ $o{pools} }) {
        my $p = $o{pools}{$name};
        $sock{$name} = "$dir/$name.sock";
        print $fh "[$name]\nlisten = $sock{$name}\npm = static\n"
            . 'pm.max_children = ' . ($p->{workers} // 2) . "\n"
            . "request_terminate_timeout = 60\n"
            . "catch_workers_output = yes\n";
        my %ini = %{ $p->{ini} };
        for my $k (sort keys %ini) {
            print $fh "php_admin_value[$k] = \"$ini{$k}\"\n";
        }
    }
    close $fh;
    my @argv = ($bin, '-F', '-R', '-y', $conf, '-p', $dir,
                @{ $o{extra} || [] });
    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        setpgrp(0, 0);
        open STDIN, '<', '/dev/null' or POSIX::_exit(126);
        open STDOUT, '>', "$dir/stdout" or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
        { no warnings 'exec'; exec { $argv[0] } @argv; }
        POSIX::_exit(127);
    }
    MemcTest::adopt_pid($pid);
    my $self = bless { pid => $pid, dir => $dir, sock => \%sock,
                       owner => $$ }, $class;
    $LIVE{$pid} = $self;
    my $ok = MemcTest::wait_until(sub {
        return -1 if waitpid($pid, WNOHANG) == $pid;
        for my $s (values %sock) {
            return 0 unless -S $s;
        }
        return 1;
    }, 20);
    if (!$ok || $ok < 0) {
        my $log = MemcTest::slurp("$dir/stdout")
            . MemcTest::slurp("$dir/fpm.log");
        $self->stop;
        croak "php-fpm did not start: $log";
    }
    return $self;
}

sub socket_of { $_[0]{sock}{$_[1]} }
sub log_text {
    my ($self) = @_;
    return MemcTest::slurp("$self->{dir}/stdout")
        . MemcTest::slurp("$self->{dir}/fpm.log");
}

# argv and environment of one cgi-fcgi request of $script (a path) to
# pool $name with query string $query
sub request_cmd {
    my ($self, $name, $script, $query) = @_;
    my $sock = $self->{sock}{$name} or croak "no pool $name";
    my %env = (SCRIPT_FILENAME => $script, SCRIPT_NAME => '/counter.php',
               REQUEST_METHOD => 'GET', QUERY_STRING => $query,
               SERVER_PROTOCOL => 'HTTP/1.1', GATEWAY_INTERFACE => 'CGI/1.1',
               REMOTE_ADDR => '127.0.0.1', SERVER_NAME => 'localhost');
    return ([cgi_fcgi_bin(), '-bind', '-connect', $sock], \%env);
}

# the workers' pids (children of the master)
sub worker_pids {
    my ($self) = @_;
    my @w;
    opendir(my $d, '/proc') or return ();
    for my $p (grep { /^\d+$/ } readdir $d) {
        my $st = MemcTest::slurp("/proc/$p/stat");
        push @w, $p if $st =~ /^\d+ \(.*\) \S (\d+) / && $1 == $self->{pid};
    }
    closedir $d;
    return sort { $a <=> $b } @w;
}

sub stop {
    my ($self) = @_;
    return unless $self->{pid} && $self->{owner} == $$;
    my $pid = delete $self->{pid};
    kill 'QUIT', $pid;
    my $deadline = time + 5;
    while (waitpid($pid, WNOHANG) == 0) {
        if (time > $deadline) {
            kill 'KILL', -$pid;
            kill 'KILL', $pid;
            waitpid($pid, 0);
            last;
        }
        sleep 0.05;
    }
    kill 'KILL', -$pid;         # any worker left in its process group
    delete $LIVE{$pid};
    MemcTest::disown_pid($pid);
}

# before MemcTest's END (which would SIGKILL the master alone and
# orphan its workers): this END is compiled later, so it runs first
END {
    local ($?, $!);
    $_->stop for values %LIVE;
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $!, $@);
    $self->stop;
}

1;
