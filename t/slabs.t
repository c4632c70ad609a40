#!/usr/bin/perl
# slabs reassign / slabs automove replies, a real page move, and
# stats cachedump (used by phpMemcachedAdmin).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;

my $srv = MemcTest->start('-o', 'slab_automove=0');
is($srv->stats('settings')->{slab_automove}, 0, '-o slab_automove=0');

$srv->mem_set('small', 'x');
is($srv->cmd('slabs reassign 1 2'),
   "NOSPARE source class has no spare pages\r\n",
   'reassign from a class with one page: NOSPARE');
is($srv->cmd('slabs reassign 1 1'), "SAME src and dst class are identical\r\n",
   'reassign to itself: SAME');
is($srv->cmd('slabs reassign 99 1'),
   "BADCLASS invalid src or dst class id\r\n", 'bad source: BADCLASS');
is($srv->cmd('slabs reassign 1 99'),
   "BADCLASS invalid src or dst class id\r\n", 'bad destination: BADCLASS');
is($srv->cmd('slabs reassign abc 1'),
   "CLIENT_ERROR bad command line format\r\n", 'non-numeric class');
is($srv->cmd('slabs reassign 1'), "ERROR\r\n", 'missing destination: ERROR');
is($srv->cmd('slabs foo'), "ERROR\r\n", 'unknown slabs subcommand: ERROR');
is($srv->cmd('slabs'), "ERROR\r\n", 'slabs alone: ERROR');

# a real move: fill class 1 over three pages, free them, move one
{
    my $batch = join '', map { "set k$_ 0 0 10 noreply\r\n0123456789\r\n" }
                1 .. 30000;
    $srv->send($batch);
    like($srv->cmd('version'), qr/\AVERSION /, '30000 small items stored');
    my $sl = $srv->stats('slabs');
    my $pages = $sl->{'1:total_pages'};
    ok($pages >= 3, "class 1 has $pages pages");
    is($srv->cmd('flush_all'), "OK\r\n", 'flush them');
    is($srv->cmd('slabs reassign 1 5'), "OK\r\n", 'reassign 1 -> 5: OK');
    ok(MemcTest::wait_until(sub { $srv->stats->{slabs_moved} >= 1 }, 10,
                            'page move'), 'slabs_moved 1');
    MemcTest::wait_until(sub { $srv->stats->{slab_reassign_running} == 0 },
                         10, 'reassign to finish');
    my $after = $srv->stats('slabs');
    is($after->{'1:total_pages'}, $pages - 1, 'class 1 lost a page');
    is($after->{'5:total_pages'}, 1, 'class 5 got it');
    is($srv->mem_set('again', 'x'), "STORED\r\n", 'stores still work');
}

# a page to the global pool (dst 0): live items in it are copied into
# free chunks of their class (rescues), the page is reused by the next
# class that grows, without new memory
{
    my $V = 'r' x 900;          # one class, ~1000 per page
    $srv->send(join '', map { "set r$_ 0 0 900 noreply\r\n$V\r\n" }
               1 .. 3000);
    $srv->cmd('version');
    my $it = $srv->stats('items');
    my ($cls) = map { /^items:(\d+):number$/ ? $1 : () }
                sort { $it->{$b} <=> $it->{$a} }
                grep { /^items:\d+:number$/ } keys %$it;
    my $sl = $srv->stats('slabs');
    my $pages = $sl->{"$cls:total_pages"};
    ok($pages >= 3, "class $cls holds $pages pages");
    # free most of each page so the first page's items have room elsewhere
    $srv->send(join '', map { "delete r$_ noreply\r\n" }
               grep { $_ % 3 } 1 .. 3000);
    $srv->cmd('version');
    my $malloced = $sl->{total_malloced};
    my $moved0 = $srv->stats->{slabs_moved};
    is($srv->cmd("slabs reassign $cls 0"), "OK\r\n", "reassign $cls -> 0");
    ok(MemcTest::wait_until(sub {
        $srv->stats->{slab_global_page_pool} == 1 }, 10, 'pool page'),
       'slab_global_page_pool 1');
    my $st = $srv->stats;
    is($st->{slabs_moved}, $moved0 + 1, 'counted in slabs_moved');
    ok($st->{slab_reassign_rescues} > 0,
       "live items rescued ($st->{slab_reassign_rescues})");
    is($st->{slab_reassign_evictions_nomem}, 0, 'none evicted');
    my @gone = grep { !defined $srv->mem_get("r$_") }
               grep { $_ % 3 == 0 } 1 .. 3000;
    is(scalar @gone, 0, 'every remaining item still readable');
    is($srv->stats('slabs')->{"$cls:total_pages"}, $pages - 1,
       'the class has one page less');
    is($srv->stats('slabs')->{total_malloced}, $malloced,
       'total_malloced still counts the pooled page');
    # a class that grows takes the pooled page first
    my $W = 'w' x 5000;
    $srv->send(join '', map { "set w$_ 0 0 5000 noreply\r\n$W\r\n" }
               1 .. 250);
    $srv->cmd('version');
    is($srv->stats->{slab_global_page_pool}, 0, 'pool drained');
    ok($srv->stats('slabs')->{total_malloced} >= $malloced,
       'total_malloced never shrinks');
}

