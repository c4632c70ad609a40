#!/usr/bin/perl
# stats, stats settings/items/slabs/sizes/conns/reset/detail: the field
# names memcached 1.6 prints (monitoring tools depend on them), value
# formats, and counters moving with commands.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;

my $srv = MemcTest->start();

# every reply line of a stats command is "STAT <name> <value>\r\n",
# then "END\r\n"
sub check_format {
    my ($raw, $what) = @_;
    my @lines = split /(?<=\r\n)/, $raw;
    my $last = pop @lines;
    is($last, "END\r\n", "$what ends with END");
    my @bad = grep { !/\ASTAT \S+ \S(?:.*\S)?\r\n\z/ } @lines;
    is(scalar @bad, 0, "$what: every line is 'STAT name value'")
        or diag("bad: @bad");
    ok(@lines > 0, "$what has lines");
}

sub has_all {
    my ($st, $names, $what) = @_;
    my @missing = grep { !exists $st->{$_} } @$names;
    is("@missing", '', "$what: all " . scalar(@$names) . ' names present');
}

# --- stats --------------------------------------------------------------
$srv->mem_set('a', 'x');
my $st = $srv->stats;
check_format($st->{_raw}, 'stats');

my @general = qw(
    pid uptime time version libevent pointer_size rusage_user rusage_system
    max_connections curr_connections total_connections rejected_connections
    connection_structures response_obj_oom response_obj_count
    response_obj_bytes read_buf_count read_buf_bytes read_buf_bytes_free
    read_buf_oom reserved_fds cmd_get cmd_set cmd_flush cmd_touch cmd_meta
    get_hits get_misses get_expired get_flushed delete_misses delete_hits
    incr_misses incr_hits decr_misses decr_hits cas_misses cas_hits
    cas_badval touch_hits touch_misses store_too_large store_no_memory
    auth_cmds auth_errors bytes_read bytes_written limit_maxbytes
    accepting_conns listen_disabled_num time_in_listen_disabled_us threads
    conn_yields hash_power_level hash_bytes hash_is_expanding
    slab_reassign_rescues slab_reassign_chunk_rescues
    slab_reassign_evictions_nomem slab_reassign_inline_reclaim
    slab_reassign_busy_items slab_reassign_busy_deletes
    slab_reassign_running slabs_moved lru_crawler_running lru_crawler_starts
    lru_maintainer_juggles malloc_fails log_worker_dropped
    log_worker_written log_watcher_skipped log_watcher_sent log_watchers
    unexpected_napi_ids round_robin_fallback bytes curr_items total_items slab_global_page_pool expired_unfetched
    evicted_unfetched evicted_active evictions reclaimed crawler_reclaimed
    crawler_items_checked lrutail_reflocked moves_to_cold moves_to_warm
    moves_within_lru direct_reclaims lru_bumps_dropped
);
has_all($st, \@general, 'stats');
is("@{$st->{_order}}", "@general",
   'stats: exactly memcached 1.6.18\'s fields, in its order');

like($st->{pid}, qr/\A\d+\z/, 'pid numeric');
is($st->{pid}, $srv->pid, 'pid is the server process');
like($st->{uptime}, qr/\A\d+\z/, 'uptime numeric');
ok(abs($st->{time} - time) <= 2, 'time is the unix time');
like($st->{version}, qr/\A\d+\.\d+\.\d+/, 'version x.y.z');
like($st->{pointer_size}, qr/\A(?:32|64)\z/, 'pointer_size 32 or 64');
like($st->{rusage_user}, qr/\A\d+\.\d{6}\z/, 'rusage_user sec.usec');
like($st->{rusage_system}, qr/\A\d+\.\d{6}\z/, 'rusage_system sec.usec');
is($st->{limit_maxbytes}, 64 * 1024 * 1024, 'limit_maxbytes default 64 MB');
is($st->{threads}, 4, 'threads default 4');
is($st->{max_connections}, 1024, 'max_connections default 1024');
is($st->{accepting_conns}, 1, 'accepting_conns 1');
is($st->{curr_items}, 1, 'curr_items 1');
is($st->{total_items}, 1, 'total_items 1');
is($st->{cmd_set}, 1, 'cmd_set 1');
is($st->{evictions}, 0, 'evictions 0');
my @numeric = grep { $_ ne 'version' && $_ ne 'libevent'
                     && $_ !~ /^rusage/ } @general;
