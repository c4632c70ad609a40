#!/usr/bin/perl
# slab_automove: with mode 2 (look every second), a class that evicts
# gets a page from a class holding two pages' worth of free chunks.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;

my $srv = MemcTest->start('-m', '8', '-o', 'slab_automove=2');
is($srv->stats('settings')->{slab_automove}, 2, 'slab_automove 2');

# Fill memory with small items, then free them all: their pages stay
# with the small class, empty.
my $small = join '', map { "set s$_ 0 0 10 noreply\r\n0123456789\r\n" }
            1 .. 60000;
$srv->send($small);
like($srv->cmd('version'), qr/\AVERSION /, 'small items stored');
my $pages0 = $srv->stats('slabs')->{'1:total_pages'};
ok($pages0 >= 3, "class 1 holds $pages0 pages");
is($srv->cmd('flush_all'), "OK\r\n", 'flush_all frees their chunks');
MemcTest::wait_until(sub { $srv->stats->{curr_items} == 0 }, 10,
                     'crawler to reclaim');

# Now larger items evict in their own class until pages move over.
my $V = 'v' x 2000;
my $moved = MemcTest::wait_until(sub {
    my $batch = join '', map { "set b$_ 0 0 2000 noreply\r\n$V\r\n" }
                1 .. 1000;
    $srv->send($batch);
    $srv->cmd('version');
    $srv->stats->{slabs_moved} >= 1;
}, 20, 'a page to move');
ok($moved, 'slabs_moved grew without any slabs reassign command');
ok($srv->stats('slabs')->{'1:total_pages'} < $pages0,
   'the small class gave pages away');
is($srv->mem_set('after', 'x'), "STORED\r\n", 'stores still work');

{
    my $off = MemcTest->start('-m', '8', '-o', 'slab_automove=0');
    $off->send($small);
    $off->cmd('version');
    $off->cmd('flush_all');
    for (1 .. 3) {
        $off->send(join '', map { "set b$_ 0 0 2000 noreply\r\n$V\r\n" }
                   1 .. 1000);
        $off->cmd('version');
    }
    sleep 2;    # mode 0 would not move anything however long we wait
    is($off->stats->{slabs_moved}, 0, 'slab_automove=0: nothing moves');
    $off->stop;
}

done_testing();
