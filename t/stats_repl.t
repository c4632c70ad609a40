#!/usr/bin/perl
# The pair's health in plain `stats` (repl_* lines), for tools that read
# only `stats`: present with -x and absent without; the values follow
# the link (state, lag, last sync kind, resync and failure counters);
# memcached-tool (from Debian's memcached package) prints them; and the
# whole reply still parses the way the Prometheus memcached exporter
# parses it.  The exporter is not in Debian 12's archive, so its parse is
# done here as it does it (prometheus/memcached_exporter,
# pkg/exporter/exporter.go with the grobie/gomemcache stats reader):
# every line "STAT name value", only the first word of a value kept; the
# counters it reads must parse as numbers, rusage_* as seconds.micros,
# cmd_set and the cas_* counters present, and from `stats settings`
# maxconns and (with the crawler on) its numbers and yes/no flags.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;
use MemcPair;

require_pair_build();

# what the exporter's reader makes of a stats reply: name => first word
# of the value; dies where that reader fails
sub exporter_read {
    my ($raw) = @_;
    my %m;
    my @lines = split /\r\n/, $raw;
    die "no END\n" unless @lines && $lines[-1] eq 'END';
    pop @lines;
    for my $l (@lines) {
        die "malformed stats response: $l\n" unless $l =~ /^STAT /;
        my @w = split / /, substr($l, 5), 3;
        die "no value: $l\n" unless defined $w[1];
        $m{$w[0]} = $w[1];
    }
    return \%m;
}

my $NUM = qr/^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