my @notnum = grep { exists $st->{$_} && $st->{$_} !~ /\A\d+\z/ } @numeric;
is("@notnum", '', 'all counters are plain integers');

# --- counters move --------------------------------------------------
{
    $srv->cmd('stats reset');
    my @steps = (
        ["set b 0 0 1\r\nx\r\n", {cmd_set => 1, total_items => 1,
                                  curr_items => 1}],
        ["get b\r\n", {cmd_get => 1, get_hits => 1}],
        ["get nope\r\n", {cmd_get => 1, get_misses => 1}],
        ["get b nope b\r\n", {cmd_get => 3, get_hits => 2, get_misses => 1}],
        ["gets b\r\n", {cmd_get => 1, get_hits => 1}],
        ["delete b\r\n", {delete_hits => 1, curr_items => -1}],
        ["delete b\r\n", {delete_misses => 1}],
        ["incr n 1\r\n", {incr_misses => 1}],
        ["decr n 1\r\n", {decr_misses => 1}],
        ["set n 0 0 1\r\n5\r\n", {cmd_set => 1, total_items => 1,
                                   curr_items => 1}],
        ["incr n 1\r\n", {incr_hits => 1}],
        ["decr n 1\r\n", {decr_hits => 1}],
        ["touch n 0\r\n", {cmd_touch => 1, touch_hits => 1}],
        ["touch q 0\r\n", {cmd_touch => 1, touch_misses => 1}],
        ["gat 0 n\r\n", {cmd_touch => 1, touch_hits => 1}],
        ["gat 0 q\r\n", {cmd_touch => 1, touch_misses => 1}],
        ["cas n 0 0 1 999999\r\n2\r\n", {cmd_set => 1, cas_badval => 1}],
        ["cas q 0 0 1 1\r\n2\r\n", {cmd_set => 1, cas_misses => 1}],
        # a and n; the memory goes back in a crawler pass flush_all
        # starts, so curr_items drops a moment after the OK (poll)
        ["flush_all\r\n", {cmd_flush => 1, curr_items => -2}, 'async'],
        ["set big 0 0 2000000\r\n" . ('x' x 2000000) . "\r\n",
         {store_too_large => 1}],
    );
    my @watch = qw(cmd_get cmd_set cmd_flush cmd_touch get_hits get_misses
                   delete_misses delete_hits incr_misses incr_hits
                   decr_misses decr_hits cas_misses cas_hits cas_badval
                   touch_hits touch_misses curr_items total_items
                   store_too_large evictions);
    my $prev = $srv->stats;
    for my $step (@steps) {
        my ($req, $want, $async) = @$step;
        $srv->send($req);
        $srv->read_line;
        $srv->drain(undef, 0.05);
        my ($now, %got);
        wait_until(sub {
            $now = $srv->stats;
            my %delta = map { $_ => $now->{$_} - $prev->{$_} } @watch;
            %got = map { $_ => $delta{$_} } grep { $delta{$_} } @watch;
            return !$async
                || join(',', map { "$_=$got{$_}" } sort keys %got) eq
                   join(',', map { "$_=$want->{$_}" } sort keys %$want);
        }, 10);
        (my $show = substr($req, 0, 40)) =~ s/\r\n.*//s;
        is_deeply(\%got, $want, "counters after '$show'");
        $prev = $now;
    }
    # cas hit
    $srv->mem_set('c', 'x');
    my $cas = $srv->mem_cas('c');
    my $b = $srv->stats;
    $srv->store('cas', 'c', 'y', 0, 0, undef, $cas);
    my $a = $srv->stats;
    is($a->{cas_hits} - $b->{cas_hits}, 1, 'cas_hits +1');
    is($a->{cmd_set} - $b->{cmd_set}, 1, 'cmd_set counts the cas');
}

