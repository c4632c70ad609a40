#!/usr/bin/perl
# Options memcached 1.6.18 accepts: the server starts with each of them,
# and "stats settings" shows it under memcached's name where memcached
# shows it.  Options for features we lack either parse with no effect
# (and -h says so) or are refused with a clear message (-e, ext_path;
# -Z without a certificate, with memcached's message).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;

my $bin = memc_bin();
my @user = $> == 0 ? ('-u', 'root') : ();

# start(@args) -> the server's "stats settings", or undef if it did not
# start (the test named $what fails then).
sub settings_with {
    my ($what, @args) = @_;
    my $srv = eval { MemcTest->start(@args) };
    ok($srv, "starts with $what") or diag($@);
    return (undef, undef) unless $srv;
    return ($srv, $srv->stats('settings'));
}

# Each case: the arguments, then the stats settings it must show.
my @cases = (
    [['-o', 'lru_maintainer'], { lru_maintainer_thread => 'yes',
                                 lru_segmented => 'yes' }],
    [['-o', 'no_lru_maintainer'], { lru_maintainer_thread => 'no',
                                    lru_segmented => 'no' }],
    [['-o', 'no_modern'], { lru_maintainer_thread => 'no',
                            lru_segmented => 'no' }],
    [['-o', 'read_buf_mem_limit=32'], { read_buf_mem_limit => 33554432 }],
    [['-o', 'slab_automove_window=10'], { slab_automove_window => 10 }],
    [['-o', 'slab_automove_ratio=0.5'], { slab_automove_ratio => '0.50' }],
    [['-o', 'slab_automove_freeratio=0.02'],
     { slab_automove_freeratio => '0.020' }],
    [['-o', 'no_slab_automove'], { slab_automove => 0 }],
    [['-o', 'slab_automove'], { slab_automove => 1 }],
    [['-o', 'tail_repair_time=20'], { tail_repair_time => 20 }],
    [['-o', 'no_hashexpand'], {}],
    [['-o', 'hash_algorithm=murmur3'], { hash_algorithm => 'murmur3' }],
    [['-o', 'hash_algorithm=jenkins'], { hash_algorithm => 'jenkins' }],
    # xxh3 is not built in: the server says so and uses murmur3.
    [['-o', 'hash_algorithm=xxh3'], { hash_algorithm => 'murmur3' }],
    [['-o', 'temporary_ttl=30'], { temp_lru => 'yes',
                                   temporary_ttl => 30 }],
    [['-o', 'track_sizes'], { track_sizes => 'no' }],
    [['-o', 'slab_sizes=96-192-384-768'], {}],
    [['-o', 'no_chunked_items'], { slab_chunk_max => 1048576 }],
    [['-o', 'resp_obj_mem_limit=10'], {}],
    [['-o', 'drop_privileges'], {}],
    [['-o', 'no_drop_privileges'], {}],
    [['-o', 'inline_ascii_resp,no_inline_ascii_resp'], {}],
    [['-o', 'sock_cookie_id=7'], {}],
    [['-o', 'no_modern'], { slab_reassign => 'no', slab_automove => 0,
                            maxconns_fast => 'no', hash_algorithm => 'jenkins',
                            lru_crawler => 'no', slab_chunk_max => 1048576 }],
    [['-o', 'modern'], { slab_reassign => 'yes', hash_algorithm => 'murmur3' }],
    [['-o', 'ssl_chain_cert=/x/c.pem,ssl_key=/x/k.pem,ssl_verify_mode=2,'
          . 'ssl_keyformat=1,ssl_ciphers=HIGH,ssl_ca_cert=/x/ca.pem,'
          . 'ssl_wbuf_size=32,ssl_session_cache,ssl_kernel_tls,'
          . 'ssl_min_version=3'],
     { ssl_enabled => 'no', ssl_chain_cert => '/x/c.pem',
       ssl_key => '/x/k.pem', ssl_verify_mode => 3, ssl_keyformat => 1,
       ssl_ciphers => 'HIGH', ssl_ca_cert => '/x/ca.pem',
       ssl_wbuf_size => 32768, ssl_session_cache => 'yes',
       ssl_kernel_tls => 'yes', ssl_min_version => 'tlsv1.3' }],
    [['-o', 'ext_page_size=8,ext_threads=2'], {}],
    [['-L'], { slab_hugepages => 'yes' }],
    [['--enable-largepages'], { slab_hugepages => 'yes' }],
    [['-W'], {}],
    [['-N', '4'], { num_napi_ids => 4 }],
    [['--napi-ids=2'], { num_napi_ids => 2 }],
    # -U 0: no UDP port (t/udp.t tests UDP itself).
    [['-U', '0'], { udpport => 0 }],
);
for my $case (@cases) {
    my ($args, $want) = @$case;
    my $what = "@$args";
    my ($srv, $ss) = settings_with($what, @$args);
    next unless $srv;
    for my $k (sort keys %$want) {
        is($ss->{$k}, $want->{$k}, "$what: stats settings $k $want->{$k}");
    }
    $srv->stop;
}

# Defaults of the settings memcached shows and we added.
{
    my ($srv, $ss) = settings_with('no options');
    my %want = (slab_automove_ratio => '0.80', slab_automove_window => 30,
                slab_automove_freeratio => '0.010', tail_repair_time => 0,
                read_buf_mem_limit => 0, ssl_enabled => 'no',
                ssl_verify_mode => 0, ssl_keyformat => 1,
                ssl_wbuf_size => 16384, ssl_session_cache => 'no',
                ssl_min_version => 'tlsv1.2', num_napi_ids => 0,
                memory_file => '(null)');
    for my $k (sort keys %want) {
        is($ss->{$k}, $want{$k}, "default: stats settings $k $want{$k}");
    }
    $srv->stop;
}

