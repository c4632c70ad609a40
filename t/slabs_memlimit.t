#!/usr/bin/perl
# cache_memlimit lowered at run time: pages in the global page pool go
# back to the system while total_malloced is over the new limit, both
# when the limit changes and as slabs reassign / slab_automove add pages
# to the pool (memcached's dyn-maxbytes.t expects the automove case).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;

my $MB = 1024 * 1024;
my $V = 'B' x 66560;            # ~15 per 1 MB page, one class

sub fill {
    my ($srv, $from, $to) = @_;
    $srv->send(join '', map { "set key$_ 0 0 66560 noreply\r\n$V\r\n" }
               $from .. $to);
    like($srv->cmd('version'), qr/\AVERSION /, "key$from..key$to stored");
}

sub malloced { $_[0]->stats('slabs')->{total_malloced} }

# Resident memory of the server, from /proc (bytes); undef elsewhere.
sub rss {
    my ($srv) = @_;
    open(my $fh, '<', '/proc/' . $srv->pid . '/status') or return undef;
    while (<$fh>) {
        return $1 * 1024 if /^VmRSS:\s+(\d+) kB/;
    }
    return undef;
}

sub the_class {
    my ($srv) = @_;
    my $sl = $srv->stats('slabs');
    my ($cls) = map { /^(\d+):total_pages$/ ? $1 : () } keys %$sl;
    return ($cls, $sl->{"$cls:total_pages"});
}

# 1. Pages put in the pool by hand, then the limit lowered: they go back
# at once, down to the new limit and no further.
{
    my $srv = MemcTest->start('-m', '16', '-o', 'slab_automove=0');
    fill($srv, 0, 149);
    my ($cls, $pages) = the_class($srv);
    my $before = malloced($srv);
    ok($before > 12 * $MB, "total_malloced $before after the fill");
    $srv->send(join '', map { "delete key$_ noreply\r\n" } 0 .. 149);
    $srv->cmd('version');
    for my $n (1 .. 8) {
        is($srv->cmd("slabs reassign $cls 0"), "OK\r\n", "page $n to pool");
        MemcTest::wait_until(sub {
            $srv->stats->{slab_reassign_running} == 0 }, 10, 'the move');
    }
    is($srv->stats->{slab_global_page_pool}, 8, '8 pages in the pool');
    is(malloced($srv), $before, 'under the limit the pool stays counted');
    my $rss0 = rss($srv);
    is($srv->cmd('cache_memlimit 8'), "OK\r\n", 'cache_memlimit 8');
    is(malloced($srv), 8 * $MB, 'total_malloced down to the new limit');
    my $left = 8 - ($before - 8 * $MB) / $MB;
    is($srv->stats->{slab_global_page_pool}, $left,
       "$left pages stay in the pool (within the limit)");
    SKIP: {
        skip 'no /proc', 1 unless defined $rss0;
        my $drop = $rss0 - rss($srv);
        ok($drop >= 3 * $MB, "resident memory fell by $drop bytes");
    }
    # the memory comes back when the limit allows it again
    is($srv->cmd('cache_memlimit 32'), "OK\r\n", 'cache_memlimit 32');
    fill($srv, 200, 599);
    ok(malloced($srv) > 16 * $MB,
       'total_malloced grows again under the higher limit');
    my @missing = grep { !defined $srv->mem_get("key$_") } 560 .. 599;
    is(scalar @missing, 0, 'the newest items read back whole');
    $srv->stop;
}

# 2. memcached's case: the limit lowered from 16 to 8 MB, every key
# deleted; slab_automove empties the pages into the pool and the pool
# gives back what is over the limit within a few seconds.
{
    my $srv = MemcTest->start('-m', '16', '-o',
                              'slab_automove=1,slab_automove_window=3');
    fill($srv, 0, 149);
    my $before = malloced($srv);
    is($srv->cmd('cache_memlimit 8'), "OK\r\n", 'cache_memlimit 8');
    $srv->send(join '', map { "delete key$_ noreply\r\n" } 0 .. 149);
    $srv->cmd('version');
    ok(MemcTest::wait_until(sub { malloced($srv) <= 8 * $MB }, 30,
                            'total_malloced to fall'),
       'slab_automove gave pages back down to the limit');
    is(malloced($srv), 8 * $MB, 'exactly the limit, as memcached');
    ok($srv->stats->{slabs_moved} >= int(($before - 8 * $MB) / $MB),
       'counted in slabs_moved');
    is($srv->mem_set('after', 'x'), "STORED\r\n", 'stores still work');
    $srv->stop;
}

done_testing();
