#!/usr/bin/perl
# watch: a connection that asks for log streams gets "OK", then one
# line per event from other connections.

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

done_testing();
