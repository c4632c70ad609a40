#!/usr/bin/perl
# Binary protocol, one request at a time: every opcode memcached 1.6
# answers, byte for byte (status, extras/key/value layout, CAS, opaque
# echoed), text/binary interplay on the same data, stats counted for
# binary commands as memcached counts them, and text and binary
# clients working at the same time.  Quiet commands and pipelining are
# in binary_quiet.t, malformed frames in binary_errors.t, SASL in
# binary_sasl.t.  (memccapable -b runs in memccapable.t.)

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use POSIX ();
use MemcTest;
use MemcBin;

my $srv = MemcTest->start();
my $s = $srv->new_sock;

# one request on the test's binary connection
sub bc { return bin_cmd($srv, $s, @_) // {}; }

# the text "gets" of a key: (value, flags, cas) or () on a miss
sub tget { return $srv->mem_get($_[0]); }

# --- NOOP, VERSION, opaque --------------------------------------------
for my $opq (0, 1, 0xdeadbeef, 0xffffffff) {
    bin_is(bc('NOOP', opaque => $opq), bin_res('NOOP', opaque => $opq),
           sprintf('NOOP: empty success, opaque %08x echoed', $opq));
}
{
    my ($ver) = $srv->cmd('version') =~ /^VERSION (\S+)\r\n\z/;
    ok(defined $ver, 'text version answers');
    bin_is(bc('VERSION', opaque => 0x01020304),
           bin_res('VERSION', value => $ver, opaque => 0x01020304),
           'VERSION: value is the version string of text "version"');
}
bin_is(bc('NOOP', vbucket => 77, datatype => 0, opaque => 3),
       bin_res('NOOP', opaque => 3), 'a vbucket id in the request is ignored');

# --- SET / GET / GETK / GETQ / GETKQ -----------------------------------
my $cas1;
{
    my $r = bc('SET', key => 'k1', extras => set_extras(0xcafe, 0),
               value => 'hello', opaque => 11);
    $cas1 = $r ? $r->{cas} : 0;
    ok($cas1 > 0, 'SET returns a non-zero CAS');
    bin_is($r, bin_res('SET', opaque => 11, cas => $cas1),
           'SET: success, no extras/key/value, opaque echoed');
    bin_is(bc('GET', key => 'k1', opaque => 12),
           bin_res('GET', extras => pack('N', 0xcafe), value => 'hello',
                   opaque => 12, cas => $cas1),
           'GET: 4-byte flags extra, value, no key, the item CAS');
    bin_is(bc('GETK', key => 'k1', opaque => 13),
           bin_res('GETK', extras => pack('N', 0xcafe), key => 'k1',
                   value => 'hello', opaque => 13, cas => $cas1),
           'GETK: flags, key and value');
    bin_is(bc('GETQ', key => 'k1', opaque => 14),
           bin_res('GETQ', extras => pack('N', 0xcafe), value => 'hello',
                   opaque => 14, cas => $cas1),
           'GETQ hit answers like GET with opcode 0x09');
    bin_is(bc('GETKQ', key => 'k1', opaque => 15),
           bin_res('GETKQ', extras => pack('N', 0xcafe), key => 'k1',
                   value => 'hello', opaque => 15, cas => $cas1),
           'GETKQ hit answers like GETK with opcode 0x0d');
}
bin_is(bc('GET', key => 'nokey', opaque => 21),
       bin_err('GET', 'KEY_ENOENT', 21),
       'GET miss: KEY_ENOENT with body "Not found"');
bin_is(bc('GETK', key => 'nokey', opaque => 22),
       bin_res('GETK', status => 1, key => 'nokey', opaque => 22),
       'GETK miss: KEY_ENOENT carrying the key and no text');
{
    my $r = bc('SET', key => 'k1', extras => set_extras(7, 0),
               value => 'world', opaque => 23);
    ok($r && $r->{status} == 0 && $r->{cas} && $r->{cas} != $cas1,
       'SET overwrites and returns a new CAS');
    my $c = $r ? $r->{cas} : 0;
    bin_is(bc('GET', key => 'k1'),
           bin_res('GET', extras => pack('N', 7), value => 'world',
                   cas => $c), 'overwritten value, flags and CAS');
}

# flags, empty, binary-safe, long key, large value
for my $f (0, 1, 0xffff, 0xffffffff) {
    my $r = bc('SET', key => "fl$f", extras => set_extras($f, 0),
               value => 'x');
    bin_is(bc('GET', key => "fl$f"),
           bin_res('GET', extras => pack('N', $f), value => 'x',
                   cas => $r ? $r->{cas} : 0), "flags $f round-trip");
}
{
    my $r = bc('SET', key => 'empty', extras => set_extras(3, 0),
               value => '');
    bin_is(bc('GETK', key => 'empty'),
           bin_res('GETK', extras => pack('N', 3), key => 'empty',
                   cas => $r ? $r->{cas} : 0), 'empty value round-trip');
    my $all = join('', map { chr } 0 .. 255) x 4;
    $r = bc('SET', key => 'allbytes', extras => set_extras(0, 0),
            value => $all);
    bin_is(bc('GET', key => 'allbytes'),
           bin_res('GET', extras => pack('N', 0), value => $all,
                   cas => $r ? $r->{cas} : 0), 'every byte value round-trips');
    my $k = 'K' x 250;
    $r = bc('SET', key => $k, extras => set_extras(1, 0), value => 'long');
    is($r && $r->{status}, 0, '250-byte key stored');
    bin_is(bc('GETK', key => $k),
           bin_res('GETK', extras => pack('N', 1), key => $k,
                   value => 'long', cas => $r ? $r->{cas} : 0),
           '250-byte key round-trip');
    my $big = join '', map { chr(($_ * 7) % 251) } 1 .. (1048576 - 1024);
    $r = bc('SET', key => 'big', extras => set_extras(9, 0), value => $big);
    is($r && $r->{status}, 0, 'value of 1 MB - 1 KB stored');
    bin_is(bc('GET', key => 'big'),
           bin_res('GET', extras => pack('N', 9), value => $big,
                   cas => $r ? $r->{cas} : 0), 'large value round-trip');
}

# the same items through the text protocol
{
    my $r = bc('SET', key => 'shared', extras => set_extras(42, 0),
               value => "a\r\nb");
    my ($v, $f, $c) = tget('shared');
    is_deeply([$v, $f, $c], ["a\r\nb", 42, $r->{cas}],
              'binary SET seen by text gets: value, flags, same CAS');
    $srv->mem_set('fromtext', 'txt', 99);
    my (undef, undef, $tc) = tget('fromtext');
    bin_is(bc('GETK', key => 'fromtext', opaque => 5),
           bin_res('GETK', extras => pack('N', 99), key => 'fromtext',
                   value => 'txt', opaque => 5, cas => $tc),
           'text set seen by binary GETK: flags, value, same CAS');
}

# --- ADD / REPLACE / CAS -----------------------------------------------
{
    bin_is(bc('ADD', key => 'k1', extras => set_extras(0, 0), value => 'no',
              opaque => 31), bin_err('ADD', 'KEY_EEXISTS', 31),
           'ADD on an existing key: KEY_EEXISTS "Data exists for key."');
    is(scalar tget('k1'), 'world', 'failed ADD changed nothing');
    my $r = bc('ADD', key => 'added', extras => set_extras(5, 0),
               value => 'new', opaque => 32);
    ok($r && $r->{cas} > 0, 'ADD on a missing key returns a CAS');
    bin_is($r, bin_res('ADD', opaque => 32, cas => $r ? $r->{cas} : 0),
           'ADD on a missing key: success');
    bin_is(bc('REPLACE', key => 'absent', extras => set_extras(0, 0),
              value => 'x', opaque => 33),
           bin_err('REPLACE', 'KEY_ENOENT', 33),
           'REPLACE on a missing key: KEY_ENOENT "Not found"');
    ok(!defined tget('absent'), 'failed REPLACE created nothing');
    $r = bc('REPLACE', key => 'added', extras => set_extras(6, 0),
            value => 'rep', opaque => 34);
    bin_is($r, bin_res('REPLACE', opaque => 34, cas => $r ? $r->{cas} : 0),
           'REPLACE on an existing key: success');
    ok($r && $r->{cas} > 0, 'REPLACE returns a CAS');
    is_deeply([tget('added')], ['rep', 6, $r->{cas}], 'replaced item');
}
{
    my $r0 = bc('SET', key => 'ck', extras => set_extras(0, 0),
                value => 'v0');
    my $old = $r0->{cas};
    my $r1 = bc('SET', key => 'ck', extras => set_extras(1, 0),
                value => 'v1', cas => $old, opaque => 41);
    ok($r1 && $r1->{cas} && $r1->{cas} != $old,
       'SET with the current CAS stores and returns a new CAS');
    bin_is($r1, bin_res('SET', opaque => 41, cas => $r1 ? $r1->{cas} : 0),
           'SET with the current CAS: success');
    bin_is(bc('SET', key => 'ck', extras => set_extras(2, 0), value => 'v2',
              cas => $old, opaque => 42),
           bin_err('SET', 'KEY_EEXISTS', 42),
           'SET with a stale CAS: KEY_EEXISTS');
    is(scalar tget('ck'), 'v1', 'stale-CAS SET changed nothing');
    bin_is(bc('SET', key => 'ck-missing', extras => set_extras(0, 0),
              value => 'x', cas => $old, opaque => 43),
           bin_err('SET', 'KEY_ENOENT', 43),
           'SET with a CAS on a missing key: KEY_ENOENT');
    my $r2 = bc('REPLACE', key => 'ck', extras => set_extras(3, 0),
                value => 'v3', cas => $r1->{cas}, opaque => 44);
    is($r2 && $r2->{status}, 0, 'REPLACE with the current CAS: success');
    bin_is(bc('REPLACE', key => 'ck', extras => set_extras(3, 0),
              value => 'v4', cas => $r1->{cas}, opaque => 45),
           bin_err('REPLACE', 'KEY_EEXISTS', 45),
           'REPLACE with a stale CAS: KEY_EEXISTS');
    is_deeply([tget('ck')], ['v3', 3, $r2->{cas}], 'CAS-guarded item');
}

# --- DELETE ---------------------------------------------------------------
{
    my $r = bc('SET', key => 'del', extras => set_extras(0, 0), value => 'x');
    bin_is(bc('DELETE', key => 'del', cas => $r->{cas} + 1000, opaque => 51),
           bin_err('DELETE', 'KEY_EEXISTS', 51),
           'DELETE with a wrong CAS: KEY_EEXISTS');
    is(scalar tget('del'), 'x', 'wrong-CAS DELETE kept the item');
    bin_is(bc('DELETE', key => 'del', cas => $r->{cas}, opaque => 52),
           bin_res('DELETE', opaque => 52),
           'DELETE with the right CAS: success, CAS 0 in the reply');
    bc('SET', key => 'del', extras => set_extras(0, 0), value => 'x');
    bin_is(bc('DELETE', key => 'del', opaque => 53),
           bin_res('DELETE', opaque => 53), 'DELETE hit: success, empty');
    bin_is(bc('GET', key => 'del'), bin_err('GET', 'KEY_ENOENT'),
           'deleted key is gone');
    bin_is(bc('DELETE', key => 'del', opaque => 54),
           bin_err('DELETE', 'KEY_ENOENT', 54), 'DELETE miss: KEY_ENOENT');
}

# --- INCREMENT / DECREMENT --------------------------------------------
{
    my $r = bc('INCREMENT', key => 'cnt', extras => incr_extras(1, 5, 0),
               opaque => 61);
    ok($r && $r->{cas} > 0, 'INCREMENT miss with initial: CAS returned');
    bin_is($r, bin_res('INCREMENT', value => pack('Q>', 5), opaque => 61,
                       cas => $r ? $r->{cas} : 0),
           'INCREMENT miss creates the item with the initial value'
           . ' (8-byte big-endian value, no extras)');
    is_deeply([tget('cnt')], ['5', 0, $r->{cas}],
              'created counter: text "5", flags 0, same CAS');
    my $r2 = bc('INCREMENT', key => 'cnt', extras => incr_extras(10, 5, 0),
                opaque => 62);
    bin_is($r2, bin_res('INCREMENT', value => pack('Q>', 15), opaque => 62,
                        cas => $r2 ? $r2->{cas} : 0), 'INCREMENT by 10: 15');
    ok($r2 && $r2->{cas} && $r2->{cas} != $r->{cas}, 'new CAS after incr');
    is(scalar tget('cnt'), '15', 'text sees 15');
    my $r3 = bc('DECREMENT', key => 'cnt', extras => incr_extras(100, 5, 0),
                opaque => 63);
    bin_is($r3, bin_res('DECREMENT', value => pack('Q>', 0), opaque => 63,
                        cas => $r3 ? $r3->{cas} : 0),
           'DECREMENT below zero stops at 0');
    # memcached rewrites a shorter number in place, padded with spaces
    bin_is(bc('GET', key => 'cnt'),
           bin_res('GET', extras => pack('N', 0), value => '0 ',
                   cas => $r3 ? $r3->{cas} : 0),
           'decremented "15" reads back as "0 " (length kept, space pad)');
    bin_is(bc('INCREMENT', key => 'nocnt',
              extras => incr_extras(1, 5, 0xffffffff), opaque => 64),
           bin_err('INCREMENT', 'KEY_ENOENT', 64),
           'INCREMENT miss with exptime 0xffffffff: KEY_ENOENT');
    ok(!defined tget('nocnt'), '... and nothing was created');
    bin_is(bc('DECREMENT', key => 'nocnt',
              extras => incr_extras(1, 5, 0xffffffff), opaque => 65),
           bin_err('DECREMENT', 'KEY_ENOENT', 65),
           'DECREMENT miss with exptime 0xffffffff: KEY_ENOENT');
    my $r4 = bc('DECREMENT', key => 'dcnt', extras => incr_extras(3, 100, 0),
                opaque => 66);
    bin_is($r4, bin_res('DECREMENT', value => pack('Q>', 100), opaque => 66,
                        cas => $r4 ? $r4->{cas} : 0),
           'DECREMENT miss creates the item with the initial value');
    my $r5 = bc('DECREMENT', key => 'dcnt', extras => incr_extras(3, 100, 0));
    is($r5 && $r5->{value}, pack('Q>', 97), 'DECREMENT by 3: 97');

    $srv->mem_set('wrap', '18446744073709551615');
    my $r6 = bc('INCREMENT', key => 'wrap', extras => incr_extras(1, 0, 0));
    is($r6 && $r6->{value}, pack('Q>', 0), '2^64-1 + 1 wraps to 0');
    is(scalar tget('wrap'), '0' . (' ' x 19),
       'wrapped value reads back as "0" padded to the old length');
    bc('SET', key => 'huge', extras => set_extras(0, 0), value => '1');
    my $r7 = bc('INCREMENT', key => 'huge',
                extras => incr_extras(9223372036854775808, 0, 0));
    is($r7 && $r7->{value}, pack('Q>', 9223372036854775809),
       '64-bit delta 2^63');
    is(scalar tget('huge'), '9223372036854775809', 'text sees the decimal');

    bc('SET', key => 'txt', extras => set_extras(0, 0), value => 'abc');
    bin_is(bc('INCREMENT', key => 'txt', extras => incr_extras(1, 0, 0),
              opaque => 67), bin_err('INCREMENT', 'DELTA_BADVAL', 67),
           'INCREMENT of a non-number: DELTA_BADVAL with its text');
    bin_is(bc('DECREMENT', key => 'txt', extras => incr_extras(1, 0, 0),
              opaque => 68), bin_err('DECREMENT', 'DELTA_BADVAL', 68),
           'DECREMENT of a non-number: DELTA_BADVAL');

    my $c = bc('GET', key => 'dcnt')->{cas};
    bin_is(bc('INCREMENT', key => 'dcnt', extras => incr_extras(1, 0, 0),
              cas => $c + 1000, opaque => 69),
           bin_err('INCREMENT', 'KEY_EEXISTS', 69),
           'INCREMENT with a wrong CAS: KEY_EEXISTS');
    my $r8 = bc('INCREMENT', key => 'dcnt', extras => incr_extras(1, 0, 0),
                cas => $c);
    is($r8 && $r8->{value}, pack('Q>', 98), 'INCREMENT with the right CAS');
    is(bc('GET', key => 'dcnt')->{cas}, $r8->{cas},
       'the CAS of an INCREMENT reply is the item CAS');
}

# --- APPEND / PREPEND -----------------------------------------------------
{
    bc('SET', key => 'ap', extras => set_extras(7, 0), value => 'mid');
    my $r = bc('APPEND', key => 'ap', value => 'end', opaque => 71);
    ok($r && $r->{cas} > 0, 'APPEND returns a CAS');
    bin_is($r, bin_res('APPEND', opaque => 71, cas => $r ? $r->{cas} : 0),
           'APPEND: success, empty');
    $r = bc('PREPEND', key => 'ap', value => 'start', opaque => 72);
    bin_is($r, bin_res('PREPEND', opaque => 72, cas => $r ? $r->{cas} : 0),
           'PREPEND: success, empty');
    bin_is(bc('GET', key => 'ap'),
           bin_res('GET', extras => pack('N', 7), value => 'startmidend',
                   cas => $r ? $r->{cas} : 0),
           'appended/prepended value, flags kept, CAS of the PREPEND');
    bin_is(bc('APPEND', key => 'apmiss', value => 'x', opaque => 73),
           bin_err('APPEND', 'NOT_STORED', 73),
           'APPEND miss: NOT_STORED "Not stored."');
    bin_is(bc('PREPEND', key => 'apmiss', value => 'x', opaque => 74),
           bin_err('PREPEND', 'NOT_STORED', 74), 'PREPEND miss: NOT_STORED');
    ok(!defined tget('apmiss'), 'failed APPEND/PREPEND created nothing');
    $r = bc('APPEND', key => 'ap', value => '');
    is($r && $r->{status}, 0, 'APPEND of an empty value');
    is(scalar tget('ap'), 'startmidend', '... changes nothing');
}

# --- TOUCH / GAT / GATK -------------------------------------------------
{
    my $r = bc('SET', key => 'tk', extras => set_extras(0xabcd, 0),
               value => 'tv');
    my $c = $r->{cas};
    bin_is(bc('TOUCH', key => 'tk', extras => pack('N', 1000), opaque => 81),
           bin_res('TOUCH', extras => pack('N', 0xabcd), opaque => 81,
                   cas => $c),
           'TOUCH hit: 4-byte flags extra, no key or value, item CAS');
    bin_is(bc('TOUCH', key => 'tkmiss', extras => pack('N', 10),
              opaque => 82), bin_err('TOUCH', 'KEY_ENOENT', 82),
           'TOUCH miss: KEY_ENOENT "Not found"');
    bin_is(bc('GAT', key => 'tk', extras => pack('N', 1000), opaque => 83),
           bin_res('GAT', extras => pack('N', 0xabcd), value => 'tv',
                   opaque => 83, cas => $c), 'GAT hit: flags and value');
    bin_is(bc('GATK', key => 'tk', extras => pack('N', 1000), opaque => 84),
           bin_res('GATK', extras => pack('N', 0xabcd), key => 'tk',
                   value => 'tv', opaque => 84, cas => $c),
           'GATK hit: flags, key and value');
    bin_is(bc('GAT', key => 'tkmiss', extras => pack('N', 10), opaque => 85),
           bin_err('GAT', 'KEY_ENOENT', 85), 'GAT miss: "Not found"');
    bin_is(bc('GATK', key => 'tkmiss', extras => pack('N', 10),
              opaque => 86),
           bin_res('GATK', status => 1, key => 'tkmiss', opaque => 86),
           'GATK miss: KEY_ENOENT carrying the key');
    is(bc('GET', key => 'tk')->{cas}, $c, 'touching keeps the CAS');
}

# --- expiry through SET, INCREMENT, TOUCH and GAT ----------------------
{
    bc('SET', key => 'e-set', extras => set_extras(0, 1), value => 'x');
    bc('INCREMENT', key => 'e-incr', extras => incr_extras(1, 1, 1));
    bc('SET', key => 'e-keep', extras => set_extras(0, 1), value => 'keep');
    bc('SET', key => 'e-gat', extras => set_extras(0, 1000), value => 'g');
    bc('SET', key => 'e-touch', extras => set_extras(0, 1000), value => 't');
    is(bc('TOUCH', key => 'e-keep', extras => pack('N', 0))->{status}, 0,
       'TOUCH to exptime 0 (never)');
    is(bc('GAT', key => 'e-gat', extras => pack('N', 1))->{value}, 'g',
       'GAT to exptime 1');
    is(bc('TOUCH', key => 'e-touch', extras => pack('N', 1))->{status}, 0,
       'TOUCH to exptime 1');
    my $gone = sub { my $r = bc('GET', key => $_[0]); $r && $r->{status} == 1 };
    ok(wait_until(sub { $gone->('e-set') }, 6, 'e-set to expire'),
       'SET with exptime 1 expires');
    ok(wait_until(sub { $gone->('e-incr') }, 3), 'created counter expires');
    ok(wait_until(sub { $gone->('e-gat') }, 3), 'GAT exptime took effect');
    ok(wait_until(sub { $gone->('e-touch') }, 3), 'TOUCH exptime took effect');
    is(bc('GET', key => 'e-keep')->{value}, 'keep',
       'item touched to exptime 0 outlived its old exptime');
}

# --- QUIT / QUITQ ---------------------------------------------------------
{
    my $q = $srv->new_sock;
    bin_is(bin_cmd($srv, $q, 'QUIT', opaque => 91),
           bin_res('QUIT', opaque => 91), 'QUIT: success reply');
    ok(bin_closed($srv, $q, 2), '... then the server closes');
    $q = $srv->new_sock;
    bin_send($srv, $q, bin_req('QUITQ', opaque => 92));
    my $got;
    ok(bin_closed($srv, $q, 2, \$got), 'QUITQ: closed without a reply')
        or diag('got ' . bin_hex($got));
    $q = $srv->new_sock;
    bin_send($srv, $q, bin_req('QUIT', opaque => 1),
             bin_req('NOOP', opaque => 2));
    $got = $srv->drain($q, 1);
    is(bin_hex($got), bin_hex(bin_res('QUIT', opaque => 1)),
       'pipelined QUIT + NOOP: only the QUIT is answered');
    ok($srv->closed_within($q, 2), '... and the connection is closed');
}

# --- STAT ---------------------------------------------------------------
{
    my @r = bin_stats($srv, $s, '', 0x5151);
    my $term = pop @r;
    bin_is($term, bin_res('STAT', opaque => 0x5151),
           'STAT ends with an empty success response, opaque echoed');
    my @bad = grep { $_->{magic} != 0x81 || $_->{opcode} != 0x10
                     || $_->{status} || $_->{extlen} || $_->{cas}
                     || $_->{opaque} != 0x5151 || !length $_->{key} } @r;
    is(scalar @bad, 0, 'each stat: opcode 0x10, status 0, no extras, CAS 0,'
       . ' opaque echoed, name in the key');
    my %b = map { $_->{key} => $_->{value} } @r;
    my $t = $srv->stats;
    is(join(' ', map { $_->{key} } @r), join(' ', @{ $t->{_order} }),
       'STAT names and order are those of text "stats"');
    is($b{pid}, $t->{pid}, 'STAT pid');
    is($b{version}, $t->{version}, 'STAT version');
    like($b{rusage_user} // '', qr/^\d+\.\d{6}$/, 'rusage_user as sec.usec');
    ok($b{cmd_get} && $b{cmd_set}, 'cmd_get and cmd_set present');
}
for my $sub (qw(settings slabs items)) {
    my @r = bin_stats($srv, $s, $sub, 7);
    my $term = pop @r;
    bin_is($term, bin_res('STAT', opaque => 7), "STAT $sub terminator");
    my $t = $srv->stats($sub);
    is(join(' ', map { $_->{key} } @r), join(' ', @{ $t->{_order} }),
       "STAT $sub: names and order of text \"stats $sub\"");
    ok(@r > 0, "STAT $sub is not empty");
    if ($sub eq 'settings') {
        my @diff = grep { $_->{value} ne ($t->{ $_->{key} } // '') } @r;
        is(scalar @diff, 0, 'STAT settings values equal the text ones')
            or diag(join ', ', map { $_->{key} } @diff);
    }
    if ($sub eq 'items') {
        ok((grep { $_->{key} =~ /^items:\d+:number$/ } @r),
           'STAT items has items:<class>:number');
    }
}
{
    my @r = bin_stats($srv, $s, 'no-such-group', 8);
    is(scalar @r, 1, 'STAT of an unknown group: one response');
    bin_is($r[0], bin_err('STAT', 'KEY_ENOENT', 8),
           '... KEY_ENOENT "Not found"');
    bc('GET', key => 'k1');
    @r = bin_stats($srv, $s, 'reset', 9);
    is(scalar @r, 1, 'STAT reset: only the terminator');
    bin_is($r[0], bin_res('STAT', opaque => 9), '... an empty success');
    is($srv->stats->{cmd_get}, 0, '... and the counters are reset');
}

# --- VERBOSITY: memcached 1.6 does not implement it in binary ----------
bin_is(bc('VERBOSITY', opaque => 95),
       bin_err('VERBOSITY', 'UNKNOWN_COMMAND', 95),
       'VERBOSITY (no extras): UNKNOWN_COMMAND "Unknown command"');
bin_is(bc('NOOP', opaque => 96), bin_res('NOOP', opaque => 96),
       '... and the connection goes on');

# --- stats count binary commands like text ones -----------------------
{
    my @names = qw(cmd_get get_hits get_misses get_flushed cmd_set
                   cmd_touch touch_hits touch_misses delete_hits
                   delete_misses incr_hits incr_misses decr_hits decr_misses
                   cas_hits cas_misses cas_badval cmd_flush curr_items
                   total_items);
    my $check = sub {
        my ($name, $want, $code, @ignore) = @_;
        my %ign = map { $_ => 1 } @ignore;
        my $a = $srv->stats;
        $code->();
        my $b = $srv->stats;
        my %d = map { $_ => $b->{$_} - $a->{$_} }
                grep { !$ign{$_} && ($b->{$_} // 0) != ($a->{$_} // 0) }
                @names;
        is_deeply(\%d, $want, "stats after $name");
    };
    my $set = sub { bc('SET', key => $_[0], extras => set_extras(0, 0),
                       value => $_[1] // 'v', cas => $_[2] // 0) };
    bc('DELETE', key => $_) for qw(s1 s2 s3 c1);
    $check->('SET', { cmd_set => 1, curr_items => 1, total_items => 1 },
             sub { $set->('s1') });
    $check->('GET hit', { cmd_get => 1, get_hits => 1 },
             sub { bc('GET', key => 's1') });
    $check->('GETK hit', { cmd_get => 1, get_hits => 1 },
             sub { bc('GETK', key => 's1') });
    $check->('GET miss', { cmd_get => 1, get_misses => 1 },
             sub { bc('GET', key => 's9') });
    $check->('GETKQ miss + NOOP', { cmd_get => 1, get_misses => 1 },
             sub { bin_send($srv, $s, bin_req('GETKQ', key => 's9'));
                   bc('NOOP') });
    $check->('ADD on existing', { cmd_set => 1 }, sub {
        bc('ADD', key => 's1', extras => set_extras(0, 0), value => 'v') });
    $check->('REPLACE miss', { cmd_set => 1 }, sub {
        bc('REPLACE', key => 's9', extras => set_extras(0, 0), value => 'v') });
    $check->('APPEND', { cmd_set => 1, total_items => 1 },
             sub { bc('APPEND', key => 's1', value => 'x') });
    $check->('APPEND miss', { cmd_set => 1 },
             sub { bc('APPEND', key => 's9', value => 'x') });
    my $c = bc('GET', key => 's1')->{cas};
    $check->('SET with the right CAS',
             { cmd_set => 1, cas_hits => 1, total_items => 1 },
             sub { $set->('s1', 'w', $c) });
    $check->('SET with a stale CAS', { cmd_set => 1, cas_badval => 1 },
             sub { $set->('s1', 'w', $c) });
    $check->('SET with a CAS on a miss', { cmd_set => 1, cas_misses => 1 },
             sub { $set->('s9', 'w', $c) });
    $check->('DELETE hit', { delete_hits => 1, curr_items => -1 },
             sub { bc('DELETE', key => 's1') });
    $check->('DELETE miss', { delete_misses => 1 },
             sub { bc('DELETE', key => 's1') });
    my $ix = sub {
        bc($_[0], key => $_[1], extras => incr_extras(1, 1, $_[2]));
    };
    $check->('INCREMENT miss, created', { curr_items => 1, total_items => 1 },
             sub { $ix->('INCREMENT', 'c1', 0) });
    $check->('INCREMENT miss, not created', { incr_misses => 1 },
             sub { $ix->('INCREMENT', 'c9', 0xffffffff) });
    $check->('INCREMENT hit', { incr_hits => 1 },
             sub { $ix->('INCREMENT', 'c1', 0) });
    $check->('DECREMENT hit', { decr_hits => 1 },
             sub { $ix->('DECREMENT', 'c1', 0) });
    $check->('DECREMENT miss, not created', { decr_misses => 1 },
             sub { $ix->('DECREMENT', 'c9', 0xffffffff) });
    $set->('s2');
    $check->('TOUCH hit', { cmd_touch => 1, touch_hits => 1 },
             sub { bc('TOUCH', key => 's2', extras => pack('N', 0)) });
    $check->('TOUCH miss', { cmd_touch => 1, touch_misses => 1 },
             sub { bc('TOUCH', key => 's9', extras => pack('N', 0)) });
    # binary GAT counts as a touch only (text "gat" also counts a get)
    $check->('GAT hit', { cmd_touch => 1, touch_hits => 1 },
             sub { bc('GAT', key => 's2', extras => pack('N', 0)) });
    $check->('GATK miss', { cmd_touch => 1, touch_misses => 1 },
             sub { bc('GATK', key => 's9', extras => pack('N', 0)) });
    # memcached's LRU crawler may reap flushed items at any moment
    # (curr_items drops, and a GET then no longer counts get_flushed)
    $check->('FLUSH', { cmd_flush => 1 }, sub { bc('FLUSH') },
             'curr_items');
    $check->('GET of a flushed item', { cmd_get => 1, get_misses => 1 },
             sub { bc('GET', key => 's2') }, 'curr_items', 'get_flushed');
}

# --- text and binary clients at the same time -------------------------
{
    my $n = 300;
    my @kids;
    for my $w (0 .. 3) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my $bad = 0;
            eval {
                my $c = $srv->new_sock;     # writes
                my $c2 = $srv->new_sock;    # reads, other protocol
                for my $i (1 .. $n) {
                    my $k = "mix-$w-$i";
                    my $v = "v$w.$i" x (1 + $i % 7);
                    if ($w % 2) {    # binary writer, text reader
                        my $r = bin_cmd($srv, $c, 'SET', key => $k,
                                        extras => set_extras($i, 0),
                                        value => $v, opaque => $i);
                        $bad++ unless $r && $r->{status} == 0
                                          && $r->{opaque} == $i;
                        my ($gv, $gf) = $srv->mem_get($k, $c2);
                        $bad++ unless defined $gv && $gv eq $v && $gf == $i;
                    } else {         # text writer, binary reader
                        my $t = $srv->mem_set($k, $v, $i, 0, $c);
                        $bad++ unless defined $t && $t eq "STORED\r\n";
                        my $r = bin_cmd($srv, $c2, 'GETK', key => $k,
                                        opaque => $i);
                        $bad++ unless $r && $r->{value} eq $v
                                      && $r->{key} eq $k
                                      && $r->{opaque} == $i
                                      && $r->{extras} eq pack('N', $i);
                    }
                }
                1;
            } or $bad++;
            POSIX::_exit($bad > 250 ? 250 : $bad);
        }
        push @kids, $pid;
    }
    my %st;
    wait_until(sub {
        for my $p (@kids) {
            next if exists $st{$p};
            my $r = waitpid($p, POSIX::WNOHANG());
            $st{$p} = $? if $r == $p;
        }
        return keys(%st) == @kids;
    }, 60, 'mixed text/binary workers');
    kill 'KILL', grep { !exists $st{$_} } @kids;
    is_deeply([map { $st{$_} // 'hung' } @kids], [0, 0, 0, 0],
              '2 text and 2 binary clients in parallel, each reading the'
              . ' other protocol\'s writes');
    cmp_ok($srv->stats->{curr_items}, '>=', 4 * $n,
           'all their items are there');
}

# --- FLUSH / FLUSHQ, last: a delayed flush affects later items ---------
{
    bc('SET', key => "fk$_", extras => set_extras(0, 0), value => 'x')
        for 1 .. 3;
    bin_is(bc('FLUSH', opaque => 101), bin_res('FLUSH', opaque => 101),
           'FLUSH: success, empty');
    bin_is(bc('GET', key => 'fk1'), bin_err('GET', 'KEY_ENOENT'),
           'items are gone after FLUSH');
    bc('SET', key => 'fk2', extras => set_extras(0, 0), value => 'y');
    bin_send($srv, $s, bin_req('FLUSHQ', opaque => 102));
    ok(bin_no_reply($srv, $s, 0.2), 'FLUSHQ: no reply');
    bin_is(bc('GET', key => 'fk2'), bin_err('GET', 'KEY_ENOENT'),
           'FLUSHQ flushed');
    bc('SET', key => 'fk3', extras => set_extras(0, 0), value => 'z');
    bin_is(bc('FLUSH', extras => pack('N', 0), opaque => 103),
           bin_res('FLUSH', opaque => 103), 'FLUSH with a 0 delay extra');
    bin_is(bc('GET', key => 'fk3'), bin_err('GET', 'KEY_ENOENT'),
           '... flushes at once');
    bc('SET', key => 'fk4', extras => set_extras(0, 0), value => 'w');
    # memcached: delay N makes items stored up to now invisible once its
    # one-second clock has ticked N-1 times
    bin_is(bc('FLUSH', extras => pack('N', 3), opaque => 104),
           bin_res('FLUSH', opaque => 104), 'FLUSH with a 3 s delay');
    is(bc('GET', key => 'fk4')->{value}, 'w', '... item still there at once');
    ok(wait_until(sub { bc('GET', key => 'fk4')->{status} == 1 }, 6,
                  'the delayed flush'), '... and gone within a few seconds');
}

# still healthy
bin_is(bc('NOOP', opaque => 7), bin_res('NOOP', opaque => 7),
       'server answers at the end');
like($srv->cmd('version'), qr/\AVERSION /, 'text still answers');

done_testing();
