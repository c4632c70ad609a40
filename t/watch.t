#!/usr/bin/perl
# watch: a connection that asks for log streams gets "OK", then one
# line per event from other connections, formatted as memcached's:
# fetches (a store's lookup too), mutations, evictions, connection
# events; a watcher that does not read loses lines, bounded, and is told.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;

my $srv = MemcTest->start();

my $w = $srv->new_sock;
is($srv->cmd('watch fetchers mutations', $w), "OK\r\n",
   'watch fetchers mutations: OK');
ok(MemcTest::wait_until(sub { $srv->stats->{log_watchers} >= 1 }, 5,
                        'watcher to register'), 'log_watchers counts it');

$srv->mem_set('wkey', 'hello');
$srv->mem_get('wkey');
$srv->mem_get('nokey');

# collect log lines until we have seen what we wait for
my $log = '';
my $line_re = qr/\Ats=\d+\.\d+ gid=\d+ type=\w+ .*\n\z/;
my $want_store = qr/^ts=\d+\.\d+ gid=\d+ type=item_store key=wkey status=stored cmd=set ttl=0 clsid=\d+ cfd=\d+ size=5$/m;
my $want_hit = qr/^ts=\d+\.\d+ gid=\d+ type=item_get key=wkey status=found clsid=\d+ cfd=\d+ size=5$/m;
my $want_miss = qr/^ts=\d+\.\d+ gid=\d+ type=item_get key=nokey status=not_found clsid=\d+ cfd=\d+ size=0$/m;
MemcTest::wait_until(sub {
    while (defined(my $l = $srv->read_line($w, 0.05))) { $log .= $l }
    $log =~ $want_store && $log =~ $want_hit && $log =~ $want_miss;
}, 5, 'watch lines');
like($log, $want_store, 'set logged as item_store ... key=wkey status=stored');
like($log, $want_hit, 'get hit logged as item_get ... status=found');
like($log, $want_miss, 'get miss logged as item_get ... status=not_found');
my @bad = grep { $_ !~ $line_re } split /(?<=\n)/, $log;
is("@bad", '', 'every log line: ts=<sec.usec> gid=<n> type=<type> ...\n');
unlike($log, qr/\r\n/, 'log lines end in a bare "\n"');

# gids increase
{
    my @gids = $log =~ /gid=(\d+)/g;
    my @sorted = sort { $a <=> $b } @gids;
    is_deeply(\@gids, \@sorted, 'gid increases line by line');
}

# a watcher only sees what it asked for: mutations only
{
    my $m = $srv->new_sock;
    is($srv->cmd('watch mutations', $m), "OK\r\n", 'watch mutations: OK');
    MemcTest::wait_until(sub { $srv->stats->{log_watchers} >= 2 }, 5);
    $srv->mem_get('wkey');
    $srv->mem_set('mkey', 'abc', 0, 100);
    my $got = '';
    MemcTest::wait_until(sub {
        while (defined(my $l = $srv->read_line($m, 0.05))) { $got .= $l }
        $got =~ /key=mkey status=stored/;
    }, 5, 'mutation line');
    like($got, qr/type=item_store key=mkey status=stored cmd=set ttl=100 /,
         'mutation logged with its ttl');
    unlike($got, qr/type=item_get/, 'no fetch lines on a mutations watcher');
}

# other log types are accepted
for my $arg ('evictions', 'rawcmds', 'sysevents', 'connevents') {
    my $s = $srv->new_sock;
    is($srv->cmd("watch $arg", $s), "OK\r\n", "watch $arg: OK");
}
{
    my $s = $srv->new_sock;
    is($srv->cmd('watch foo', $s), "ERROR\r\n", 'watch foo: ERROR');
    like($srv->cmd('version', $s), qr/\AVERSION /,
         'connection still usable after the refused watch');
}

# a plain "watch" defaults to fetchers... and answers OK
{
    my $s = $srv->new_sock;
    is($srv->cmd('watch', $s), "OK\r\n", 'watch with no args: OK');
}

# closing the watcher unregisters it
{
    my $before = $srv->stats->{log_watchers};
    close $w;
    $srv->mem_get('wkey');    # the server notices on its next write
    ok(MemcTest::wait_until(sub {
        $srv->mem_get('wkey');
        $srv->stats->{log_watchers} < $before }, 5, 'watcher to go away'),
       'closed watcher no longer counted');
}

like($srv->cmd('version'), qr/\AVERSION /, 'server fine');

# read lines from $s until $re matches the text so far (5 s)
sub collect {
    my ($s, $re, $what) = @_;
    my $got = '';
    MemcTest::wait_until(sub {
        while (defined(my $l = $srv->read_line($s, 0.05))) { $got .= $l }
        $got =~ $re;
    }, 5, $what);
    return $got;
}

# a store looks the key up first, and says so to fetchers, as memcached
{
    my $s = $srv->new_sock;
    is($srv->cmd('watch fetchers mutations', $s), "OK\r\n", 'watch f+m');
    MemcTest::wait_until(sub { $srv->stats->{log_watchers} >= 2 }, 5);
    my $c = $srv->new_sock;
    $srv->mem_set('lookup1', 'v', 0, 0, $c);
    my $got = collect($s, qr/type=item_store key=lookup1 /, 'store line');
    like($got, qr/type=item_get key=lookup1 status=not_found clsid=\d+ cfd=\d+ size=0\n[^\n]*type=item_store key=lookup1 status=stored/,
         'item_get not_found, then item_store, for a set');
}

