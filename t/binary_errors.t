#!/usr/bin/perl
# Binary protocol, malformed and hostile input, as memcached 1.6
# answers it: bad magic, keys over 250 bytes, lengths that disagree
# with the opcode, body shorter than extras + key, unknown opcodes,
# SASL opcodes on a server without SASL, values over -I, absurd body
# lengths, frames cut short.  Each case runs on its own connection;
# after each one the server must still serve a client that was
# connected all along (binary) and a new one (text), with its data
# intact.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use MemcTest;
use MemcBin;

my $srv = MemcTest->start();

# data that must survive everything below
my $wit = $srv->new_sock;
my $wval = join '', map { chr } 0 .. 255;
my $wr = bin_cmd($srv, $wit, 'SET', key => 'witness',
                 extras => set_extras(0x5a5a, 0), value => $wval);
ok($wr && $wr->{status} == 0, 'witness item stored');
my $wcas = $wr->{cas};
is($srv->mem_set('witness-t', 'text-side', 17), "STORED\r\n",
   'text witness stored');

my $nhealth = 0;
sub healthy {
    my ($after) = @_;
    $nhealth++;
    my $r = bin_cmd($srv, $wit, 'GETK', key => 'witness',
                    opaque => $nhealth);
    my $want = bin_res('GETK', extras => pack('N', 0x5a5a), key => 'witness',
                       value => $wval, opaque => $nhealth, cas => $wcas);
    my $t = $srv->new_sock;
    my $tv = $srv->get_raw('get witness-t', $t);
    close $t;
    my $ok = $r && $r->{raw} eq $want && $srv->is_alive
        && defined $tv && $tv eq "VALUE witness-t 17 9\r\ntext-side\r\nEND\r\n";
    ok($ok, "after $after: other clients served, data intact")
        or diag('binary: ' . MemcBin::describe($r ? $r->{raw} : undef)
                . "\ntext: " . ($tv // 'undef'));
}

# one request on a fresh connection: (reply, socket)
sub fresh {
    my ($bytes, $timeout) = @_;
    my $c = $srv->new_sock;
    $srv->send($bytes, $c);
    return (bin_read($srv, $c, $timeout // 5), $c);
}

# a connection that has spoken binary already
sub binary_sock {
    my $c = $srv->new_sock;
    bin_cmd($srv, $c, 'NOOP');
    return $c;
}

# --- bad magic ------------------------------------------------------------
for my $case (['magic 0x81 (a response frame)', bin_req('NOOP', magic => 0x81)],
              ['magic 0x00', bin_req('GET', key => 'witness', magic => 0)],
              ['a text command', "get witness-t witness more keys\r\n"]) {
    my ($name, $bytes) = @$case;
    my $c = binary_sock();
    $srv->send($bytes, $c);
    my $got;
    ok(bin_closed($srv, $c, 3, \$got),
       "binary connection, then $name: closed without a reply")
        or diag('got ' . bin_hex($got));
    healthy("bad magic ($name)");
}
{
    # the first byte picks the protocol: anything but 0x80 is text
    my $c = $srv->new_sock;
    $srv->send(bin_req('NOOP', magic => 0x81), $c);
    is($srv->read_line($c, 3), "ERROR\r\n",
       'first frame with magic 0x81: read as a text line'
       . ' ("\x81\n" then) → ERROR');
    healthy('a response frame as the first bytes');
}

# --- key longer than 250 bytes ---------------------------------------
for my $case (['GET', 251, bin_req('GET', key => 'k' x 251)],
              ['GETQ', 251, bin_req('GETQ', key => 'k' x 251)],
              ['SET', 251, bin_req('SET', key => 'k' x 251,
                                   extras => set_extras(0, 0), value => 'v')],
              ['SETQ', 251, bin_req('SETQ', key => 'k' x 251,
                                    extras => set_extras(0, 0), value => '')],
              ['DELETEQ', 251, bin_req('DELETEQ', key => 'k' x 251)],
              ['GET', 1000, bin_req('GET', key => 'k' x 1000)],
              ['GET', 16360, bin_req('GET', key => 'k' x 16360)]) {
    my ($op, $len, $bytes) = @$case;
    my ($r, $c) = fresh($bytes);
    bin_is($r, bin_err($op, 'EINVAL'),
           "$op with a $len-byte key: EINVAL \"Invalid arguments\"");
    ok(bin_closed($srv, $c, 3), '... and the connection is closed');
}
{
    # memcached closes without a reply when header + extras + key do
    # not fit its 16 KB read buffer (keys over 16360 bytes); an EINVAL
    # before the close is accepted too
    my $c = $srv->new_sock;
    $srv->send(bin_req('GET', key => 'k' x 65535), $c);
    my $got;
    my $closed = bin_closed($srv, $c, 3, \$got);
    ok($closed || ($got eq bin_err('GET', 'EINVAL')
                   && $srv->closed_within($c, 3)),
       'GET with a 65535-byte key: connection closed')
        or diag(MemcBin::describe($got));
}
healthy('keys over 250 bytes');

# --- body length smaller than extras + key ----------------------------
# (memcached reads extras + key first, so they are sent in full)
for my $case (['GET', bin_req('GET', key => 'abcde', bodylen => 2)],
              ['GETQ', bin_req('GETQ', key => 'abcde', bodylen => 4)],
              ['SET', bin_req('SET', key => 'abcde', extras => set_extras(),
                              bodylen => 10)],
              ['SETQ', bin_req('SETQ', key => 'abcde', extras => set_extras(),
                               bodylen => 0)],
              ['INCREMENT', bin_req('INCREMENT', key => 'n',
                                    extras => incr_extras(1, 1, 0),
                                    bodylen => 20)],
              ['TOUCH', bin_req('TOUCH', key => 'witness',
                                extras => pack('N', 1), bodylen => 7)],
              ['FLUSH', bin_req('FLUSH', extras => pack('N', 0),
                                bodylen => 3)]) {
    my ($op, $bytes) = @$case;
    my ($r, $c) = fresh($bytes);
    bin_is($r, bin_err($op, 'UNKNOWN_COMMAND'),
           "$op with body length < extras + key: UNKNOWN_COMMAND"
           . ' "Unknown command"');
    ok(bin_closed($srv, $c, 3), '... and the connection is closed');
}
is(bin_cmd($srv, $wit, 'GET', key => 'witness')->{value}, $wval,
   'the short-body TOUCH/FLUSH did nothing');
healthy('short bodies');

# --- lengths an opcode does not allow: EINVAL, connection closed ---------
my @einval = (
    ['GET with extras', 'GET', bin_req('GET', key => 'abc', extras => '1234')],
    ['GET without key', 'GET', bin_req('GET')],
    ['GET with a value', 'GET', bin_req('GET', key => 'abc', value => 'zz')],
    ['GETK without key', 'GETK', bin_req('GETK')],
    ['SET with 4 extras', 'SET', bin_req('SET', key => 'abc', extras => '1234',
                                         value => 'v')],
    ['SET without extras', 'SET', bin_req('SET', key => 'abc', value => 'v')],
    ['SET without key', 'SET', bin_req('SET', extras => set_extras(),
                                       value => 'v')],
    ['ADD without key', 'ADD', bin_req('ADD', extras => set_extras())],
    ['REPLACE with 12 extras', 'REPLACE',
     bin_req('REPLACE', key => 'abc', extras => '123456789012')],
    ['DELETE with extras', 'DELETE', bin_req('DELETE', key => 'witness',
                                             extras => '1234')],
    ['DELETE without key', 'DELETE', bin_req('DELETE')],
    ['INCREMENT with 8 extras', 'INCREMENT',
     bin_req('INCREMENT', key => 'n', extras => '12345678')],
    ['INCREMENT with a value', 'INCREMENT',
     bin_req('INCREMENT', key => 'n', extras => incr_extras(1, 1, 0),
             value => 'zz')],
    ['DECREMENT without key', 'DECREMENT',
     bin_req('DECREMENT', extras => incr_extras(1, 1, 0))],
    ['APPEND with extras', 'APPEND', bin_req('APPEND', key => 'witness',
                                             extras => set_extras(),
                                             value => 'x')],
    ['PREPEND without key', 'PREPEND', bin_req('PREPEND', value => 'x')],
    ['TOUCH without extras', 'TOUCH', bin_req('TOUCH', key => 'witness')],
    ['GAT without key', 'GAT', bin_req('GAT', extras => pack('N', 0))],
    ['GATK with 8 extras', 'GATK', bin_req('GATK', key => 'witness',
                                           extras => set_extras())],
    ['FLUSH with 8 extras', 'FLUSH', bin_req('FLUSH', extras => set_extras())],
    ['FLUSH with a key', 'FLUSH', bin_req('FLUSH', key => 'x')],
    ['NOOP with a value', 'NOOP', bin_req('NOOP', value => 'x')],
    ['VERSION with a key', 'VERSION', bin_req('VERSION', key => 'x')],
    ['QUIT with a value', 'QUIT', bin_req('QUIT', value => 'x')],
    ['STAT with extras', 'STAT', bin_req('STAT', extras => '1234')],
    ['SASL_AUTH without key', 'SASL_AUTH', bin_req('SASL_AUTH',
                                                   value => 'x')],
    ['SASL_LIST_MECHS with a value', 'SASL_LIST_MECHS',
     bin_req('SASL_LIST_MECHS', value => 'x')],
    ['GETQ with extras (quiet)', 'GETQ', bin_req('GETQ', key => 'abc',
                                                 extras => '1234')],
    ['DELETEQ with extras (quiet)', 'DELETEQ',
     bin_req('DELETEQ', key => 'witness', extras => '1234')],
    ['FLUSHQ with a key (quiet)', 'FLUSHQ', bin_req('FLUSHQ', key => 'x')],
    ['QUITQ with a value (quiet)', 'QUITQ', bin_req('QUITQ', value => 'x')],
);
for my $case (@einval) {
    my ($name, $op, $bytes) = @$case;
    my ($r, $c) = fresh($bytes);
    bin_is($r, bin_err($op, 'EINVAL'), "$name: EINVAL \"Invalid arguments\"");
    ok(bin_closed($srv, $c, 3), '... and the connection is closed');
}
healthy('frames with lengths their opcode does not allow');

# --- unknown opcodes: 0x81, body swallowed, connection goes on -----------
{
    my %known = map { $_ => 1 } 0x00 .. 0x1a, 0x1c .. 0x1e, 0x21 .. 0x24;
    my @unknown = grep { !$known{$_} } 0 .. 255;
    my $c = binary_sock();
    my @bad;
    for my $op (@unknown) {
        my $opq = 0x1000 + $op;
        my $r = bin_cmd($srv, $c, $op, opaque => $opq);
        push @bad, sprintf('%02x', $op)
            unless $r && $r->{raw} eq bin_err($op, 'UNKNOWN_COMMAND', $opq);
    }
    is("@bad", '', scalar(@unknown) . ' unknown opcodes (0x1b VERBOSITY,'
       . ' 0x1f, 0x20 without SASL, 0x25-0xff): UNKNOWN_COMMAND'
       . ' "Unknown command", opcode and opaque echoed');
    bin_is(bin_cmd($srv, $c, 'NOOP', opaque => 5), bin_res('NOOP', opaque => 5),
           '... on one connection that goes on');
    # a body made only of value bytes is skipped exactly
    for my $op (0x1f, 0x30, 0x7f, 0xff) {
        my $val = join '', map { chr(($_ * 13 + $op) % 256) } 1 .. 3000;
        bin_send($srv, $c, bin_req($op, value => $val, opaque => $op),
                 bin_req('NOOP', opaque => 6));
        bin_is(bin_read($srv, $c), bin_err($op, 'UNKNOWN_COMMAND', $op),
               sprintf('opcode 0x%02x with a 3000-byte body: Unknown command',
                       $op));
        bin_is(bin_read($srv, $c), bin_res('NOOP', opaque => 6),
               '... the body is skipped, the next frame answered');
    }
    # memcached 1.6 has no binary VERBOSITY
    bin_is(bin_cmd($srv, $c, 'VERBOSITY', opaque => 7),
           bin_err('VERBOSITY', 'UNKNOWN_COMMAND', 7),
           'VERBOSITY: Unknown command');
}
healthy('unknown opcodes');

# --- SASL opcodes on a server started without -S -----------------------
{
    my $c = binary_sock();
    bin_is(bin_cmd($srv, $c, 'SASL_LIST_MECHS', opaque => 1),
           bin_err('SASL_LIST_MECHS', 'UNKNOWN_COMMAND', 1),
           'SASL_LIST_MECHS without SASL: Unknown command');
    bin_send($srv, $c, bin_req('SASL_AUTH', key => 'PLAIN',
                               value => "\0user\0password", opaque => 2),
             bin_req('NOOP', opaque => 3));
    bin_is(bin_read($srv, $c), bin_err('SASL_AUTH', 'UNKNOWN_COMMAND', 2),
           'SASL_AUTH without SASL: Unknown command');
    bin_is(bin_read($srv, $c), bin_res('NOOP', opaque => 3),
           '... its data skipped, the next frame answered');
    bin_send($srv, $c, bin_req('SASL_STEP', key => 'PLAIN',
                               value => "\0user\0password", opaque => 4),
             bin_req('NOOP', opaque => 5));
    bin_is(bin_read($srv, $c), bin_err('SASL_STEP', 'UNKNOWN_COMMAND', 4),
           'SASL_STEP without SASL: Unknown command');
    bin_is(bin_read($srv, $c), bin_res('NOOP', opaque => 5),
           '... its data skipped, the next frame answered');
    bin_is(bin_cmd($srv, $c, 'GET', key => 'witness-t', opaque => 6),
           bin_res('GET', extras => pack('N', 17), value => 'text-side',
                   opaque => 6, cas => $srv->mem_cas('witness-t')),
           'no authentication needed without -S');
}

# --- values over the item size limit (-I) -------------------------------
{
    my $big = MemcTest->start('-I', '2m');
    my $c = $big->new_sock;
    my $ok = bin_cmd($big, $c, 'SET', key => 'v15', extras => set_extras(),
                     value => 'a' x (1536 * 1024));
    is($ok && $ok->{status}, 0, '-I 2m: a 1.5 MB value is stored');
    for my $op (qw(SET ADD REPLACE APPEND PREPEND)) {
        bin_cmd($big, $c, 'SET', key => "tl-$op", extras => set_extras(3, 0),
                value => 'small');
        my @ext = $op =~ /PEND/ ? () : (extras => set_extras(0, 0));
        bin_send($big, $c, bin_req($op, key => "tl-$op", @ext, opaque => 9,
                                   value => 'z' x (2 * 1024 * 1024 + 1)),
                 bin_req('NOOP', opaque => 10));
        bin_is(bin_read($big, $c, 10), bin_err($op, 'E2BIG', 9),
               "-I 2m: $op of 2 MB + 1: E2BIG \"Too large.\"");
        bin_is(bin_read($big, $c), bin_res('NOOP', opaque => 10),
               '... the value is skipped, the connection goes on');
        my $r = bin_cmd($big, $c, 'GET', key => "tl-$op");
        if ($op eq 'SET') {
            # memcached drops the old value when a SET fails for size
            bin_is($r, bin_err('GET', 'KEY_ENOENT'),
                   '... a failed SET removed the old value');
        } else {
            is($r && $r->{value}, 'small', "... a failed $op kept the old"
               . ' value');
        }
    }
    $big->stop;
}
{
    my $c = $srv->new_sock;
    bin_send($srv, $c, bin_req('SET', key => 'over1m', extras => set_extras(),
                               value => 'o' x (1024 * 1024 + 1), opaque => 3));
    bin_is(bin_read($srv, $c, 10), bin_err('SET', 'E2BIG', 3),
           'default -I (1 MB): SET of 1 MB + 1 is E2BIG');
}
healthy('values over -I');

# --- absurd body lengths ----------------------------------------------------
{
    my ($r, $c) = fresh(bin_req('GET', key => 'witness',
                                bodylen => 0x7fffffff));
    bin_is($r, bin_err('GET', 'EINVAL'),
           'GET declaring a 2 GB body: EINVAL at once');
    ok(bin_closed($srv, $c, 3), '... and the connection is closed');

    # memcached answers E2BIG only after it has read and dropped the
    # whole declared body, so nothing comes back while it waits for 2 GB;
    # E2BIG at once is accepted too
    $c = $srv->new_sock;
    $srv->send(bin_req('SET', key => 'absurd', extras => set_extras(),
                       bodylen => 0x7fffffff) . ('x' x 1000), $c);
    my $got = $srv->drain($c, 0.5);
    ok($got eq '' || $got eq bin_err('SET', 'E2BIG'),
       'SET declaring a 2 GB value: no reply (or E2BIG)')
        or diag(MemcBin::describe($got));
    close $c;
    healthy('a SET declaring a 2 GB value');

    $c = $srv->new_sock;
    $srv->send(bin_req(0x55, bodylen => 0x7fffffff) . ('y' x 1000), $c);
    $got = $srv->drain($c, 0.5);
    ok($got eq '' || $got eq bin_err(0x55, 'UNKNOWN_COMMAND'),
       'unknown opcode declaring a 2 GB body: no reply (or Unknown command)')
        or diag(MemcBin::describe($got));
    close $c;
    healthy('an unknown opcode declaring a 2 GB body');
    is(bin_cmd($srv, $wit, 'GET', key => 'absurd')->{status}, 1,
       'nothing stored from the absurd SET');
}

# --- frames cut short, then the client goes away --------------------------
{
    my $full = bin_req('SET', key => 'cut', extras => set_extras(1, 0),
                       value => 'v' x 100);
    my @cuts = (1, 12, 23, 24, 25, 31, 32, 34, 35, 100, length($full) - 1);
    for my $n (@cuts) {
        my $c = $srv->new_sock;
        $srv->send(substr($full, 0, $n), $c);
        close $c;
    }
    # and a truncated frame on a connection that stays open: no reply
    my $c = $srv->new_sock;
    $srv->send(substr($full, 0, 60), $c);
    ok(bin_no_reply($srv, $c, 0.3), 'half a SET: no reply while it waits');
    $srv->send(substr($full, 60), $c);
    my $r = bin_read($srv, $c);
    is($r && $r->{status}, 0, '... the rest of it completes the SET');
    bin_cmd($srv, $wit, 'DELETE', key => 'cut');
    # partial frames from 30 clients at once, all dropped
    my @socks = map { $srv->new_sock } 1 .. 30;
    $srv->send(substr($full, 0, 10 + $_ * 3), $socks[$_]) for 0 .. 29;
    close $_ for @socks;
    ok(wait_until(sub {
        bin_cmd($srv, $wit, 'GET', key => 'cut')->{status} == 1
            && $srv->stats->{curr_connections} <= 5 }, 5,
        'dropped connections to be closed'),
       'cut-off SETs stored nothing; their connections are gone');
}
healthy('frames cut short');

# --- the datatype byte is not checked ---------------------------------
bin_is(bin_cmd($srv, $wit, 'NOOP', datatype => 1, opaque => 8),
       bin_res('NOOP', opaque => 8), 'a non-zero datatype is ignored');

healthy('everything');
is($srv->stop, 0, 'the server exits cleanly on SIGTERM');

done_testing();