# xxh3 says what it does instead.
{
    my $srv = MemcTest->start('-o', 'hash_algorithm=xxh3');
    like($srv->log_text, qr/xxh3 .*murmur3/, 'xxh3: says murmur3 is used');
    $srv->stop;
}

# -W refuses watch, as memcached does.
{
    my $srv = MemcTest->start('-W');
    is($srv->cmd('watch'), "CLIENT_ERROR watch commands not allowed\r\n",
       '-W: watch refused');
    $srv->stop;
}

# no_hashexpand: no expander thread (Linux names it mc-hashexp).
SKIP: {
    skip 'no /proc', 2 unless -d "/proc/$$/task";
    my $srv = MemcTest->start('-o', 'no_hashexpand');
    my @names = map { MemcTest::slurp($_) =~ s/\s+\z//r }
                glob('/proc/' . $srv->pid . '/task/*/comm');
    ok(!grep({ $_ eq 'mc-hashexp' } @names), 'no_hashexpand: no expander')
        or diag("threads: @names");
    ok(grep({ $_ eq 'mc-worker' } @names), 'no_hashexpand: workers run');
    $srv->stop;
}

# slab_sizes: the classes are the sizes given, then slab_chunk_max.
{
    my $srv = MemcTest->start('-o', 'slab_sizes=96-192-384-768');
    $srv->mem_set('k', 'v');
    $srv->mem_set('big', 'x' x 300);
    my $sl = $srv->stats('slabs');
    is($sl->{'1:chunk_size'}, 96, 'slab_sizes: class 1 is 96 bytes');
    is($sl->{'3:chunk_size'}, 384, 'slab_sizes: class 3 is 384 bytes');
    is($srv->mem_get('big'), 'x' x 300, 'slab_sizes: a 300-byte value');
    $srv->stop;
}

# -i prints the licence and exits 0.
{
    my ($st, $out) = run_cmd([$bin, '-i']);
    is($st, 0, '-i exits 0');
    like($out, qr/licen[cs]e/i, '-i prints the licence');
    my ($st2, $out2) = run_cmd([$bin, '--license']);
    is($out2, $out, '--license prints the same');
}

# Refused, with a message, without starting.
for my $case (
    [['-Z'], qr/You cannot enable SSL without a TCP port/, '-Z -p 0'],
    [['--enable-ssl', '-p', '1'],
     qr/Error loading the certificate chain: \(null\)/,
     '--enable-ssl without ssl_chain_cert'],
    [['-l', 'notls:127.0.0.1', '-p', '1'],
     qr/'notls' option is valid only when SSL is enabled/, 'notls without -Z'],
    [['-o', 'ext_path=/tmp/x:64m'], qr/extstore.*not supported/,
     '-o ext_path'],
    [['-o', 'slab_automove_window=2'], qr/slab_automove_window must be > 2/,
     'slab_automove_window=2'],
    [['-o', 'slab_automove_ratio=2'], qr/slab_automove_ratio must be/,
     'slab_automove_ratio=2'],
    [['-o', 'tail_repair_time=5'], qr/less than 10 seconds/,
     'tail_repair_time=5'],
    [['-o', 'hash_algorithm=md5'], qr/Unknown hash_algorithm/,
     'hash_algorithm=md5'],
    [['-o', 'slab_sizes=200-100'], qr/slab_sizes/, 'slab_sizes not rising'],
    [['-o', 'ssl_verify_mode=9'], qr/Invalid ssl_verify_mode/,
     'ssl_verify_mode=9'],
    [['-o', 'tail_repair_time=abc'], qr/tail_repair_time takes a number/,
     'tail_repair_time=abc'],
    [['-o', 'temporary_ttl'], qr/temporary_ttl takes a number/,
     'temporary_ttl without a value'],
    [['-o', 'sock_cookie_id=-1'], qr/sock_cookie_id takes a number/,
     'sock_cookie_id=-1'],
    [['-N', '0'], qr/NAPI IDs must be greater than 0/, '-N 0'],
    [['-U', 'x'], qr/Invalid UDP port/, '-U x'],
) {
    my ($args, $re, $what) = @$case;
    my ($st, $out) = run_cmd([$bin, @user, '-l', '127.0.0.1', '-p', '0',
                              @$args], timeout => 10);
    ok($st != 0 && $st != -1, "$what: refused (exit " . ($st >> 8) . ')');
    like($out, $re, "$what: message");
}

# -h lists what works, and nothing that would make memcached's own
# suite test a feature we lack.
{
    my ($st, $out) = run_cmd([$bin, '-h'], separate => 1);
    for my $opt ('-L, --enable-largepages', '-W, --disable-watch',
                 '-i, --license', '-N, --napi-ids', '- no_hashexpand:',
                 '- slab_automove_window:', '- slab_sizes:',
                 '- tail_repair_time:', '- read_buf_mem_limit:',
                 '- lru_maintainer:', '- no_lru_maintainer:',
                 '- temporary_ttl:',
                 '- track_sizes:',
                 '- ssl_', '-e, --memory-file') {
        like($out, qr/^\s*\Q$opt\E/m, "-h documents $opt");
    }
    like($out, qr/^-Z, --enable-ssl/m, '-h offers -Z');
    unlike($out, qr/ext_path|no_drop_privileges/,
           '-h does not offer extstore or seccomp');
}

done_testing();
