#!/usr/bin/perl
# Binary protocol quiet commands and pipelining: every quiet opcode is
# silent on success and still answers its errors (with its own opcode
# and the request's opaque); replies come strictly in request order in
# a pipelined batch (the GETKQ x N + NOOP multi-get, SETQ batches,
# errors in the middle of a batch, read-your-writes inside a batch);
# a batch delivered byte by byte gives the same bytes; a batch whose
# replies are far larger than the socket buffers completes.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Select;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use Time::HiRes qw(time sleep);
use MemcTest;
use MemcBin;

my $srv = MemcTest->start();
my $s = $srv->new_sock;

sub bc { return bin_cmd($srv, $s, @_) // {}; }

# send @frames and a NOOP (opaque $noop) in one write; return the raw
# bytes of every reply up to and including the NOOP's (undef if the
# NOOP reply never came)
sub batch {
    my ($frames, $noop, $sock) = @_;
    $sock ||= $s;
    $noop //= 0xfeedf00d;
    bin_send($srv, $sock, @$frames, bin_req('NOOP', opaque => $noop));
    my $raw = '';
    while (my $r = bin_read($srv, $sock, 10)) {
        $raw .= $r->{raw};
        return $raw if $r->{opcode} == 0x0a && $r->{opaque} == $noop;
    }
    return undef;
}

# compare two reply streams frame by frame, naming the first difference
sub stream_is {
    my ($got, $want, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    if (defined $got && $got eq $want) {
        return pass($name);
    }
    fail($name);
    my ($i, $g, $w) = (0, $got // '', $want);
    while (length $g || length $w) {
        my $gr = MemcBin::bin_resp($g);
        my $wr = MemcBin::bin_resp($w);
        my $gf = $gr ? $gr->{raw} : $g;
        my $wf = $wr ? $wr->{raw} : $w;
        if ($gf ne $wf) {
            diag("reply #$i differs\n     got: "
                 . MemcBin::describe(length $gf ? $gf : undef)
                 . "\nexpected: "
                 . MemcBin::describe(length $wf ? $wf : undef));
            last;
        }
        substr($g, 0, length $gf, '');
        substr($w, 0, length $wf, '');
        $i++;
    }
    return 0;
}

my $NOOP = bin_res('NOOP', opaque => 0xfeedf00d);

# --- each quiet command: silent on success, errors answered ------------
my %cas;
sub setk {
    my ($k, $v, $f) = @_;
    my $r = bc('SET', key => $k, extras => set_extras($f // 0, 0),
               value => $v);
    $cas{$k} = $r->{cas};
    return $r;
}

setk('q-exists', 'here', 5);
my @cases = (
    # name, request, expected error reply (undef: silent)
    ['SETQ new key', bin_req('SETQ', key => 'q-new', opaque => 1,
                             extras => set_extras(9, 0), value => 'nv')],
    ['SETQ stale CAS', bin_req('SETQ', key => 'q-exists', opaque => 2,
                               extras => set_extras(0, 0), value => 'x',
                               cas => $cas{'q-exists'} + 999),
     bin_err('SETQ', 'KEY_EEXISTS', 2)],
    ['SETQ CAS on a missing key', bin_req('SETQ', key => 'q-none',
                                          opaque => 3, cas => 12345,
                                          extras => set_extras(0, 0),
                                          value => 'x'),
     bin_err('SETQ', 'KEY_ENOENT', 3)],
    ['SETQ too large', bin_req('SETQ', key => 'q-big', opaque => 4,
                               extras => set_extras(0, 0),
                               value => 'b' x (1024 * 1024 + 1)),
     bin_err('SETQ', 'E2BIG', 4)],
    ['ADDQ existing', bin_req('ADDQ', key => 'q-exists', opaque => 5,
                              extras => set_extras(0, 0), value => 'x'),
     bin_err('ADDQ', 'KEY_EEXISTS', 5)],
    ['ADDQ new', bin_req('ADDQ', key => 'q-added', opaque => 6,
                         extras => set_extras(6, 0), value => 'av')],
    ['REPLACEQ missing', bin_req('REPLACEQ', key => 'q-none', opaque => 7,
                                 extras => set_extras(0, 0), value => 'x'),
     bin_err('REPLACEQ', 'KEY_ENOENT', 7)],
    ['REPLACEQ existing', bin_req('REPLACEQ', key => 'q-added', opaque => 8,
                                  extras => set_extras(7, 0), value => 'rv')],
    ['APPENDQ existing', bin_req('APPENDQ', key => 'q-added', opaque => 9,
                                 value => '+a')],
    ['APPENDQ missing', bin_req('APPENDQ', key => 'q-none', opaque => 10,
                                value => 'x'),
     bin_err('APPENDQ', 'NOT_STORED', 10)],
    ['PREPENDQ existing', bin_req('PREPENDQ', key => 'q-added',
                                  opaque => 11, value => 'p+')],
    ['PREPENDQ missing', bin_req('PREPENDQ', key => 'q-none', opaque => 12,
                                 value => 'x'),
     bin_err('PREPENDQ', 'NOT_STORED', 12)],
    ['APPENDQ too large', bin_req('APPENDQ', key => 'q-added', opaque => 13,
                                  value => 'b' x (1024 * 1024 + 1)),
     bin_err('APPENDQ', 'E2BIG', 13)],
    ['INCREMENTQ miss, created', bin_req('INCREMENTQ', key => 'q-cnt',
                                         opaque => 14,
                                         extras => incr_extras(1, 40, 0))],
    ['INCREMENTQ hit', bin_req('INCREMENTQ', key => 'q-cnt', opaque => 15,
                               extras => incr_extras(5, 0, 0))],
    ['DECREMENTQ hit', bin_req('DECREMENTQ', key => 'q-cnt', opaque => 16,
                               extras => incr_extras(3, 0, 0))],
    ['INCREMENTQ miss, exptime 0xffffffff',
     bin_req('INCREMENTQ', key => 'q-none', opaque => 17,
             extras => incr_extras(1, 0, 0xffffffff)),
     bin_err('INCREMENTQ', 'KEY_ENOENT', 17)],
    ['DECREMENTQ miss, exptime 0xffffffff',
     bin_req('DECREMENTQ', key => 'q-none', opaque => 18,
             extras => incr_extras(1, 0, 0xffffffff)),
     bin_err('DECREMENTQ', 'KEY_ENOENT', 18)],
    ['INCREMENTQ non-numeric', bin_req('INCREMENTQ', key => 'q-exists',
                                       opaque => 19,
                                       extras => incr_extras(1, 0, 0)),
     bin_err('INCREMENTQ', 'DELTA_BADVAL', 19)],
    ['DECREMENTQ non-numeric', bin_req('DECREMENTQ', key => 'q-exists',
                                       opaque => 20,
                                       extras => incr_extras(1, 0, 0)),
     bin_err('DECREMENTQ', 'DELTA_BADVAL', 20)],
    ['GETQ miss', bin_req('GETQ', key => 'q-none', opaque => 21)],
    ['GETKQ miss', bin_req('GETKQ', key => 'q-none', opaque => 22)],
    ['GATQ miss', bin_req('GATQ', key => 'q-none', opaque => 23,
                          extras => pack('N', 0))],
    ['GATKQ miss', bin_req('GATKQ', key => 'q-none', opaque => 24,
                           extras => pack('N', 0))],
    ['DELETEQ missing', bin_req('DELETEQ', key => 'q-none', opaque => 25),
     bin_err('DELETEQ', 'KEY_ENOENT', 25)],
    ['DELETEQ wrong CAS', bin_req('DELETEQ', key => 'q-exists', opaque => 26,
                                  cas => $cas{'q-exists'} + 999),
     bin_err('DELETEQ', 'KEY_EEXISTS', 26)],
    ['DELETEQ existing', bin_req('DELETEQ', key => 'q-new', opaque => 27)],
);
for my $c (@cases) {
    my ($name, $req, $err) = @$c;
    stream_is(batch([$req]), ($err // '') . $NOOP,
              $err ? "$name: error reply, then the NOOP"
                   : "$name: silent, only the NOOP");
}
# the silent ones did their work
{
    my $r = bc('GETK', key => 'q-added');
    is($r && $r->{value}, 'p+rv+a', 'ADDQ/REPLACEQ/APPENDQ/PREPENDQ applied');
    is($r && $r->{extras}, pack('N', 7), '... flags of the REPLACEQ');
    is(bc('GET', key => 'q-cnt')->{value}, '42', 'INCREMENTQ/DECREMENTQ'
       . ' applied (40 + 5 - 3)');
    is(bc('GET', key => 'q-new')->{status}, 1, 'DELETEQ applied');
    is(bc('GET', key => 'q-exists')->{value}, 'here',
       'failed quiet commands changed nothing');
    is(bc('GET', key => 'q-big')->{status}, 1, 'too-large SETQ stored nothing');
}
# quiet hits answer
{
    my $c = $cas{'q-exists'};
    stream_is(batch([bin_req('GETQ', key => 'q-exists', opaque => 31)]),
              bin_res('GETQ', extras => pack('N', 5), value => 'here',
                      opaque => 31, cas => $c) . $NOOP,
              'GETQ hit: flags and value, opcode 0x09');
    stream_is(batch([bin_req('GETKQ', key => 'q-exists', opaque => 32)]),
              bin_res('GETKQ', extras => pack('N', 5), key => 'q-exists',
                      value => 'here', opaque => 32, cas => $c) . $NOOP,
              'GETKQ hit: flags, key and value, opcode 0x0d');
    stream_is(batch([bin_req('GATQ', key => 'q-exists', opaque => 33,
                             extras => pack('N', 0))]),
              bin_res('GATQ', extras => pack('N', 5), value => 'here',
                      opaque => 33, cas => $c) . $NOOP,
              'GATQ hit: flags and value, opcode 0x1e');
    stream_is(batch([bin_req('GATKQ', key => 'q-exists', opaque => 34,
                             extras => pack('N', 0))]),
              bin_res('GATKQ', extras => pack('N', 5), key => 'q-exists',
                      value => 'here', opaque => 34, cas => $c) . $NOOP,
              'GATKQ hit: flags, key and value, opcode 0x24');
}

# --- GETKQ x N + NOOP multi-get ------------------------------------------
my (@keys, %val, %flg, %kcas);
for my $i (1 .. 100) {
    my $k = "mk-$i";
    push @keys, $k;
    next if $i % 3 == 0;            # every third key missing
    $val{$k} = "value-$i-" . ('x' x ($i * 3));
    $flg{$k} = $i * 1000;
    my $r = bc('SET', key => $k, extras => set_extras($flg{$k}, 0),
               value => $val{$k});
    $kcas{$k} = $r->{cas};
}
{
    # a fixed shuffle, with repeats
    my @order = map { $keys[($_ * 37) % 100] } 0 .. 99;
    push @order, @order[0 .. 9];
    my (@req, $want) = ();
    $want = '';
    my $opq = 1000;
    for my $k (@order) {
        $opq++;
        push @req, bin_req('GETKQ', key => $k, opaque => $opq);
        $want .= bin_res('GETKQ', extras => pack('N', $flg{$k}), key => $k,
                         value => $val{$k}, opaque => $opq,
                         cas => $kcas{$k}) if exists $val{$k};
    }
    stream_is(batch(\@req), $want . $NOOP,
              'GETKQ x 110 + NOOP: hits in request order, misses silent');
    @req = ();
    $want = '';
    for my $k (@order) {
        $opq++;
        push @req, bin_req('GETQ', key => $k, opaque => $opq);
        $want .= bin_res('GETQ', extras => pack('N', $flg{$k}),
                         value => $val{$k}, opaque => $opq,
                         cas => $kcas{$k}) if exists $val{$k};
    }
    stream_is(batch(\@req), $want . $NOOP,
              'GETQ x 110 + NOOP: same, opaques tell the hits apart');
    my @miss = grep { !exists $val{$_} } @keys;
    stream_is(batch([map { bin_req('GETKQ', key => $_) } @miss]), $NOOP,
              'a multi-get of only misses: just the NOOP');
}

# --- SETQ batches ----------------------------------------------------------
{
    my @req = map { bin_req('SETQ', key => "sq-$_", opaque => $_,
                            extras => set_extras($_, 0),
                            value => "sv$_" x ($_ % 5 + 1)) } 1 .. 500;
    stream_is(batch(\@req), $NOOP, '500 SETQ + NOOP: only the NOOP');
    my $got = batch([map { bin_req('GETKQ', key => "sq-$_", opaque => $_) }
                     1 .. 500]);
    my @r;
    while (defined $got && length $got) {
        my $r = MemcBin::bin_resp($got) or last;
        substr($got, 0, length $r->{raw}, '');
        push @r, $r;
    }
    is(scalar @r, 501, 'all 500 read back, then the NOOP');
    my @bad = grep {
        my $i = $_ + 1;
        my $r = $r[$_];
        !($r->{opaque} == $i && $r->{key} eq "sq-$i"
          && $r->{value} eq "sv$i" x ($i % 5 + 1)
          && $r->{extras} eq pack('N', $i) && $r->{cas} > 0)
    } 0 .. 499;
    is(scalar @bad, 0, 'each in order with its value, flags and a CAS');
    my %c = map { $_->{cas} => 1 } @r[0 .. 499];
    is(scalar keys %c, 500, 'every stored item has its own CAS');
}

# --- errors and non-quiet replies in the middle of a batch --------------
{
    setk('mid-a', 'aaa', 1);
    my $ca = $cas{'mid-a'};
    my @req = (
        bin_req('SETQ', key => 'mid-b', opaque => 1,
                extras => set_extras(2, 0), value => 'bbb'),
        bin_req('ADDQ', key => 'mid-a', opaque => 2,
                extras => set_extras(0, 0), value => 'x'),
        bin_req('GETQ', key => 'mid-none', opaque => 3),
        bin_req('DELETEQ', key => 'mid-none', opaque => 4),
        bin_req('GETKQ', key => 'mid-a', opaque => 5),
        bin_req('INCREMENTQ', key => 'mid-a', opaque => 6,
                extras => incr_extras(1, 0, 0)),
        bin_req('VERSION', opaque => 7),
        bin_req('GET', key => 'mid-none', opaque => 8),
        bin_req('APPENDQ', key => 'mid-a', opaque => 9, value => '!'),
        bin_req('GETQ', key => 'mid-a', opaque => 10),
        bin_req(0x55, opaque => 11),
        bin_req('REPLACEQ', key => 'mid-none', opaque => 12,
                extras => set_extras(0, 0), value => 'x'),
    );
    my $got = batch(\@req);
    my $ver = bc('VERSION')->{value};
    # the CAS of mid-a after the APPENDQ is only known afterwards
    my $r = bc('GET', key => 'mid-a');
    my $want = bin_err('ADDQ', 'KEY_EEXISTS', 2)
        . bin_err('DELETEQ', 'KEY_ENOENT', 4)
        . bin_res('GETKQ', extras => pack('N', 1), key => 'mid-a',
                  value => 'aaa', opaque => 5, cas => $ca)
        . bin_err('INCREMENTQ', 'DELTA_BADVAL', 6)
        . bin_res('VERSION', value => $ver, opaque => 7)
        . bin_err('GET', 'KEY_ENOENT', 8)
        . bin_res('GETQ', extras => pack('N', 1), value => 'aaa!',
                  opaque => 10, cas => $r->{cas})
        . bin_err(0x55, 'UNKNOWN_COMMAND', 11)
        . bin_err('REPLACEQ', 'KEY_ENOENT', 12)
        . $NOOP;
    stream_is($got, $want, 'a mixed batch: errors, hits and non-quiet'
              . ' replies strictly in request order');
    is(bc('GET', key => 'mid-b')->{value}, 'bbb', 'its SETQ stored');
}

# --- read-your-writes inside one batch -----------------------------------
{
    my @req = (
        bin_req('GETQ', key => 'ryw', opaque => 1),
        bin_req('SETQ', key => 'ryw', opaque => 2,
                extras => set_extras(1, 0), value => 'one'),
        bin_req('GETQ', key => 'ryw', opaque => 3),
        bin_req('DELETEQ', key => 'ryw', opaque => 4),
        bin_req('GETQ', key => 'ryw', opaque => 5),
        bin_req('ADDQ', key => 'ryw', opaque => 6,
                extras => set_extras(2, 0), value => 'two'),
        bin_req('INCREMENTQ', key => 'ryw-n', opaque => 7,
                extras => incr_extras(1, 10, 0)),
        bin_req('INCREMENTQ', key => 'ryw-n', opaque => 8,
                extras => incr_extras(1, 10, 0)),
        bin_req('GETKQ', key => 'ryw', opaque => 9),
        bin_req('GETKQ', key => 'ryw-n', opaque => 10),
    );
    my $got = batch(\@req);
    my @r;
    while (defined $got && length $got) {
        my $r = MemcBin::bin_resp($got) or last;
        substr($got, 0, length $r->{raw}, '');
        push @r, $r;
    }
    is_deeply([map { [$_->{opaque}, $_->{status}, $_->{value}] } @r],
              [[3, 0, 'one'], [9, 0, 'two'], [10, 0, '11'],
               [0xfeedf00d, 0, '']],
              'each command in a batch sees the ones before it');
}

# --- a batch delivered a few bytes at a time -------------------------
{
    setk('frag', 'fragv', 3);
    my @req = (
        bin_req('SETQ', key => 'frag2', opaque => 1,
                extras => set_extras(4, 0), value => 'f2' x 40),
        bin_req('GETK', key => 'frag', opaque => 2),
        bin_req('ADDQ', key => 'frag', opaque => 3,
                extras => set_extras(0, 0), value => 'x'),
        bin_req('GETKQ', key => 'frag2', opaque => 4),
        bin_req('INCREMENT', key => 'fragn', opaque => 5,
                extras => incr_extras(1, 7, 0)),
        bin_req('NOOP', opaque => 6),
    );
    my $f = $srv->new_sock;
    setsockopt($f, IPPROTO_TCP, TCP_NODELAY, 1);
    my $bytes = join '', @req;
    my $i = 0;
    while ($i < length $bytes) {
        my $n = 1 + $i % 5;
        $srv->send(substr($bytes, $i, $n), $f);
        $i += $n;
        sleep 0.001;
    }
    my @r;
    while (my $r = bin_read($srv, $f, 5)) {
        push @r, $r;
        last if $r->{opaque} == 6;
    }
    my $f2 = bc('GET', key => 'frag2');
    my $fn = bc('GET', key => 'fragn');
    stream_is(join('', map { $_->{raw} } @r),
              bin_res('GETK', extras => pack('N', 3), key => 'frag',
                      value => 'fragv', opaque => 2, cas => $cas{frag})
              . bin_err('ADDQ', 'KEY_EEXISTS', 3)
              . bin_res('GETKQ', extras => pack('N', 4), key => 'frag2',
                        value => 'f2' x 40, opaque => 4, cas => $f2->{cas})
              . bin_res('INCREMENT', value => pack('Q>', 7), opaque => 5,
                        cas => $fn->{cas})
              . bin_res('NOOP', opaque => 6),
              'a batch sent 1-5 bytes at a time: same replies');
}

# --- replies far larger than the socket buffers ---------------------------
# write and read at the same time: the server must keep reading while
# its replies wait to be sent
{
    my $val = join '', map { chr(65 + $_ % 26) } 1 .. 2000;
    for my $i (1 .. 50) {
        bc('SET', key => "bulk-$i", extras => set_extras($i, 0),
           value => $val);
    }
    my $n = 2500;
    my $req = join '', map { bin_req('GETK', key => 'bulk-' . (1 + $_ % 50),
                                     opaque => $_) } 1 .. $n;
    $req .= bin_req('NOOP', opaque => 0xfeedf00d);
    my $b = $srv->new_sock;
    $b->blocking(0);
    my ($off, $in) = (0, '');
    my $deadline = time + 30;
    my $sel = IO::Select->new($b);
    while (time < $deadline) {
        my ($rd, $wr) = IO::Select->select($sel,
                                           $off < length $req ? $sel : undef,
                                           undef, 1);
        if ($wr && @$wr) {
            my $w = syswrite($b, $req, 65536, $off);
            $off += $w if defined $w;
        }
        if ($rd && @$rd) {
            my $got = sysread($b, $in, 1 << 20, length $in);
            last if defined $got && $got == 0;
        }
        last if length($in) >= 24
            && substr($in, -24) eq bin_res('NOOP', opaque => 0xfeedf00d);
    }
    $b->blocking(1);
    my ($cnt, $ok) = (0, 1);
    while (length $in) {
        my $r = MemcBin::bin_resp($in) or last;
        substr($in, 0, length $r->{raw}, '');
        last if $r->{opcode} == 0x0a;
        $cnt++;
        my $k = 'bulk-' . (1 + $cnt % 50);
        $ok = 0 unless $r->{opaque} == $cnt && $r->{key} eq $k
                       && $r->{value} eq $val
                       && $r->{extras} eq pack('N', 1 + $cnt % 50);
    }
    is($cnt, $n, "$n GETK replies (~5 MB) while the requests are still"
       . ' being written');
    ok($ok, '... each in order with the right key, flags and value');
}

bin_is(bc('NOOP', opaque => 1), bin_res('NOOP', opaque => 1),
       'connection still in sync at the end');

done_testing();
