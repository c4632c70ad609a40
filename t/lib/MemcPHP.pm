package MemcPHP;

# Runs Debian's php-cli with the memcached (php-memcached) and memcache
# (pecl memcache) extensions for the t/php_*.t tests: finds php, checks
# the extensions load (Debian loads them from /etc/php/*/cli/conf.d; if
# not, we try "-d extension=NAME.so"), builds "-d name=value" option
# lists, and runs the scripts under t/php/ either to completion or in
# the background, always under "timeout" and a Perl deadline.  Every
# script prints one JSON object (session.php) or TAP-like lines
# (*_api.php); helpers here decode them.

use strict;
use warnings;

use Carp qw(croak);
use JSON::PP ();
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(time sleep);
use MemcTest ();

our $PHP_TIMEOUT = 20;      # seconds one php process may run
our @EXTRA;                 # "-d extension=..." when conf.d lacks one

# Extensions each one needs loaded first (Debian builds php-memcached
# with igbinary and msgpack serializer support).
my %DEPS = (memcached => [qw(igbinary msgpack)]);

sub php_bin {
    return $ENV{MEMCTEST_PHP} if $ENV{MEMCTEST_PHP};
    for my $d (split /:/, $ENV{PATH} // '') {
        return "$d/php" if length $d && -x "$d/php" && !-d "$d/php";
    }
    return '/usr/bin/php' if -x '/usr/bin/php';
    return undef;
}

# path of a script under t/php/
sub script {
    my ($name) = @_;
    return MemcTest::srcdir() . "/t/php/$name";
}

sub _loaded {
    my ($ext, @args) = @_;
    my ($st) = MemcTest::run_cmd([php_bin(), @args, '-r',
        "exit(extension_loaded('$ext') ? 0 : 1);"], timeout => 30);
    return $st == 0;
}

# plan skip_all unless php runs and every named extension loads;
# remembers the extra -d options needed to load them
sub require_ext {
    my (@exts) = @_;
    my $php = php_bin();
    plan skip_all => 'php-cli not installed (no php: set MEMCTEST_PHP)'
        unless $php && -x $php;
    my ($st, $out) = MemcTest::run_cmd([$php, '-r', 'echo PHP_VERSION;'],
                                       timeout => 30);
    plan skip_all => "php does not run: $out" if $st != 0;
    for my $ext (@exts) {
        next if _loaded($ext, @EXTRA);
        my @try = map { ('-d', "extension=$_.so") }
                  (@{ $DEPS{$ext} || [] }, $ext);
        # a dependency that is already loaded only warns
        if (_loaded($ext, @EXTRA, @try)) {
            push @EXTRA, @try;
            next;
        }
        plan skip_all => "PHP extension \"$ext\" not available";
    }
    return $php;
}

# ("-d", "k=v", ...) from a hash (sorted, so runs are reproducible)
sub ini_args {
    my (%ini) = @_;
    return map { ('-d', "$_=$ini{$_}") } sort keys %ini;
}

# settings every session test shares; CLI-friendly (no cookies, no
# headers), deterministic ("php" serializer, no random gc)
sub session_defaults {
    return (
        'display_errors'           => 'stderr',
        'error_reporting'          => '-1',
        'log_errors'               => '0',
        'session.use_cookies'      => '0',
        'session.use_only_cookies' => '1',
        'session.use_trans_sid'    => '0',
        'session.cache_limiter'    => '',
        'session.gc_probability'   => '0',
        'session.serialize_handler' => 'php',
        'session.use_strict_mode'  => '0',
        'session.lazy_write'       => '1',
        'session.gc_maxlifetime'   => '1440',
        'max_execution_time'       => '0',
    );
}

sub _argv {
    my ($ini, $script, @args) = @_;
    return ['timeout', '-k', '2', $PHP_TIMEOUT, php_bin(), @EXTRA,
            ini_args(%$ini), script($script), @args];
}

# Run a t/php script to the end: ($status, $stdout, $stderr)
sub run {
    my ($ini, $script, @args) = @_;
    return MemcTest::run_cmd(_argv($ini, $script, @args),
                             timeout => $PHP_TIMEOUT + 5, separate => 1);
}