# bytes, bytes_read/bytes_written, connections
{
    my $b = $srv->stats;
    $srv->mem_set('bytes', 'y' x 1000);
    $srv->mem_get('bytes');
    my $a = $srv->stats;
    ok($a->{bytes} - $b->{bytes} > 1000, 'bytes grows with a stored item');
    ok($a->{bytes_read} - $b->{bytes_read} > 1000, 'bytes_read grows');
    ok($a->{bytes_written} - $b->{bytes_written} > 1000,
       'bytes_written grows');
    my $s = $srv->new_sock;
    $srv->cmd('version', $s);
    my $c = $srv->stats;
    is($c->{curr_connections}, $a->{curr_connections} + 1,
       'curr_connections +1 with a new client');
    is($c->{total_connections}, $a->{total_connections} + 1,
       'total_connections +1');
    close $s;
    ok(MemcTest::wait_until(sub {
        $srv->stats->{curr_connections} == $a->{curr_connections} }, 5,
        'curr_connections to drop'), 'curr_connections back after close');
}

# --- stats reset ------------------------------------------------------
is($srv->cmd('stats reset'), "RESET\r\n", 'stats reset: RESET');
{
    my $r = $srv->stats;
    is($r->{$_}, 0, "$_ 0 after reset") for qw(cmd_get cmd_set get_hits
        get_misses delete_hits total_items total_connections cas_hits);
    ok($r->{curr_items} > 0, 'curr_items not reset');
    ok($r->{bytes} > 0, 'bytes not reset');
}

# --- stats settings ---------------------------------------------------
{
    my $ss = $srv->stats('settings');
    check_format($ss->{_raw}, 'stats settings');
    my @names = qw(
        maxbytes maxconns tcpport udpport inter verbosity oldest evictions
        domain_socket umask shutdown_command growth_factor chunk_size
        num_threads num_threads_per_udp stat_key_prefix detail_enabled
        reqs_per_event cas_enabled tcp_backlog binding_protocol
        auth_enabled_sasl auth_enabled_ascii item_size_max maxconns_fast
        hashpower_init slab_reassign slab_automove slab_automove_ratio
        slab_automove_window slab_chunk_max lru_crawler lru_crawler_sleep
        lru_crawler_tocrawl tail_repair_time flush_enabled dump_enabled
        hash_algorithm lru_maintainer_thread lru_segmented hot_lru_pct
        warm_lru_pct hot_max_factor warm_max_factor temp_lru temporary_ttl
        idle_timeout watcher_logbuf_size worker_logbuf_size
        read_buf_mem_limit track_sizes inline_ascii_response
    );
    has_all($ss, \@names, 'stats settings');
    my %want = (maxbytes => 67108864, maxconns => 1024,
                tcpport => $srv->port, udpport => 0, inter => '127.0.0.1',
                verbosity => 0, evictions => 'on', growth_factor => '1.25',
                chunk_size => 48, num_threads => 4, stat_key_prefix => ':',
                detail_enabled => 'no', reqs_per_event => 20,
                cas_enabled => 'yes', tcp_backlog => 1024,
                binding_protocol => 'auto-negotiate',
                item_size_max => 1048576, lru_crawler => 'yes',
                lru_crawler_sleep => 100, lru_crawler_tocrawl => 0,
                flush_enabled => 'yes', idle_timeout => 0,
                hot_lru_pct => 20, warm_lru_pct => 40,
                hot_max_factor => '0.20', warm_max_factor => '2.00',
                slab_chunk_max => 524288,
                shutdown_command => 'no', domain_socket => 'NULL',
                umask => 700, hashpower_init => 0, temporary_ttl => 61,
                slab_reassign => 'yes',
                slab_automove => 1, maxconns_fast => 'yes');
    for my $k (sort keys %want) {
        is($ss->{$k}, $want{$k}, "settings $k = $want{$k}");
    }
    # these describe the LRU design: yes in memcached, no in paircached
    like($ss->{$_}, qr/\A(?:yes|no)\z/, "settings $_ is yes or no")
        for qw(lru_maintainer_thread lru_segmented);
}