# meta and binary stores are logged too, as memcached logs them
{
    my $s = $srv->new_sock;
    is($srv->cmd('watch mutations', $s), "OK\r\n", 'watch mutations (2)');
    MemcTest::wait_until(sub { $srv->stats->{log_watchers} >= 3 }, 5);
    my $c = $srv->new_sock;
    $srv->send("ms metakey 2 T30\r\nhi\r\n", $c);
    is($srv->read_line($c), "HD\r\n", 'meta set');
    my $b = $srv->new_sock;
    my $key = 'binkey';
    $srv->send(pack('CCnCCnNNNN', 0x80, 0x01, length $key, 8, 0, 0,
                    8 + length($key) + 3, 0, 0, 0)
               . pack('NN', 0, 0) . $key . 'abc', $b);
    my $hdr = $srv->read_bytes(24, $b);
    is(length($hdr // ''), 24, 'binary set answered');
    my $got = collect($s, qr/key=metakey .*\n(?s:.*)key=binkey |key=binkey .*\n(?s:.*)key=metakey /,
                      'meta and binary store lines');
    like($got, qr/type=item_store key=metakey status=stored cmd=set ttl=30 clsid=\d+ cfd=\d+ size=2$/m,
         'meta ms logged as item_store');
    like($got, qr/type=item_store key=binkey status=stored cmd=set ttl=0 clsid=\d+ cfd=\d+ size=3$/m,
         'binary SET logged as item_store');
}

# connection events: opened, closed by quit, by the client, on an error
{
    my $s = $srv->new_sock;
    is($srv->cmd('watch connevents', $s), "OK\r\n", 'watch connevents');
    MemcTest::wait_until(sub { $srv->stats->{log_watchers} >= 4 }, 5);
    my $c = $srv->new_sock;
    my $port = $c->sockport;
    $srv->cmd('version', $c);
    $srv->send("quit\r\n", $c);
    my $got = collect($s, qr/type=conn_close [^\n]*rport=$port /, 'quit');
    like($got, qr/^ts=\d+\.\d+ gid=\d+ type=conn_new rip=127\.0\.0\.1 rport=$port transport=tcp cfd=\d+$/m,
         'conn_new rip rport transport cfd');
    like($got, qr/type=conn_close rip=127\.0\.0\.1 rport=$port transport=tcp reason=normal cfd=\d+$/m,
         'quit: conn_close reason=normal');
    $c = $srv->new_sock;
    $port = $c->sockport;
    $srv->cmd('version', $c);
    close $c;
    $got = collect($s, qr/type=conn_close [^\n]*rport=$port /, 'close');
    like($got, qr/rport=$port transport=tcp reason=normal/,
         'client close: reason=normal');
    $c = $srv->new_sock;
    $port = $c->sockport;
    $srv->send("GET / HTTP/1.1\r\n", $c);
    $got = collect($s, qr/type=conn_close [^\n]*rport=$port /, 'error');
    like($got, qr/rport=$port transport=tcp reason=error/,
         'protocol error: reason=error');
}

# a watcher that does not read: its lines stop at its buffer (8 KB) and
# the socket's, the rest are counted, and "skipped=N" says so once it
# reads again
{
    my $srv2 = MemcTest->start('-o', 'watcher_logbuf_size=8');
    my $s = $srv2->new_sock;
    is($srv2->cmd('watch', $s), "OK\r\n", 'watch (8 KB buffer)');
    MemcTest::wait_until(sub { $srv2->stats->{log_watchers} >= 1 }, 5);
    my $c = $srv2->new_sock;
    my $key = 'k' x 200;
    for my $round (1 .. 40) {
        $srv2->send(join('', map { "get $key$_\r\n" } 1 .. 1000), $c);
        for (1 .. 1000) { last unless defined $srv2->read_line($c) }
    }
    my $st = $srv2->stats;
    cmp_ok($st->{log_watcher_skipped}, '>', 0,
           'lines to a watcher that does not read are skipped');
    my $got = '';
    my $more = 0;
    MemcTest::wait_until(sub {
        while (defined(my $l = $srv2->read_line($s, 0.05))) { $got .= $l }
        $srv2->mem_get('tick' . $more++, $c);
        $got =~ /^skipped=\d+\n/m;
    }, 20, 'skipped line');
    like($got, qr/^skipped=[1-9]\d*$/m, 'then a "skipped=N" line');
    cmp_ok(length $got, '<', 16 * 1024 * 1024,
           'what was queued is bounded (not all 11 MB of lines)');
    $srv2->stop;
}

# evictions carry the size, as memcached's
{
    my $srv3 = MemcTest->start('-m', '2');
    my $s = $srv3->new_sock;
    is($srv3->cmd('watch evictions', $s), "OK\r\n", 'watch evictions');
    MemcTest::wait_until(sub { $srv3->stats->{log_watchers} >= 1 }, 5);
    my $c = $srv3->new_sock;
    my $v = 'e' x 1000;
    my $got = '';
    for my $i (1 .. 5000) {
        $srv3->send("set ev$i 0 0 1000 noreply\r\n$v\r\n", $c);
        last if $i % 500 == 0 && $srv3->stats->{evictions} > 0;
    }
    $got = collect($s, qr/type=eviction/, 'eviction line');
    like($got, qr/type=eviction key=ev\d+ fetch=no ttl=-1 la=\d+ clsid=\d+ size=1000$/m,
         'eviction line ends in size=');
    $srv3->stop;
}

done_testing();
