#!/usr/bin/perl
# set/get/gets, add/replace, flags, empty and binary values, sizes up
# to the item size limit, noreply on every storage command.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;

my $srv = MemcTest->start();

# --- basic set / get -----------------------------------------------------
is($srv->mem_set('foo', 'bar'), "STORED\r\n", 'set answers STORED');
is($srv->get_raw('get foo'), "VALUE foo 0 3\r\nbar\r\nEND\r\n",
   'get returns VALUE line, data, END');
is($srv->get_raw('get nothere'), "END\r\n", 'get miss is a bare END');

is($srv->mem_set('foo', 'baz2', 5), "STORED\r\n", 'set overwrites');
is($srv->get_raw('get foo'), "VALUE foo 5 4\r\nbaz2\r\nEND\r\n",
   'overwritten value and flags');

# --- multi-key get: order of request, misses skipped, repeats kept ------
$srv->mem_set('k1', 'one', 1);
$srv->mem_set('k2', 'two', 2);
$srv->mem_set('k3', 'three', 3);
is($srv->get_raw('get k3 miss1 k1 miss2 k2'),
   "VALUE k3 3 5\r\nthree\r\nVALUE k1 1 3\r\none\r\n"
   . "VALUE k2 2 3\r\ntwo\r\nEND\r\n",
   'multi-get: VALUE lines in request order, misses skipped');
is($srv->get_raw('get k1 k1'),
   "VALUE k1 1 3\r\none\r\nVALUE k1 1 3\r\none\r\nEND\r\n",
   'a key asked twice is returned twice');
is($srv->get_raw('get  k1   k2  '),
   "VALUE k1 1 3\r\none\r\nVALUE k2 2 3\r\ntwo\r\nEND\r\n",
   'extra spaces between keys are ignored');
is($srv->get_raw('get m1 m2 m3'), "END\r\n", 'all-miss multi-get is END');

# --- gets: cas unique column -------------------------------------------
{
    my $raw = $srv->get_raw('gets k1 nope k2');
    like($raw, qr/\AVALUE k1 1 3 (\d+)\r\none\r\nVALUE k2 2 3 (\d+)\r\ntwo\r\nEND\r\n\z/,
         'gets has a 4th column (cas unique)');
    my ($c1, $c2) = $raw =~ /VALUE k1 1 3 (\d+).*VALUE k2 2 3 (\d+)/s;
    isnt($c1, $c2, 'different items have different cas uniques');
    ok($c1 > 0 && $c2 > 0, 'cas uniques are positive');
}

# --- get / gets without a key ------------------------------------------
is($srv->cmd('get'), "ERROR\r\n", 'get without key: ERROR');
is($srv->cmd('gets'), "ERROR\r\n", 'gets without key: ERROR');

# --- commands are case sensitive -----------------------------------------
is($srv->cmd('GET foo'), "ERROR\r\n", 'GET (upper case) is unknown');

# --- add / replace ------------------------------------------------------
is($srv->mem_add('foo', 'x'), "NOT_STORED\r\n", 'add on existing key');
is($srv->get_raw('get foo'), "VALUE foo 5 4\r\nbaz2\r\nEND\r\n",
   'failed add did not change the value');
is($srv->mem_add('newkey', 'fresh', 9), "STORED\r\n", 'add on missing key');
is($srv->get_raw('get newkey'), "VALUE newkey 9 5\r\nfresh\r\nEND\r\n",
   'added value readable');
is($srv->mem_replace('absent', 'x'), "NOT_STORED\r\n",
   'replace on missing key');
is($srv->get_raw('get absent'), "END\r\n", 'failed replace created nothing');
is($srv->mem_replace('newkey', 'replaced', 4), "STORED\r\n",
   'replace on existing key');
is($srv->get_raw('get newkey'), "VALUE newkey 4 8\r\nreplaced\r\nEND\r\n",
   'replaced value and flags');

# --- flags ------------------------------------------------------------
is($srv->mem_set('f0', 'a', 0), "STORED\r\n", 'flags 0');
is($srv->mem_set('fmax', 'b', 4294967295), "STORED\r\n", 'flags 2^32-1');
is($srv->get_raw('get f0 fmax'),
   "VALUE f0 0 1\r\na\r\nVALUE fmax 4294967295 1\r\nb\r\nEND\r\n",
   'flags 0 and 4294967295 round-trip');
is($srv->mem_set('f16', 'c', 65535), "STORED\r\n", 'flags 65535');
is($srv->get_raw('get f16'), "VALUE f16 65535 1\r\nc\r\nEND\r\n",
   'flags 65535 round-trip');

# --- empty value ------------------------------------------------------
is($srv->mem_set('empty', '', 3), "STORED\r\n", 'empty value stored');
is($srv->get_raw('get empty'), "VALUE empty 3 0\r\n\r\nEND\r\n",
   'empty value: length 0, bare CRLF');
is($srv->mem_add('empty2', ''), "STORED\r\n", 'add with empty value');
like($srv->get_raw('gets empty2'), qr/\AVALUE empty2 0 0 \d+\r\n\r\nEND\r\n\z/,
     'gets of empty value');