# --- stats items ------------------------------------------------------
{
    $srv->mem_set('small', 'x');
    $srv->mem_set('larger', 'y' x 5000);
    my $si = $srv->stats('items');
    check_format($si->{_raw}, 'stats items');
    my @classes = sort { $a <=> $b } keys %{{ map { /^items:(\d+):/ ? ($1 => 1)
                                                  : () } keys %$si }};
    ok(@classes >= 2, 'items stats for at least two slab classes');
    my @per = qw(number number_hot number_warm number_cold age_hot age_warm
                 age mem_requested evicted evicted_nonzero evicted_time
                 outofmemory tailrepairs reclaimed expired_unfetched
                 evicted_unfetched evicted_active crawler_reclaimed
                 crawler_items_checked lrutail_reflocked moves_to_cold
                 moves_to_warm moves_within_lru direct_reclaims hits_to_hot
                 hits_to_warm hits_to_cold hits_to_temp);
    for my $c (@classes) {
        has_all($si, [map { "items:$c:$_" } @per], "stats items class $c");
    }
    my $total = 0;
    $total += $si->{"items:$_:number"} for @classes;
    is($total, $srv->stats->{curr_items}, 'sum of items:N:number = curr_items');
    my @bad = grep { !/\Aitems:\d+:\w+\z/ } grep { !/^_/ } keys %$si;
    is("@bad", '', 'all names are items:<class>:<field>');
}

# --- stats slabs ------------------------------------------------------
{
    my $sl = $srv->stats('slabs');
    check_format($sl->{_raw}, 'stats slabs');
    has_all($sl, [qw(active_slabs total_malloced)], 'stats slabs totals');
    my @classes = sort { $a <=> $b } keys %{{ map { /^(\d+):/ ? ($1 => 1)
                                                  : () } keys %$sl }};
    ok(@classes >= 2, 'slabs stats for at least two classes');
    is($sl->{active_slabs}, scalar @classes, 'active_slabs = classes listed');
    my @per = qw(chunk_size chunks_per_page total_pages total_chunks
                 used_chunks free_chunks free_chunks_end get_hits cmd_set
                 delete_hits incr_hits decr_hits cas_hits cas_badval
                 touch_hits);
    for my $c (@classes) {
        has_all($sl, [map { "$c:$_" } @per], "stats slabs class $c");
    }
    my $c1 = $classes[0];
    is($sl->{"$c1:chunk_size"}, 96, 'smallest class has 96-byte chunks');
    is($sl->{"$c1:chunks_per_page"}, 10922, '10922 chunks per 1 MB page');
    is($sl->{'1:used_chunks'} + $sl->{'1:free_chunks'}
       + $sl->{'1:free_chunks_end'}, $sl->{'1:total_chunks'},
       'used + free + free_end = total chunks');
    ok($sl->{total_malloced} >= 2 * 1048576, 'total_malloced counts pages');
}

