#!/usr/bin/perl
# Command line: -h, -V, bad options, and options reflected in
# "stats settings"; idle_timeout closes an idle connection.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;

my $bin = memc_bin();
my @user = $> == 0 ? ('-u', 'root') : ();

# --- -h, -V ------------------------------------------------------------
{
    my ($st, $out, $err) = run_cmd([$bin, '-h'], separate => 1);
    is($st, 0, '-h exits 0');
    like($out, qr/\Amemcached \d+\.\d+\.\d+\S*\n/, '-h starts with the version');
    for my $opt ('-p, --port=<num>', '-U, --udp-port=<num>',
                 '-l, --listen=<addr>', '-d, --daemon', '-u, --user=<user>',
                 '-m, --memory-limit=<num>', '-M, --disable-evictions',
                 '-c, --conn-limit=<num>', '-v, --verbose', '-h, --help',
                 '-V, --version', '-P, --pidfile=<file>',
                 '-f, --slab-growth-factor=<num>', '-n, --slab-min-size=<bytes>',
                 '-t, --threads=<num>', '-R, --max-reqs-per-event',
                 '-C, --disable-cas', '-b, --listen-backlog=<num>',
                 '-B, --protocol=<name>', '-I, --max-item-size=<num>',
                 '-F, --disable-flush-all', '-A, --enable-shutdown',
                 '-o, --extended', '- idle_timeout:', '- hashpower:') {
        like($out, qr/^\s*-?\Q$opt\E/m, "-h documents $opt");
    }
    my ($st2, $out2) = run_cmd([$bin, '--help']);
    is($st2, 0, '--help exits 0');
    is($out2, $out, '--help prints the same text');
}
my $version;
{
    my ($st, $out, $err) = run_cmd([$bin, '-V'], separate => 1);
    is($st, 0, '-V exits 0');
    like($out, qr/\Amemcached (\d+\.\d+\.\d+\S*)\n\z/,
         '-V prints "memcached x.y.z"');
    ($version) = $out =~ /\Amemcached (\S+)/;
    my ($st2, $out2) = run_cmd([$bin, '--version']);
    is($out2, $out, '--version prints the same');
}

# --- bad options fail with a message, without starting ---------------
for my $case (
    [['-J'], qr/invalid option|Illegal argument/, 'unknown short option'],
    [['--bogus'], qr/unrecognized option|Illegal argument/,
     'unknown long option'],
    [['-t', '0'], qr/Number of threads must be greater than 0/, '-t 0'],
    [['-c', '0'], qr/Maximum connections must be greater than 0/, '-c 0'],
    [['-f', '1'], qr/Factor must be greater than 1/, '-f 1'],
    [['-n', '0'], qr/Chunk size must be greater than 0/, '-n 0'],
    [['-R', '0'], qr/Number of requests per event must be greater than 0/,
     '-R 0'],
    [['-I', '512'], qr/Item max size cannot be less than 1024 bytes/,
     '-I 512'],
    [['-m', '1'], qr/Cannot set item size limit higher than 1\/2 of memory max/,
     '-m 1 (smaller than 2 x -I)'],
    [['-p', '99999'], qr/Invalid port number 99999/, '-p 99999'],
    [['-B', 'foo'], qr/Invalid value for binding protocol: foo/, '-B foo'],
    [['-o', 'bogus'], qr/Illegal suboption "bogus"/, '-o bogus'],
    [['-o', 'hashpower=99'], qr/Initial hashtable multiplier of 99 is too high/,
     '-o hashpower=99'],
) {
    my ($args, $re, $what) = @$case;
    my ($st, $out) = run_cmd([$bin, @user, '-U', '0', '-l', '127.0.0.1',
                              '-p', '0', @$args], timeout => 10);
    ok($st != 0 && $st != -1, "$what: non-zero exit ("
       . ($st >> 8) . ')');
    like($out, $re, "$what: message");
}