# --- binary-safe values -------------------------------------------------
{
    my $v = "a\r\nb\0c\r\n\r\nEND\r\n\0";
    is($srv->mem_set('bin', $v, 0), "STORED\r\n",
       'value with CRLF, NUL and END inside');
    is($srv->get_raw('get bin'),
       'VALUE bin 0 ' . length($v) . "\r\n$v\r\nEND\r\n",
       'binary value returned byte for byte');
    my $all = join '', map { chr } 0 .. 255;
    is($srv->mem_set('allbytes', $all x 4), "STORED\r\n",
       'value with every byte value');
    is(scalar $srv->mem_get('allbytes'), $all x 4, 'every byte value back');
    is($srv->mem_set('crlfonly', "\r\n"), "STORED\r\n", 'value "\r\n"');
    is($srv->get_raw('get crlfonly'), "VALUE crlfonly 0 2\r\n\r\n\r\nEND\r\n",
       'value "\r\n" round-trip');
}

# --- many sizes up to the -I limit (default 1m) -----------------------
{
    my $seed = 12345;
    my $rand = sub {
        my ($len) = @_;
        my $s = '';
        while (length $s < $len) {
            $seed = ($seed * 1103515245 + 12345) % 2147483648;
            $s .= pack('N', $seed);
        }
        return substr($s, 0, $len);
    };
    my @sizes = (1, 2, 3, 7, 8, 15, 16, 31, 32, 63, 64, 100, 127, 128, 255,
                 256, 500, 1000, 1023, 1024, 1025, 2048, 4095, 4096, 8191,
                 10000, 16384, 65535, 65536, 100000, 262144, 500000,
                 524288, 700000, 1000000, 1048576 - 1024);
    my $bad = 0;
    for my $n (@sizes) {
        my $v = $rand->($n);
        my $r = $srv->mem_set("size$n", $v, $n % 65536);
        if (!defined $r || $r ne "STORED\r\n") {
            $bad++;
            diag("set of $n bytes: " . ($r // 'undef'));
            next;
        }
        my ($got, $flags) = $srv->mem_get("size$n");
        if (!defined $got || $got ne $v || $flags != $n % 65536) {
            $bad++;
            diag("size $n did not round-trip");
        }
    }
    is($bad, 0, scalar(@sizes) . ' value sizes up to ~1MB round-trip');
    # the full reply of a mid-size one, byte for byte
    my $v = $rand->(3000);
    $srv->mem_set('exact3000', $v, 77);
    is($srv->get_raw('get exact3000'),
       "VALUE exact3000 77 3000\r\n$v\r\nEND\r\n", '3000-byte reply exact');
}

# --- key of 250 bytes (the maximum) -------------------------------------
{
    my $k = 'k' x 250;
    is($srv->mem_set($k, 'long'), "STORED\r\n", '250-byte key accepted');
    is($srv->get_raw("get $k"), "VALUE $k 0 4\r\nlong\r\nEND\r\n",
       '250-byte key round-trip');
}

# --- noreply on every storage command ---------------------------------
{
    my $s = $srv->new_sock;
    $srv->send("set nr 1 0 1 noreply\r\na\r\n", $s);
    $srv->send("add nr 0 0 1 noreply\r\nb\r\n", $s);        # fails
    $srv->send("add nr2 2 0 1 noreply\r\nc\r\n", $s);
    $srv->send("replace nr 3 0 2 noreply\r\ndd\r\n", $s);
    $srv->send("replace nomiss 0 0 1 noreply\r\ne\r\n", $s); # fails
    $srv->send("append nr 0 0 1 noreply\r\nX\r\n", $s);
    $srv->send("prepend nr 0 0 1 noreply\r\nY\r\n", $s);
    $srv->send("append nomiss 0 0 1 noreply\r\nX\r\n", $s);  # fails
    $srv->send("prepend nomiss 0 0 1 noreply\r\nX\r\n", $s); # fails
    # noreply gives no acknowledgement: wait until the add is visible
    # from the other connection before taking its cas token there
    MemcTest::wait_until(sub { defined $srv->mem_cas('nr2') }, 5, 'nr2');
    my $cas = $srv->mem_cas('nr2');
    $srv->send("cas nr2 5 0 2 $cas noreply\r\nzz\r\n", $s);
    $srv->send("cas nr2 6 0 2 $cas noreply\r\nqq\r\n", $s);   # EXISTS
    $srv->send("cas nomiss 0 0 1 1 noreply\r\nq\r\n", $s);    # NOT_FOUND
    $srv->send("get nr nr2 nomiss\r\n", $s);
    my ($raw) = $srv->read_values($s);
    is($raw, "VALUE nr 3 4\r\nYddX\r\nVALUE nr2 5 2\r\nzz\r\nEND\r\n",
       'noreply commands stored silently; first reply is the get');
    is($srv->drain($s, 0.2), '', 'nothing more arrives after noreply');
}

# --- exptime 0 means never expires; big relative exptime fine ----------
is($srv->mem_set('ttl', 'v', 0, 1000), "STORED\r\n", 'set with ttl 1000');
is($srv->get_raw('get ttl'), "VALUE ttl 0 1\r\nv\r\nEND\r\n",
   'item with future ttl readable');

# --- extra unknown trailing token is ignored (not noreply) --------------
is($srv->store('set', 'trail', 'x', 0, 0, undef, 'foo'), "STORED\r\n",
   'unknown trailing token after length: still STORED');

# the server is still fine
like($srv->cmd('version'), qr/\AVERSION \S+\r\n\z/, 'server answers');

done_testing();