# --- per-class delete_hits -------------------------------------------
# memcached counts a delete hit under the deleted item's slab class
# (before 2026-12-07 every hit went to class 0, so each class said 0).
{
    my $v = 'd' x 2000;
    $srv->mem_set("del$_", $v) for 1 .. 3;
    my $before = $srv->stats('slabs');
    is($srv->cmd_lines("delete del1"), "DELETED\r\n", 'text delete hit');
    is($srv->cmd_lines("md del2"), "HD\r\n", 'meta delete hit');
    my $sl = $srv->stats('slabs');
    my ($cls) = grep { ($sl->{"$_:used_chunks"} // 0) > 0 &&
                       $sl->{"$_:chunk_size"} >= 2000 &&
                       $sl->{"$_:chunk_size"} < 4000 }
                map { /^(\d+):chunk_size$/ ? $1 : () } keys %$sl;
    ok(defined $cls, 'the 2000-byte values have a class');
    is($sl->{"$cls:delete_hits"} - ($before->{"$cls:delete_hits"} // 0), 2,
       "delete_hits counted under class $cls");
}

# --- stats sizes --------------------------------------------------------
is($srv->cmd_lines('stats sizes'), "STAT sizes_status disabled\r\nEND\r\n",
   'stats sizes: disabled by default');

# --- stats conns --------------------------------------------------------
{
    my $s = $srv->new_sock;
    my $raw = $srv->cmd_lines('stats conns', $s);
    my $me = $s->sockport;
    my $port = $srv->port;
    like($raw, qr/^STAT (\d+):addr tcp:127\.0\.0\.1:$port\r\nSTAT \1:state conn_listening\r\n/m,
         'stats conns lists the listener');
    like($raw, qr/^STAT (\d+):addr tcp:127\.0\.0\.1:$me\r\nSTAT \1:listen_addr tcp:127\.0\.0\.1:$port\r\nSTAT \1:state conn_\w+\r\nSTAT \1:secs_since_last_cmd \d+\r\n/m,
         'stats conns lists this connection');
    like($raw, qr/END\r\n\z/, 'ends with END');
}

# --- stats detail -----------------------------------------------------
is($srv->cmd('stats detail on'), "OK\r\n", 'stats detail on: OK');
is($srv->stats('settings')->{detail_enabled}, 'yes', 'detail_enabled yes');
$srv->mem_set('user:1', 'x');
$srv->mem_get('user:1');
$srv->mem_get('user:2');
$srv->cmd('delete user:3');
$srv->mem_set('sess:1', 'x');
is($srv->cmd_lines('stats detail dump'),
   "PREFIX user get 2 hit 1 set 1 del 1\r\n"
   . "PREFIX sess get 0 hit 0 set 1 del 0\r\nEND\r\n",
   'stats detail dump: per-prefix counters');
is($srv->cmd('stats detail off'), "OK\r\n", 'stats detail off: OK');
$srv->mem_get('user:1');
like($srv->cmd_lines('stats detail dump'), qr/^PREFIX user get 2 hit 1 /m,
     'no counting while off');
is($srv->cmd('stats detail'), "CLIENT_ERROR usage: stats detail on|off|dump\r\n",
   'stats detail without arg: usage');
is($srv->cmd('stats detail foo'),
   "CLIENT_ERROR usage: stats detail on|off|dump\r\n", 'stats detail foo');
$srv->cmd('stats reset');
is($srv->cmd_lines('stats detail dump'), "END\r\n",
   'stats reset clears the prefix stats');

# --- which fields appear depends on options, as in memcached -----------
# memcached leaves out the crawler, maintainer, page mover and
# rejected_connections stats when those are off, and prints idle_kicks
# only with idle_timeout; its own t/stats.t counts 83 fields.
{
    my %gone = (
        '-o no_lru_crawler,no_lru_maintainer' =>
            [qw(lru_crawler_running lru_crawler_starts lru_maintainer_juggles
                evicted_active moves_to_cold moves_to_warm moves_within_lru
                direct_reclaims lru_bumps_dropped)],
        '-o no_slab_reassign,no_maxconns_fast' =>
            [qw(rejected_connections slab_reassign_rescues
                slab_reassign_chunk_rescues slab_reassign_evictions_nomem
                slab_reassign_inline_reclaim slab_reassign_busy_items
                slab_reassign_busy_deletes slab_reassign_running slabs_moved)],
    );
    for my $opts (sort keys %gone) {
        my $s2 = MemcTest->start(split / /, $opts);
        my %drop = map { $_ => 1 } @{ $gone{$opts} };
        my @want = grep { !$drop{$_} } @general;
        is("@{$s2->stats->{_order}}", "@want", "stats with $opts");
        $s2->stop;
    }
    my $s3 = MemcTest->start('-o', 'no_lru_crawler,no_lru_maintainer');
    is(scalar @{ $s3->stats->{_order} }, 83,
       '83 fields with no_lru_crawler,no_lru_maintainer, as memcached');
    $s3->stop;
    my $s4 = MemcTest->start('-o', 'idle_timeout=30');
    my @o4 = @{ $s4->stats->{_order} };
    my ($at) = grep { $o4[$_] eq 'idle_kicks' } 0 .. $#o4;
    is($o4[$at - 1] // '', 'auth_errors',
       'idle_timeout: idle_kicks printed after auth_errors');
    $s4->stop;
}

# --- stats extras: our counters memcached does not have -----------------
{
    my $ex = $srv->stats('extras');
    check_format($ex->{_raw}, 'stats extras');
    is("@{$ex->{_order}}", 'client_errors idle_kicks',
       'stats extras without -U');
    my $before = $ex->{client_errors};
    like($srv->cmd('bogus'), qr/\AERROR/, 'unknown command');
    is($srv->stats('extras')->{client_errors}, $before + 1,
       'client_errors counted in stats extras');
    ok(!exists $srv->stats->{client_errors},
       'client_errors not in plain stats');
}

# --- unknown stats -----------------------------------------------------
is($srv->cmd('stats foo'), "ERROR\r\n", 'unknown stats group: ERROR');
like($srv->cmd('version'), qr/\AVERSION /, 'server fine');

done_testing();