# Start a t/php script in the background; returns a handle for
# wait_json/wait_done.  END in MemcTest kills it if we die first.
sub spawn {
    my ($ini, $script, @args) = @_;
    my $argv = _argv($ini, $script, @args);
    my $dir = MemcTest::tmp_dir();
    my $n = ++$MemcTest::RUN_SEQ;
    my %h = (out => "$dir/php$n.out", err => "$dir/php$n.err",
             argv => $argv);
    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        setpgrp(0, 0);
        open STDIN, '<', '/dev/null' or POSIX::_exit(126);
        open STDOUT, '>', $h{out} or POSIX::_exit(126);
        open STDERR, '>', $h{err} or POSIX::_exit(126);
        { no warnings 'exec'; exec { $argv->[0] } @$argv; }
        POSIX::_exit(127);
    }
    MemcTest::adopt_pid($pid);
    $h{pid} = $pid;
    return \%h;
}

# Wait for a spawned script: ($status, $stdout, $stderr); status -1
# when it had to be killed after $timeout seconds
sub wait_done {
    my ($h, $timeout) = @_;
    $timeout //= $PHP_TIMEOUT + 5;
    my $deadline = time + $timeout;
    my $status;
    while (1) {
        my $r = waitpid($h->{pid}, WNOHANG);
        if ($r == $h->{pid}) { $status = $?; last; }
        if ($r < 0) { $status = -1; last; }
        if (time >= $deadline) {
            kill 'KILL', -$h->{pid};
            kill 'KILL', $h->{pid};
            waitpid($h->{pid}, 0);
            $status = -1;
            diag("php timed out after ${timeout}s: @{ $h->{argv} }");
            last;
        }
        sleep 0.02;
    }
    MemcTest::disown_pid($h->{pid});
    return ($status, MemcTest::slurp($h->{out}), MemcTest::slurp($h->{err}));
}

my $JSON = JSON::PP->new->allow_nonref;

# the JSON object a script printed (its last line), or undef after a
# diag with the exit status and both outputs
sub decode_json_out {
    my ($status, $out, $err, $what) = @_;
    my ($line) = grep { /^\{/ } reverse split /\n/, $out // '';
    my $r = defined $line ? eval { $JSON->decode($line) } : undef;
    if (!$r || ref $r ne 'HASH' || $status != 0) {
        diag(($what // 'php') . ": exit status $status\nstdout: "
             . ($out // '') . "\nstderr: " . ($err // ''));
        return $r if $r && ref $r eq 'HASH';
        return undef;
    }
    diag(($what // 'php') . " stderr: $err") if length($err // '');
    return $r;
}

# run a script and decode its JSON object
sub run_json {
    my ($ini, $script, @args) = @_;
    my ($st, $out, $err) = run($ini, $script, @args);
    return decode_json_out($st, $out, $err, "$script @args");
}

sub wait_json {
    my ($h, $timeout) = @_;
    my ($st, $out, $err) = wait_done($h, $timeout);
    my @a = @{ $h->{argv} };
    return decode_json_out($st, $out, $err, join(' ', @a[-4 .. -1]));
}

# $_SESSION as PHP printed it: json_encode gives [] for an empty
# array, so turn that into {}
sub sess_data {
    my ($x) = @_;
    return {} if !defined $x || (ref $x eq 'ARRAY' && !@$x);
    return $x;
}

# Relay the "ok N - what" / "not ok N - what" lines of a TAP-like
# script output as Test::More results named "$label: what", with the
# "# ..." lines after a failure as diag.  Then check the script ran to
# its "1..N" line and exited 0.  Returns the number of checks relayed.
sub relay_tap {
    my ($label, $status, $out, $err) = @_;
    my ($count, $plan) = (0, undef);
    my $failed = 0;
    my @detail;
    my $flush = sub {
        diag(join "\n", @detail) if @detail;
        @detail = ();
    };
    for my $l (split /\n/, $out // '') {
        if ($l =~ /^(not )?ok \d+ - (.*)$/) {
            $flush->();
            $count++;
            $failed = defined $1;
            ok(!$failed, "$label: $2");
        } elsif ($l =~ /^#/ && $failed) {
            push @detail, $l;
        } elsif ($l =~ /^1\.\.(\d+)$/) {
            $plan = $1;
        } elsif (length $l) {
            push @detail, "$label output: $l";
        }
    }
    $flush->();
    ok(defined $plan && $plan == $count && $status == 0,
       "$label: script ran all its checks and exited 0")
        or diag("exit status $status, plan " . ($plan // 'none')
                . ", $count checks\nstderr: " . ($err // ''));
    return $count;
}

1;
