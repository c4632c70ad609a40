#!/usr/bin/perl
# The replication link's TCP congestion control (doc/replication.txt,
# -o repl_tcp_congestion).  What a node reports in "stats replication"
# (link_congestion) is checked against the kernel's own view of that
# node's sockets, from `ss -tinp`:
#  - by default the link uses cubic on both nodes, whatever the system
#    default is;
#  - repl_tcp_congestion=reno gives reno; =system keeps the kernel's
#    default (/proc/sys/net/ipv4/tcp_congestion_control);
#  - an algorithm the kernel does not have, an empty name or one too
#    long refuse to start, saying why.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;
use MemcPair;

require_pair_build();

my $avail = eval { MemcTest::slurp(
    '/proc/sys/net/ipv4/tcp_available_congestion_control') } // '';
my $system = eval { MemcTest::slurp(
    '/proc/sys/net/ipv4/tcp_congestion_control') } // '';
chomp $system;
plan skip_all => 'needs cubic and reno in this kernel'
    unless $avail =~ /\bcubic\b/ && $avail =~ /\breno\b/;
my $have_ss = system('ss -V >/dev/null 2>&1') == 0;

# Algorithms of the established TCP sockets of process $pid whose local
# or remote port is one of @ports, as `ss -tinp` shows them.
sub kernel_view {
    my ($pid, @ports) = @_;
    my %ports = map { $_ => 1 } @ports;
    my @lines = `ss -tinp state established 2>/dev/null`;
    my %cc;
    for (my $i = 0; $i < @lines; $i++) {
        my $l = $lines[$i];
        next unless $l =~ /pid=$pid,/;
        my @p = $l =~ /:(\d+)\s/g;
        next unless grep { $ports{$_} } @p;
        my $info = ' ' . ($lines[$i + 1] // '');
        for my $alg (split ' ', $avail) {
            $cc{$alg}++ if $info =~ /\s\Q$alg\E\s/;
        }
    }
    return join(',', sort keys %cc);
}

sub check_pair {
    my ($label, $want_a, $want_b, %o) = @_;
    my ($A, $B) = start_pair(%o);
    ok(wait_linked($A, $B, 20), "$label: linked");
    is(stat_of($A, 'link_congestion'), $want_a,
       "$label: A reports $want_a");
    is(stat_of($B, 'link_congestion'), $want_b,
       "$label: B reports $want_b");
    SKIP: {
        skip 'no ss(8)', 2 unless $have_ss;
        my @ports = ($A->repl_port, $B->repl_port);
        is(kernel_view($A->pid, @ports), $want_a,
           "$label: the kernel has A's link on $want_a");
        is(kernel_view($B->pid, @ports), $want_b,
           "$label: the kernel has B's link on $want_b");
    }
    $A->kill9;
    $B->kill9;
}

check_pair('default', 'cubic', 'cubic');
check_pair('reno / system', 'reno', $system,
           o_a => ['repl_tcp_congestion=reno'],
           o_b => ['repl_tcp_congestion=system']);

must_refuse('unknown algorithm', ['repl_tcp_congestion=nosuchcc'],
            qr/repl_tcp_congestion: cannot use "nosuchcc"/);
must_refuse('empty name', ['repl_tcp_congestion='],
            qr/repl_tcp_congestion takes an algorithm name/);
must_refuse('name too long', ['repl_tcp_congestion=' . ('x' x 16)],
            qr/repl_tcp_congestion takes an algorithm name/);

done_testing();