# --- options reflected in stats settings / stats ------------------------
{
    my $srv = MemcTest->start(qw(-m 128 -c 64 -t 2 -I 2m -C -f 1.5 -n 64
                                 -R 5 -B ascii -b 512 -F -X -M -A -vv -D ;),
                              '-o', 'idle_timeout=5,hashpower=20,'
                              . 'lru_crawler_sleep=200,lru_crawler_tocrawl=7,'
                              . 'hot_lru_pct=10,warm_lru_pct=30,'
                              . 'slab_automove=0,hash_algorithm=jenkins');
    my $ss = $srv->stats('settings');
    my %want = (
        maxbytes => 134217728, maxconns => 64, num_threads => 2,
        item_size_max => 2097152, cas_enabled => 'no',
        growth_factor => '1.50', chunk_size => 64, reqs_per_event => 5,
        binding_protocol => 'ascii', tcp_backlog => 512,
        flush_enabled => 'no', dump_enabled => 'no', evictions => 'off',
        shutdown_command => 'yes', verbosity => 2, stat_key_prefix => ';',
        detail_enabled => 'yes', idle_timeout => 5, hashpower_init => 20,
        lru_crawler_sleep => 200, lru_crawler_tocrawl => 7,
        hot_lru_pct => 10, warm_lru_pct => 30, slab_automove => 0,
        hash_algorithm => 'jenkins', tcpport => $srv->port, udpport => 0,
        inter => '127.0.0.1',
    );
    for my $k (sort keys %want) {
        is($ss->{$k}, $want{$k}, "stats settings $k $want{$k}");
    }
    my $st = $srv->stats;
    is($st->{limit_maxbytes}, 134217728, '-m 128: limit_maxbytes 134217728');
    is($st->{threads}, 2, '-t 2: threads 2');
    is($st->{max_connections}, 64, '-c 64: max_connections 64');
    is($st->{hash_power_level}, 20, '-o hashpower=20: hash_power_level 20');
    like($srv->cmd('version'), qr/\AVERSION \Q$version\E\r\n\z/,
         'version command matches -V');
    # -C: gets shows cas 0
    $srv->mem_set('k', 'v');
    is($srv->get_raw('gets k'), "VALUE k 0 1 0\r\nv\r\nEND\r\n", '-C: cas 0');
    # -F
    is($srv->cmd('flush_all'), "CLIENT_ERROR flush_all not allowed\r\n",
       '-F: flush_all refused');
    # -X
    is($srv->cmd('lru_crawler metadump all'),
       "ERROR metadump not allowed\r\n", '-X: metadump refused');
    is($srv->cmd('stats cachedump 1 1'), "CLIENT_ERROR stats cachedump not allowed\r\n",
       '-X: cachedump refused');
    $srv->stop;
}

# long options
{
    my $srv = MemcTest->start('--memory-limit=100', '--threads=3',
                              '--max-item-size=4m', '--conn-limit=100',
                              '--disable-cas');
    my $ss = $srv->stats('settings');
    is($ss->{maxbytes}, 100 * 1048576, '--memory-limit=100');
    is($ss->{num_threads}, 3, '--threads=3');
    is($ss->{item_size_max}, 4 * 1048576, '--max-item-size=4m');
    is($ss->{maxconns}, 100, '--conn-limit=100');
    is($ss->{cas_enabled}, 'no', '--disable-cas');
    $srv->stop;
}

# -I with k and m suffixes
{
    my $srv = MemcTest->start('-I', '512k');
    is($srv->stats('settings')->{item_size_max}, 524288, '-I 512k: 524288');
    $srv->stop;
    $srv = MemcTest->start('-I', '3m');
    is($srv->stats('settings')->{item_size_max}, 3145728, '-I 3m: 3145728');
    $srv->stop;
}

# --- idle_timeout closes an idle connection, not an active one --------
{
    my $srv = MemcTest->start('-o', 'idle_timeout=2');
    is($srv->stats('settings')->{idle_timeout}, 2, 'idle_timeout 2');
    my $idle = $srv->new_sock;
    my $busy = $srv->new_sock;
    is($srv->cmd('version', $idle), $srv->cmd('version', $busy),
       'two connections up');
    my $t0 = time;
    my $closed = MemcTest::wait_until(sub {
        my $v = $srv->cmd('version', $busy);    # keep this one active
        return 0 unless defined $v;
        return $srv->closed_within($idle, 0.2);
    }, 10, 'idle connection to be closed');
    ok($closed, 'idle connection closed by the server');
    like($srv->cmd('version', $busy) // '', qr/\AVERSION /,
         'active connection still open');
    ok($srv->stats(undef, $busy)->{idle_kicks} >= 1, 'idle_kicks counted');
    $srv->stop;
}

# Threads carry memcached's names, so that top -H, ps -L and perf show
# which is which (Linux: /proc/PID/task/TID/comm).
SKIP: {
    skip 'no /proc', 2 unless -d "/proc/$$/task";
    my $srv = MemcTest->start('-t', '3');
    my @names = map { MemcTest::slurp($_) =~ s/\s+\z//r }
                glob('/proc/' . $srv->pid . '/task/*/comm');
    my %n;
    $n{$_}++ for @names;
    is($n{'mc-worker'} // 0, 3, 'three threads named mc-worker')
        or diag("threads: @names");
    ok($n{'mc-hashexp'} && $n{'mc-lrucrawler'},
       'the expander and the crawler are named') or diag("threads: @names");
    $srv->stop;
}

done_testing();
