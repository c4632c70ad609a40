#!/usr/bin/perl
# memcached-tool (shipped with memcached): display, stats, settings,
# sizes, dump must work against the server.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;

my $tool = $ENV{MEMCACHED_TOOL}
    || (grep { -f } '/usr/share/memcached/scripts/memcached-tool',
                    '/usr/bin/memcached-tool')[0];
plan skip_all => 'memcached-tool not found' unless $tool && -f $tool;

my $srv = MemcTest->start();
my %data = (alpha => 'first value', beta => 'second', 'gamma:1' => '42',
            big => 'B' x 5000);
my %flags = (alpha => 0, beta => 7, 'gamma:1' => 65535, big => 1);
$srv->mem_set($_, $data{$_}, $flags{$_}, 0) for sort keys %data;
$srv->mem_set('withttl', 'tv', 3, 1000);
my $addr = '127.0.0.1:' . $srv->port;

sub tool {
    my (@args) = @_;
    my ($st, $out) = run_cmd([$^X, $tool, $addr, @args], timeout => 30);
    is($st, 0, "memcached-tool @args exits 0") or diag($out);
    $out =~ s/\r$//mg;    # the tool echoes the server's "\r" in stats
    return $out;
}

# display (the default)
{
    my $out = tool('display');
    like($out, qr/^\s+#\s+Item_Size\s+Max_age\s+Pages\s+Count\s+Full\?\s+Evicted\s+Evict_Time\s+OOM$/m,
         'display: header');
    my @rows = $out =~ /^\s+(\d+)\s+\S+\s+\d+s\s+\d+\s+(\d+)\s+(?:yes|no)\s+\d+\s+\d+\s+\d+$/mg;
    my %count = @rows;
    ok(keys %count >= 2, 'display: a row per slab class in use');
    my $total = 0;
    $total += $_ for values %count;
    is($total, 5, 'display: item counts add up to 5');
    is(tool(), $out, 'no command means display');
}

# stats
{
    my $out = tool('stats');
    like($out, qr/^#\Q$addr\E\s+Field\s+Value$/m, 'stats: header');
    for my $f (qw(curr_items total_items cmd_set cmd_get get_hits
                  limit_maxbytes curr_connections version uptime pid)) {
        ok($out =~ /^\s+\Q$f\E\s+\S+$/m, "stats: $f");
    }
    ok($out =~ /^\s+curr_items\s+5$/m, 'stats: curr_items 5');
}

# settings, sizes
{
    my $out = tool('settings');
    ok($out =~ /^\s+maxbytes\s+67108864$/m, 'settings: maxbytes');
    ok($out =~ /^\s+item_size_max\s+1048576$/m, 'settings: item_size_max');
    my $sz = tool('sizes');
    like($sz, qr/sizes_status\s+disabled/, 'sizes: sizes_status');
}

# dump: every key with flags, exptime and value, as "add" commands
{
    my $out = tool('dump');
    like($out, qr/\ADumping memcache contents/, 'dump: banner');
    for my $k (sort keys %data) {
        ok($out =~ /^add \Q$k\E $flags{$k} 0 @{[length $data{$k}]}\n\Q$data{$k}\E$/m,
           "dump: $k with flags, exptime 0, value");
    }
    my ($exp) = $out =~ /^add withttl 3 (\d+) 2\ntv$/m;
    my $now = $srv->stats->{time};
    ok(defined $exp && abs($exp - ($now + 1000)) <= 5,
       'dump: item with a ttl has its absolute expiry time');
}

like($srv->cmd('version'), qr/\AVERSION /, 'server fine');
is(scalar $srv->mem_get('big'), $data{big}, 'data untouched');

done_testing();
