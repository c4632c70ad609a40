#!/usr/bin/perl
# lru_crawler: metadump format, crawl, enable/disable/sleep/tocrawl
# replies, expired items reclaimed by the crawler.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;

# The LRU maintainer would reclaim expired items before the crawler
# does (as in memcached): without it, what is reclaimed is the crawler's.
my $srv = MemcTest->start('-o', 'no_lru_maintainer');

$srv->mem_set('plain', 'x' x 100, 5, 100);
$srv->mem_set('forever', 'y', 0, 0);
$srv->mem_set("ctl\x01key", 'z');
$srv->mem_set('pct%key', 'z');
$srv->mem_set("utf\xc3\xbc", 'z');
$srv->mem_get('plain');
my %cas = map { $_ => $srv->mem_cas($_) } 'plain', 'forever';
$srv->mem_set('forever', 'y', 0, 0);    # fetch=no again after a new set
$cas{forever} = ($srv->metadump_line('forever') // '') =~ /cas=(\d+)/
    ? $1 : undef;

# an item read a moment ago may be missing from one dump while the LRU
# moves it: wait for a dump that lists all five
my $now = $srv->stats->{time};
my $raw = $srv->metadump(qr/\A(?:key=[^\n]*\n){5}END\r\n\z/);
like($raw, qr/\n?END\r\n\z/, 'metadump ends with END\r\n');
my @lines = split /(?<=\n)/, $raw;
pop @lines;
is(scalar @lines, 5, 'one line per item');
my @bad = grep {
    !/\Akey=\S+ exp=-?\d+ la=\d+ cas=\d+ fetch=(?:yes|no) cls=\d+ size=\d+\n\z/
} @lines;
is("@bad", '', 'every line: key= exp= la= cas= fetch= cls= size=, ending "\n"');
my @crlf = grep { /\r\n\z/ } @lines;
is(scalar @crlf, 0, 'item lines end in a bare "\n" (only END has "\r\n")');

my %by = map { /\Akey=(\S+) / ? ($1 => $_) : () } @lines;
is_deeply([sort keys %by],
          [sort 'plain', 'forever', 'ctl%01key', 'pct%25key', 'utf%C3%BC'],
          'keys are URI-encoded (%XX, upper case hex)');
{
    my ($exp, $la, $c, $fetch) =
        $by{plain} =~ /exp=(-?\d+) la=(\d+) cas=(\d+) fetch=(\w+)/;
    ok(abs($exp - ($now + 100)) <= 2, 'exp is absolute unix time (now+100)');
    ok(abs($la - $now) <= 2, 'la is the last access time');
    is($c, $cas{plain}, 'cas matches gets');
    is($fetch, 'yes', 'fetched item: fetch=yes');
}
like($by{forever}, qr/ exp=-1 /, 'no expiry: exp=-1');
like($by{forever}, qr/ fetch=no /, 'never fetched: fetch=no');
{
    my ($c1) = $by{forever} =~ /cls=(\d+)/;
    my ($c2) = $by{plain} =~ /cls=(\d+)/;
    ok($c2 > $c1, 'a larger item is in a larger slab class');
    my ($s1) = $by{forever} =~ /size=(\d+)/;
    my ($s2) = $by{plain} =~ /size=(\d+)/;
    # 99 more value bytes, 2 fewer key bytes; memcached also stores the
    # nonzero flags in the item, paircached keeps them in the header
    ok($s2 - $s1 >= 97, 'size grows with the value');
}

# metadump of one class
{
    my ($cls) = $by{forever} =~ /cls=(\d+)/;
    my $one = '';
    MemcTest::wait_until(sub {
        $one = $srv->cmd_lines("lru_crawler metadump $cls");
        $one =~ /^key=forever /m;
    }, 5);
    like($one, qr/^key=forever /m, "metadump $cls lists its item");
    unlike($one, qr/^key=plain /m, 'and not the items of other classes');
}
is($srv->cmd('lru_crawler metadump foo'), "BADCLASS invalid class id\r\n",
   'metadump foo: BADCLASS');

# crawl
is($srv->cmd('lru_crawler crawl all'), "OK\r\n", 'crawl all: OK');
ok(MemcTest::wait_until(sub { $srv->stats->{lru_crawler_running} == 0 }, 5,
                        'crawl to finish'), 'crawl finishes');
is($srv->cmd('lru_crawler crawl 1'), "OK\r\n", 'crawl 1: OK');
MemcTest::wait_until(sub { $srv->stats->{lru_crawler_running} == 0 }, 5);
is($srv->cmd('lru_crawler crawl 1,2,3'), "OK\r\n", 'crawl 1,2,3: OK');
MemcTest::wait_until(sub { $srv->stats->{lru_crawler_running} == 0 }, 5);
is($srv->cmd('lru_crawler crawl 0'), "BADCLASS invalid class id\r\n",
   'crawl 0: BADCLASS');
is($srv->cmd('lru_crawler crawl foo'), "BADCLASS invalid class id\r\n",
   'crawl foo: BADCLASS');
ok($srv->stats->{lru_crawler_starts} >= 3, 'lru_crawler_starts counted');

# settings
is($srv->cmd('lru_crawler sleep 50'), "OK\r\n", 'sleep 50: OK');
is($srv->stats('settings')->{lru_crawler_sleep}, 50, 'lru_crawler_sleep 50');
is($srv->cmd('lru_crawler sleep abc'),
   "CLIENT_ERROR bad command line format\r\n", 'sleep abc');
is($srv->cmd('lru_crawler sleep 2000000'),
   "CLIENT_ERROR sleep must be one second or less\r\n", 'sleep too long');
is($srv->cmd('lru_crawler tocrawl 10'), "OK\r\n", 'tocrawl 10: OK');
is($srv->stats('settings')->{lru_crawler_tocrawl}, 10,
   'lru_crawler_tocrawl 10');
is($srv->cmd('lru_crawler tocrawl abc'),
   "CLIENT_ERROR bad command line format\r\n", 'tocrawl abc');
is($srv->cmd('lru_crawler tocrawl 0'), "OK\r\n", 'tocrawl 0: OK');
is($srv->cmd('lru_crawler foo'), "ERROR\r\n", 'unknown subcommand: ERROR');
is($srv->cmd('lru_crawler'), "ERROR\r\n", 'lru_crawler alone: ERROR');

# a metadump behind replies still queued in the same read is refused,
# as memcached does (the dump would interleave with them)
$srv->send("mg nosuchkey v\r\nlru_crawler metadump all\r\n");
is($srv->read_line, "EN\r\n", 'pipelined mg answered');
is($srv->read_line,
   "ERROR cannot pipeline other commands before metadump\r\n",
   'metadump behind a queued reply: refused');
like($srv->cmd('lru_crawler metadump all'), qr/^(key=|END)/,
     'metadump on its own still works');
$srv->reset_sock;

# disable / enable
is($srv->cmd('lru_crawler disable'), "OK\r\n", 'disable: OK');
# memcached stops the crawler thread asynchronously: poll
ok(MemcTest::wait_until(sub {
    $srv->stats('settings')->{lru_crawler} eq 'no' }, 5, 'crawler to stop'),
   'settings lru_crawler no');
is($srv->cmd('lru_crawler crawl all'),
   "CLIENT_ERROR lru crawler disabled\r\n", 'crawl while disabled');
is($srv->cmd('lru_crawler metadump all'),
   "CLIENT_ERROR lru crawler disabled\r\n", 'metadump while disabled');
is($srv->cmd('lru_crawler enable'), "OK\r\n", 'enable: OK');
ok(MemcTest::wait_until(sub {
    $srv->stats('settings')->{lru_crawler} eq 'yes' }, 5, 'crawler to start'),
   'settings lru_crawler yes');
is($srv->cmd('lru_crawler sleep 0'), "OK\r\n", 'sleep 0: OK');

# expired items are reclaimed by the crawler
{
    my $before = $srv->stats;
    $srv->mem_set("exp$_", 'x', 0, 1) for 1 .. 50;
    is($srv->stats->{curr_items}, $before->{curr_items} + 50,
       '50 short-lived items stored');
    ok(MemcTest::wait_until(sub {
        $srv->cmd('lru_crawler crawl all');
        $srv->stats->{crawler_reclaimed} >= $before->{crawler_reclaimed} + 50
    }, 8, 'crawler to reclaim 50 items'), 'crawler reclaimed the 50 items');
    my $after = $srv->stats;
    is($after->{curr_items}, $before->{curr_items},
       'curr_items back to what it was');
    ok($after->{crawler_items_checked} >= 50, 'crawler_items_checked counted');
    unlike($srv->cmd_lines('lru_crawler metadump all'), qr/^key=exp/m,
           'reclaimed items not in metadump');
    is(scalar $srv->mem_get('forever'), 'y', 'live items untouched');
}

done_testing();
