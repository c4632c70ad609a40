#!/usr/bin/perl
# memcached 1.6.18's own test files that pass against this server (issue
# #19, "Drop-in for real"), run by scripts/upstream-suite.sh, which
# fetches them from Debian's source package (none are kept here).  One
# TAP test per file: a listed file that fails fails this test.  Every
# file that passes today is listed, so the list only grows; add a file
# when a fix makes it pass (`scripts/upstream-suite.sh ./memcached`
# runs them all).  Without network access to the Debian archive (and no
# cached copy) the whole file is skipped; PAIRCACHED_UPSTREAM=0 skips it
# too.
#
# line-lengths.t checks memcached's own doc/protocol.txt, not the
# server; it is listed because it passes.
#
# The TLS files run with SSL_TEST=1 and the SASL one with
# RUN_SASL_TESTS=1, in runs of their own (issue #20): with SSL_TEST=1
# the suite starts every server with -Z, and binary-sasl.t's own client
# then fails on IO::Socket::SSL (stock memcached too).  Each group is
# skipped, with the reason, when what it needs is missing.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use MemcTest;

# ~60 of memcached's files run one after another here: 5-7 minutes on a
# loaded 2-core machine, past MemcTest's 300 s default for a file.
alarm($ENV{MEMCTEST_TIMEOUT} || 1200);

my @allow = qw(
    00-startup 64bit ascii-auth binary binary-get bogus-commands cas
    chunked-items conn-limits daemonize dash-M dyn-maxbytes evictions flags
    flush-all
    getandtouch getset idle-timeout incrdecr issue_104 issue_108 issue_14
    issue_152 issue_163 issue_183 issue_192 issue_22 issue_29 issue_3
    issue_41 issue_42 issue_50 issue_61 issue_67 issue_68 issue_70
    item_size_max line-lengths lru lru-crawler lru-maintainer
    malicious-commands maxconns metaget multiversioning noreply quit
    restart shutdown slabs-reassign-chunked slabs-reassign2 slabs_reassign
    stats stats-conns stats-detail strtol-testing touch udp unixsocket
    watcher watcher_connid
);

my @allow_tls = qw(
    ssl_cert_refresh ssl_ports ssl_proto_version ssl_session_resumption
    ssl_settings ssl_verify_modes
);
my @allow_sasl = qw(binary-sasl);

if (defined $ENV{PAIRCACHED_UPSTREAM} && $ENV{PAIRCACHED_UPSTREAM} eq '0') {
    print "1..0 # SKIP PAIRCACHED_UPSTREAM=0\n";
    exit 0;
}
# expirations.t moves the clock with `debugtime`, a command of test
# builds only: make check builds t/debug/memcached for it.
my $debug = $ENV{PAIRCACHED_DEBUG_BIN} // 't/debug/memcached';
if (-x $debug) {
    $ENV{UPSTREAM_DEBUG_BIN} = $debug;
    push @allow, 'expirations';
}
my $script = srcdir() . '/scripts/upstream-suite.sh';
my $help = `${\memc_bin()} -h`;

# Run one group; its TAP lines are renumbered into ours.
my ($n, @out, $skip_all) = (0);
sub group {
    my ($env, $why_not, @files) = @_;
    if ($why_not) {
        push @out, 'ok ' . ++$n . " - t/$_ # SKIP $why_not" for @files;
        return;
    }
    local @ENV{keys %$env} = values %$env;
    open(my $fh, '-|', 'bash', $script, '--tap', memc_bin(), @files)
        or die "cannot run $script: $!\n";
    while (my $line = <$fh>) {
        chomp $line;
        if ($line =~ /^1\.\.0 # SKIP (.*)/) {
            $skip_all = $1;
        } elsif ($line =~ /^(not ok|ok) \d+(.*)/) {
            push @out, "$1 " . ++$n . $2;
        } elsif ($line =~ /^#/) {
            push @out, $line;
        }
    }
    close $fh;
}

group({}, undef, @allow);
if (defined $skip_all) {
    print "1..0 # SKIP $skip_all\n";
    exit 0;
}
group({SSL_TEST => 1},
      $help !~ /enable-ssl/ ? 'no -Z in this build'
      : !eval { require IO::Socket::SSL; 1 }
          ? 'IO::Socket::SSL missing (libio-socket-ssl-perl)' : undef,
      @allow_tls);
group({RUN_SASL_TESTS => 1},
      $help !~ /Cyrus SASL/ ? 'no Cyrus SASL in this build (libsasl2-dev)'
      : !grep({ -x "$_/saslpasswd2" } split(/:/, $ENV{PATH} // ''),
              '/usr/sbin', '/usr/bin')
          ? 'no saslpasswd2 (sasl2-bin)' : undef,
      @allow_sasl);
print "1..$n\n", map { "$_\n" } @out;
