#!/usr/bin/perl
# Error replies, byte for byte, and that the connection and the stored
# data survive each of them.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Select;
use MemcTest;

my $srv = MemcTest->start();
my $BADFMT = "CLIENT_ERROR bad command line format\r\n";

# data that must survive everything below
$srv->mem_set("keep$_", "value$_", $_) for 1 .. 20;
my $keep_raw = $srv->get_raw('get ' . join ' ', map { "keep$_" } 1 .. 20);

my $version = $srv->cmd('version');

# send raw bytes on the default connection; return all reply bytes up
# to and including the reply of a trailing "version"
sub exchange {
    my ($bytes) = @_;
    $srv->send($bytes . "version\r\n");
    my $got = '';
    while (defined(my $l = $srv->read_line)) {
        $got .= $l;
        last if $l eq $version;
    }
    return substr($got, 0, length($got) - length($version));
}

sub still_ok {
    my ($what) = @_;
    is($srv->get_raw('get ' . join ' ', map { "keep$_" } 1 .. 20),
       $keep_raw, "stored data intact after $what");
}

# --- keys --------------------------------------------------------------
my $k251 = 'k' x 251;
is(exchange("set $k251 0 0 1\r\nx\r\n"), $BADFMT . "ERROR\r\n",
   'set with 251-byte key: bad command line format, data line is ERROR');
is(exchange("get $k251\r\n"), $BADFMT, 'get with 251-byte key');
is(exchange("get keep1 $k251\r\n"), $BADFMT,
   'get of a good and a too-long key: only the error');
is(exchange("gets $k251\r\n"), $BADFMT, 'gets with 251-byte key');
is(exchange("delete $k251\r\n"), $BADFMT, 'delete with 251-byte key');
is(exchange("incr $k251 1\r\n"), $BADFMT, 'incr with 251-byte key');
is(exchange("touch $k251 1\r\n"), $BADFMT, 'touch with 251-byte key');
is(exchange("get " . ('k' x 100000) . "\r\n"), $BADFMT,
   'get with a 100000-byte key');
still_ok('long keys');

# control characters are not special in text-protocol keys (memcached
# only splits on spaces): stored and found like any other byte
is(exchange("set a\x01b 0 0 1\r\nx\r\n"), "STORED\r\n",
   'key with a control character: STORED');
is(exchange("get a\x01b\r\n"), "VALUE a\x01b 0 1\r\nx\r\nEND\r\n",
   'and found under the same bytes');
is(exchange("get ab\r\n"), "END\r\n", 'not under the key without it');
is(exchange("set a\x7fb\x1f 0 0 1\r\ny\r\n"), "STORED\r\n",
   'key with DEL and 0x1f: STORED');
is(exchange("delete a\x01b\r\n"), "DELETED\r\n", 'deleted');

# --- unknown commands ---------------------------------------------------
is(exchange("foo\r\n"), "ERROR\r\n", 'unknown command: ERROR');
is(exchange("foo bar baz\r\n"), "ERROR\r\n", 'unknown command with args');
is(exchange("GET keep1\r\n"), "ERROR\r\n", 'commands are case sensitive');
is(exchange("\r\n"), "ERROR\r\n", 'empty line: ERROR');
is(exchange("   \r\n"), "ERROR\r\n", 'blank line: ERROR');
is(exchange("set\r\n"), "ERROR\r\n", 'set without args: ERROR');
is(exchange("set k\r\n"), "ERROR\r\n", 'set with key only: ERROR');
is(exchange("set k 0 0\r\nx\r\n"), "ERROR\r\nERROR\r\n",
   'set without length: ERROR (and ERROR for the data line)');
is(exchange("set k 0 0 1 noreply extra\r\nx\r\n"), "ERROR\r\nERROR\r\n",
   'set with too many tokens: ERROR');
is(exchange("get keep1\n"), "VALUE keep1 1 6\r\nvalue1\r\nEND\r\n",
   'a bare LF ends a line too');
still_ok('unknown commands');

