#!/usr/bin/perl
# The PHP client objects: Memcached (php-memcached on libmemcached) in
# binary and text mode, and Memcache (pecl memcache) with
# memcache.protocol=ascii and =binary.  set/get/add/replace/delete,
# increment/decrement (with an initial value in binary), cas,
# append/prepend, multi-get, touch, flush, stats and version, with the
# return values and result codes the clients give against memcached.
# The checks live in t/php/memcached_api.php and t/php/memcache_api.php;
# each of their lines becomes one test here.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;
use MemcPHP;

MemcPHP::require_ext('memcached', 'memcache');

my $srv = MemcTest->start();
my $base = { 'display_errors' => 'stderr', 'error_reporting' => '-1',
             'log_errors' => '0', 'memcached.serializer' => 'php' };

# each script starts with a flush, so the four runs share one server
for my $mode (qw(binary text)) {
    my @r = MemcPHP::run($base, 'memcached_api.php', $srv->port, $mode);
    my $n = MemcPHP::relay_tap("Memcached $mode", @r);
    cmp_ok($n, '>=', 70, "Memcached $mode: enough checks ran");
}

for my $mode (qw(ascii binary)) {
    my @r = MemcPHP::run({ %$base, 'memcache.protocol' => $mode },
                         'memcache_api.php', $srv->port);
    my $n = MemcPHP::relay_tap("Memcache $mode", @r);
    cmp_ok($n, '>=', 60, "Memcache $mode: enough checks ran");
}

like($srv->cmd('version'), qr/\AVERSION /, 'server still answers');

done_testing();
