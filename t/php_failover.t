#!/usr/bin/perl
# PHP sessions on a pair the way a PHP shop deploys it: both nodes in
# session.save_path, each request a fresh php-cli process or a request
# to a long-lived php-fpm worker (through cgi-fcgi), every request
# incrementing a counter in its session.  Under a steady request rate:
# SIGKILL of each node, its restart (client port closed until synced),
# SIGSTOP longer than the clients' timeouts and SIGCONT, a cut of the
# link with both nodes up.  Each configuration the README recommends
# (pecl memcache ascii as in the seed set-up, and binary; php-memcached
# binary) must end with no logout and no failed request except those in
# flight when a node was SIGKILLed or SIGSTOPped (counted and shown), and
# for php-memcached those made while a node is stopped; php-memcached
# text with no failed request while both nodes answer.  None may read
# its session stale (a count that went back), whatever the fault.
#
# PHP_SOAK_SECS=N repeats the faults for N seconds and also measures
# the set-ups the README warns against ("make soak").

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcTest;
use MemcPHP;
use MemcPair;
use PhpFpm;
use PhpFailover;
use SessLoad;

require_pair_build();
my @have;
{
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
my $no_fpm = PhpFpm::missing();
diag("php-fpm part skipped: $no_fpm") if $no_fpm;
my $soak = $ENV{PHP_SOAK_SECS} // 0;

my ($A, $B) = start_pair(linked => 1, relay => 1, repl_timeout => 2);
my @cfg = grep { my $e = $_->{ext}; grep { $_ eq $e } @have }
          PhpFailover::configs($A, $B, $soak || $ENV{PHP_FAILOVER_ALL});
@cfg = grep { $_->{name} =~ /$ENV{PHP_FAILOVER_ONLY}/ } @cfg
    if $ENV{PHP_FAILOVER_ONLY};
my ($fpm, $loads) = PhpFailover::start_loads(\@cfg, no_fpm => $no_fpm,
                                              nodes => [$A, $B]);

my $t0 = time;
my $log = sub { note(sprintf '%6.1fs %s', time - $t0, $_[0]) };
my @trouble = PhpFailover::run_steps($A, $B, $loads,
    [PhpFailover::default_steps()], log => $log);
for (my $round = 1; time - $t0 < $soak; $round++) {
    # in turn: B first or A first, the link reset or blackholed
    push @trouble, PhpFailover::run_steps($A, $B, $loads,
        [PhpFailover::default_steps(no_warm => 1, b_first => $round % 2,
                                    cut_mode => $round % 2 ? 'close'
                                                          : 'blackhole')],
        log => $log);
}
$_->finish for @$loads;
is_deeply(\@trouble, [], 'the pair came back from every fault')
    or diag(join "\n", @trouble);

for my $l (@$loads) {
    my $c = $l->summary;
    my $expect = $l->{config}{expect};
    diag(($expect eq 'measure' ? 'not recommended: ' : '')
         . $l->summary_line);
    my $name = $l->name;
    if ($expect eq 'measure') {
        diag($l->explain(3)) if $c->{logout} + $c->{stale} + $c->{ahead}
                                + $c->{error} + $c->{error_in_hang}
                                + $c->{error_down};
        next;
    }
    ok($c->{requests} >= 20, "$name: requests kept flowing");
    if ($l->{fpm}) {
        # the point of php-fpm here: a few workers serve every request
        ok($l->processes <= 4, "$name: " . $l->processes
           . " long-lived workers served them all");
    }
    is($c->{logout}, 0, "$name: no logout") or diag($l->explain(10));
    # Stale reads: a count that went back, or one above every write made
    # (the session's copies diverged), including a read right after a
    # node's SIGCONT: the woken node holds requests until the peer's
    # stream has caught it up (doc/replication.txt, "A node that was
    # stopped").
    is($c->{stale} + $c->{ahead} + $c->{stale_at_wake}, 0,
       "$name: no stale read") or diag($l->explain(10));
    is($c->{error}, 0, "$name: no failed request while both nodes answer, "
       . 'beyond those in flight at a SIGKILL or SIGSTOP')
        or diag($l->explain(10));
    next if $expect eq 'down_errors';
    is($c->{error_down}, 0, "$name: no failed request while a node is down")
        or diag($l->explain(10));
    next if $expect eq 'hang_errors';
    is($c->{error_in_hang}, 0, "$name: no failed request while a node is "
       . 'stopped') or diag($l->explain(10));
}

# and the pair agrees at the end
ok(wait_until(sub {
    my ($da, $db) = map { $_->stats_fresh('replication digest') } $A, $B;
    $da && $db && defined $da->{digest} && $da->{digest} eq $db->{digest};
}, 20), 'both nodes hold the same data at the end');

$fpm->stop if $fpm;
done_testing();