# --- bad numbers in storage commands ---------------------------------
for my $case (['flags abc', 'set k abc 0 1'], ['flags -1', 'set k -1 0 1'],
              ['flags 1.5', 'set k 1.5 0 1'], ['exptime abc', 'set k 0 abc 1'],
              ['exptime 1.5', 'set k 0 1.5 1'], ['length abc', 'set k 0 0 abc'],
              ['length 1.5', 'set k 0 0 1.5'], ['length 0x1', 'set k 0 0 0x1'],
              ['add flags x', 'add k x 0 1'], ['replace length x',
              'replace keep1 0 0 x'], ['append length x', 'append keep1 0 0 x'],
              ['cas unique x', 'cas keep1 0 0 1 x']) {
    my ($what, $line) = @$case;
    is(exchange("$line\r\nx\r\n"), $BADFMT . "ERROR\r\n",
       "$what: bad command line format, then the data line is ERROR");
}
is(exchange("set k 0 0 -1\r\n"), $BADFMT, 'negative length');
is(exchange("set k 0 0 2147483648\r\n"), $BADFMT, 'length 2^31');
is(exchange("get k\r\n"), "END\r\n", 'nothing was stored under k');
still_ok('bad storage numbers');

# --- bad data chunks --------------------------------------------------
is(exchange("set k 0 0 2\r\nabc\r\n"), "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
   'data longer than declared: bad data chunk; the rest is a command');
is(exchange("set k 0 0 1\r\nab\r\n"), "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
   'one byte too long');
is(exchange("set k 0 0 0\r\nx\r\n"), "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
   'length 0 with data');
is(exchange("set k 0 0 5\r\nab\r\nget keep1\r\n"),
   "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
   'data shorter than declared eats the next line: bad data chunk');
is(exchange("set k 0 0 1\r\nx\n\n"), "CLIENT_ERROR bad data chunk\r\n",
   'data ended by LF LF instead of CRLF: bad data chunk');
is(exchange("get k\r\n"), "END\r\n", 'nothing stored by bad chunks');
$srv->mem_set('old', 'kept');
is(exchange("set old 0 0 1\r\nxy\r\n"), "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
   'bad data chunk on an existing key');
is(exchange("get old\r\n"), "VALUE old 0 4\r\nkept\r\nEND\r\n",
   'the old value stays after a bad chunk');
still_ok('bad data chunks');

# --- value larger than the item size limit (-I default 1m) ----------
{
    my $big = 'x' x 2000000;
    is(exchange("set big 0 0 2000000\r\n$big\r\n"),
       "SERVER_ERROR object too large for cache\r\n",
       'set of 2 MB: object too large; data swallowed, next command works');
    is(exchange("set big 0 0 1048577\r\n" . ('y' x 1048577) . "\r\n"),
       "SERVER_ERROR object too large for cache\r\n", 'set of 1 MB + 1');
    # a too-large set removes the old value under that key ...
    $srv->mem_set('victim', 'v');
    is(exchange("set victim 0 0 2000000\r\n$big\r\n"),
       "SERVER_ERROR object too large for cache\r\n", 'too large set');
    is(exchange("get victim\r\n"), "END\r\n",
       'a failed too-large set unlinks the old value');
    # ... but the other storage commands leave it alone
    for my $verb ('add', 'replace', 'append', 'prepend') {
        $srv->mem_set('victim', 'v');
        is(exchange("$verb victim 0 0 2000000\r\n$big\r\n"),
           "SERVER_ERROR object too large for cache\r\n", "too large $verb");
        is(exchange("get victim\r\n"), "VALUE victim 0 1\r\nv\r\nEND\r\n",
           "a too-large $verb keeps the old value");
    }
    $srv->mem_set('victim', 'v');
    is(exchange("cas victim 0 0 2000000 1\r\n$big\r\n"),
       "SERVER_ERROR object too large for cache\r\n", 'too large cas');
    is(exchange("get victim\r\n"), "VALUE victim 0 1\r\nv\r\nEND\r\n",
       'a too-large cas keeps the old value');
    # the swallowed data may arrive in pieces
    $srv->send("set big 0 0 1500000\r\n");
    $srv->send('z' x 500000) for 1 .. 3;
    is(exchange("\r\n"), "SERVER_ERROR object too large for cache\r\n",
       'too-large data sent in pieces is swallowed');
    my $st = $srv->stats;
    ok($st->{store_too_large} >= 5, "store_too_large counted "
       . "($st->{store_too_large})");
}
still_ok('too large values');