# automove
for my $mode (0, 1, 2) {
    is($srv->cmd("slabs automove $mode"), "OK\r\n", "automove $mode: OK");
    is($srv->stats('settings')->{slab_automove}, $mode,
       "settings slab_automove $mode");
}
is($srv->cmd('slabs automove 3'), "ERROR\r\n", 'automove 3: ERROR');
is($srv->cmd('slabs automove abc'), "CLIENT_ERROR bad command line format\r\n",
   'automove abc');
is($srv->cmd('slabs automove'), "ERROR\r\n", 'automove without mode');
$srv->cmd('slabs automove 0');

# stats cachedump <class> <limit>
{
    $srv->cmd('flush_all');
    $srv->mem_set('cd1', 'x', 0, 0);
    $srv->mem_set('cd2', 'abc', 0, 100);
    my $now = $srv->stats->{time};
    # memcached dumps one LRU segment only, so a fresh item may take a
    # moment (the LRU maintainer) before it is listed: poll
    my $raw = '';
    MemcTest::wait_until(sub {
        $raw = $srv->cmd_lines('stats cachedump 1 10');
        $raw =~ /^ITEM cd1 /m && $raw =~ /^ITEM cd2 /m;
    }, 10, 'cachedump to list cd1 and cd2');
    like($raw, qr/\A(?:ITEM \S+ \[\d+ b; \d+ s\]\r\n)+END\r\n\z/,
         'cachedump: "ITEM key [size b; exptime s]" lines, END');
    like($raw, qr/^ITEM cd1 \[1 b; 0 s\]\r\n/m,
         'item without expiry: value size, exptime 0');
    my ($e) = $raw =~ /^ITEM cd2 \[3 b; (\d+) s\]\r\n/m;
    ok(defined $e && abs($e - ($now + 100)) <= 2,
       'item with ttl: absolute exptime');
    my $one = $srv->cmd_lines('stats cachedump 1 1');
    my $n = () = $one =~ /^ITEM /mg;
    is($n, 1, 'limit 1: one item');
    is($srv->cmd_lines('stats cachedump 2 10'), "END\r\n",
       'empty class: END');
    is($srv->cmd('stats cachedump 99 10'), "CLIENT_ERROR Illegal slab id\r\n",
       'bad class: Illegal slab id');
    is($srv->cmd('stats cachedump 1'), "CLIENT_ERROR bad command line\r\n",
       'missing limit');
}

# reassign disabled
{
    my $nr = MemcTest->start('-o', 'no_slab_reassign');
    is($nr->stats('settings')->{slab_reassign}, 'no', 'slab_reassign no');
    is($nr->cmd('slabs reassign 1 2'),
       "CLIENT_ERROR slab reassignment disabled\r\n",
       'no_slab_reassign: reassign refused');
    $nr->stop;
}

done_testing();