# the checks the exporter's Collect makes; returns the list of failures
sub exporter_failures {
    my ($st, $set) = @_;
    my @bad;
    for my $k (qw(uptime time cas_badval cmd_flush bytes limit_maxbytes
                  curr_items total_items bytes_read bytes_written
                  curr_connections total_connections rejected_connections
                  conn_yields listen_disabled_num evictions reclaimed
                  store_too_large store_no_memory lru_crawler_starts
                  direct_reclaims crawler_items_checked crawler_reclaimed
                  moves_to_cold moves_to_warm moves_within_lru
                  total_malloced accepting_conns),
               map { ("${_}_hits", "${_}_misses") }
                   qw(get delete incr decr cas touch)) {
        next unless exists $st->{$k};
        push @bad, "$k=$st->{$k}" unless $st->{$k} =~ $NUM;
    }
    for my $k (qw(cmd_set cas_misses cas_hits cas_badval version)) {
        push @bad, "missing $k" unless exists $st->{$k};
    }
    for my $k (qw(rusage_user rusage_system)) {
        push @bad, "$k=" . ($st->{$k} // 'missing')
            unless ($st->{$k} // '') =~ /^\d+\.\d{6}$/;
    }
    push @bad, 'maxconns' unless ($set->{maxconns} // '') =~ $NUM;
    if (($set->{lru_crawler} // '') eq 'yes') {
        for my $k (qw(lru_crawler_sleep lru_crawler_tocrawl hot_lru_pct
                      warm_lru_pct hot_max_factor warm_max_factor)) {
            next unless exists $set->{$k};
            push @bad, "$k=$set->{$k}" unless $set->{$k} =~ $NUM;
        }
        for my $k (qw(lru_crawler lru_maintainer_thread)) {
            next unless exists $set->{$k};
            push @bad, "$k=$set->{$k}" unless $set->{$k} =~ /^(yes|no)$/;
        }
    }
    return @bad;
}

sub raw_stats {
    my ($n, $what) = @_;
    my $s = $n->new_sock;
    return $n->cmd_lines($what, $s);
}

# --- a single node: no repl_ line, as memcached ----------------------------
{
    my $one = MemcTest->start();
    my $st = exporter_read(raw_stats($one, 'stats'));
    is(join(' ', grep { /^repl_/ } keys %$st), '', 'no -x: no repl_ stat');
    $one->stop;
}

# --- a pair ------------------------------------------------------------------
my ($A, $B) = start_pair(repl_timeout => 2, linked => 1);
ok(wait_linked($A, $B, 20), 'linked');
$A->mem_set("k$_", "v$_") for 1 .. 20;
ok(wait_value($B, 'k20', 'v20', 10), 'replicated');

my $raw = raw_stats($A, 'stats');
my $st = eval { exporter_read($raw) };
ok($st, 'the exporter\'s reader takes stats') or diag($@);
my $set = eval { exporter_read(raw_stats($A, 'stats settings')) };
ok($set, '... and stats settings') or diag($@);
my @bad = exporter_failures($st, $set);
is("@bad", '', 'every value the exporter reads parses');

my @want = qw(repl_state repl_state_secs repl_peer repl_initial_sync_done
              repl_peer_synced repl_lag_ms repl_lag_items
              repl_sync_in_progress repl_full_syncs repl_partial_syncs
              repl_links repl_reconnects repl_buffer_overflows
              repl_auth_failures repl_tls_failures repl_protocol_errors
              repl_peer_mismatches repl_handshake_timeouts repl_sync_timeouts
              repl_last_sync_kind);
my @missing = grep { !exists $st->{$_} } @want;
is("@missing", '', 'stats has the pair\'s health under repl_');
my @multi = grep { /^STAT repl_\S+ \S+ / } split /\r\n/, $raw;
is("@multi", '', 'every repl_ value is one word');
is($st->{repl_state}, 'linked', 'repl_state linked');
is($st->{repl_peer}, '127.0.0.1:' . $B->repl_port, 'repl_peer');
is($st->{repl_initial_sync_done}, 'yes', 'repl_initial_sync_done yes');
like($st->{repl_lag_ms}, qr/^\d+$/, 'repl_lag_ms is a number');
# The first sync is a full copy; when both nodes dialled at once, the
# link kept may replace the first one and resume it: partial.
like($st->{repl_last_sync_kind}, qr/^(full|partial)$/,
     "repl_last_sync_kind after start ($st->{repl_last_sync_kind})");
ok($st->{repl_full_syncs} + $B->repl_stats->{full_syncs} >= 1,
   'a full copy was made at start');
my $rs = $A->repl_stats;
is($st->{repl_full_syncs}, $rs->{full_syncs},
   'repl_full_syncs = stats replication full_syncs');

# memcached-tool (Debian's memcached package) prints them
SKIP: {
    my $tool = (grep { -f } '/usr/share/memcached/scripts/memcached-tool',
                            '/usr/bin/memcached-tool')[0];
    skip 'memcached-tool not installed', 3 unless $tool;
    my ($s, $out) = run_cmd([$^X, $tool, '127.0.0.1:' . $A->port, 'stats'],
                            timeout => 30);
    is($s, 0, 'memcached-tool stats exits 0') or diag($out);
    like($out, qr/^\s+repl_state\s+linked\r?$/m,
         'memcached-tool stats shows repl_state');
    ($s, $out) = run_cmd([$^X, $tool, '127.0.0.1:' . $A->port, 'display'],
                         timeout => 30);
    is($s, 0, 'memcached-tool display still works') or diag($out);
}

# the peer goes: the state says so; it returns: a reconnect
$B->kill9;
ok(wait_until(sub {
       my $h = eval { exporter_read(raw_stats($A, 'stats')) } || {};
       ($h->{repl_state} // '') ne 'linked' }, 15),
   'peer down: repl_state leaves linked');
$B->restart(timeout => 30);
ok(wait_linked($A, $B, 20), 'linked again');
$st = exporter_read(raw_stats($A, 'stats'));
ok($st->{repl_reconnects} >= 1, "repl_reconnects counts it ($st->{repl_reconnects})");
like($st->{repl_last_sync_kind}, qr/^(full|partial)$/, 'repl_last_sync_kind');

$A->kill9;
$B->kill9;
done_testing();
