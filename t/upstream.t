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

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use MemcTest;

my @allow = qw(
    00-startup ascii-auth binary-get bogus-commands cas chunked-items
    daemonize dash-M evictions flags getandtouch getset idle-timeout
    incrdecr issue_104 issue_108 issue_152 issue_192 issue_29 issue_3
    issue_41 issue_42 issue_50 issue_68 issue_70 item_size_max line-lengths
    malicious-commands metaget multiversioning noreply quit shutdown
    stats-detail strtol-testing touch unixsocket
    64bit issue_14 issue_163 issue_183 issue_22 lru lru-crawler
    lru-maintainer slabs-reassign2 slabs_reassign
);

if (defined $ENV{PAIRCACHED_UPSTREAM} && $ENV{PAIRCACHED_UPSTREAM} eq '0') {
    print "1..0 # SKIP PAIRCACHED_UPSTREAM=0\n";
    exit 0;
}
my $script = srcdir() . '/scripts/upstream-suite.sh';
exec('bash', $script, '--tap', memc_bin(), @allow)
    or die "cannot run $script: $!\n";