# --- bad numbers elsewhere ------------------------------------------
$srv->mem_set('num', '5');
is(exchange("incr num abc\r\n"),
   "CLIENT_ERROR invalid numeric delta argument\r\n", 'incr abc');
is(exchange("decr num -1\r\n"),
   "CLIENT_ERROR invalid numeric delta argument\r\n", 'decr -1');
is(exchange("incr keep1 1\r\n"),
   "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
   'incr of a non-number');
is(exchange("touch num abc\r\n"), "CLIENT_ERROR invalid exptime argument\r\n",
   'touch abc');
is(exchange("gat abc num\r\n"), "CLIENT_ERROR invalid exptime argument\r\n",
   'gat abc');
is(exchange("flush_all abc\r\n"), "CLIENT_ERROR invalid exptime argument\r\n",
   'flush_all abc');
is(exchange("verbosity abc\r\n"), $BADFMT, 'verbosity abc');
is(exchange("verbosity -1\r\n"), $BADFMT, 'verbosity -1');
is(exchange("verbosity\r\n"), "ERROR\r\n", 'verbosity without level');
is(exchange("delete num 5\r\n"),
   "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n",
   'delete with a time');
is(exchange("get num\r\n"), "VALUE num 0 1\r\n5\r\nEND\r\n", 'num still 5');
still_ok('bad numbers');

# --- too long line -------------------------------------------------
{
    # a line of up to 2048 bytes without its newline yet just waits
    my $s = $srv->new_sock;
    $srv->send('x' x 1024, $s);
    ok(!$srv->closed_within($s, 0.3), '1024 bytes without newline: waiting');
    $srv->send("\r\n", $s);
    is($srv->read_line($s), "ERROR\r\n", 'then the line is an unknown command');
    # more than that, not a get: the server drops the connection
    my $s2 = $srv->new_sock;
    $srv->send('x' x 4096, $s2);
    ok($srv->closed_within($s2, 5), '4096 bytes without newline: closed');
    my $s3 = $srv->new_sock;
    $srv->send('set k 0 0 1 ' . ('1' x 4096), $s3);
    ok($srv->closed_within($s3, 5), 'overlong set line: closed');
    # a long get line is fine (large multigets)
    my $s4 = $srv->new_sock;
    $srv->send('get ' . join(' ', map { "nokey$_" } 1 .. 10000), $s4);
    ok(!$srv->closed_within($s4, 0.3), 'long get line in progress: open');
    $srv->send(" keep1\r\n", $s4);
    is($srv->get_raw('version', $s4), "VALUE keep1 1 6\r\nvalue1\r\nEND\r\n",
       'long get line answered') ;
}
still_ok('too long lines');

# An HTTP request line (an unknown command whose last word starts with
# "HTTP/") is hung up on without a reply, as memcached does; other
# unknown commands still answer ERROR.
for my $line ("GET / HTTP/1.0", "PUT /a/b HTTP/1.1", "DELETE HTTP/1.1") {
    my $s = $srv->new_sock;
    $srv->send("$line\r\n", $s);
    my $got = '';
    my $n;
    if (IO::Select->new($s)->can_read(5)) {
        $n = sysread($s, $got, 64);
    }
    is($n, 0, "$line: closed without a reply") or diag("got: $got");
}
is($srv->cmd('GET / HTTP'), "ERROR\r\n", '"GET / HTTP": ERROR');
is($srv->cmd('foo HTTP/1.1 bar'), "ERROR\r\n",
   'HTTP/ not last: ERROR');
still_ok('HTTP requests');

# debugtime exists only in the test build (t/debug/memcached)
is($srv->cmd('debugtime 100'), "ERROR\r\n",
   'debugtime: ERROR (not in a normal build)');

like($srv->cmd('version'), qr/\AVERSION /, 'server still answers');
ok($srv->is_alive, 'server process still running');

done_testing();
