#!/usr/bin/perl
# Pipelining: many commands in one write answer in order; commands
# split across writes at every byte boundary; 1000 gets in one write.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(sleep);
use MemcTest;

my $srv = MemcTest->start();

# a script of commands and the exact reply it must produce, for key
# suffix $n (fresh keys each time so runs do not interfere)
sub script {
    my ($n) = @_;
    my $req = "set a$n 1 0 3\r\nabc\r\n"
            . "get a$n\r\n"
            . "add a$n 0 0 1\r\nx\r\n"
            . "set n$n 0 0 2\r\n41\r\n"
            . "incr n$n 1\r\n"
            . "append a$n 0 0 2\r\n\r\n\r\n"
            . "get a$n n$n miss$n\r\n"
            . "delete a$n\r\n"
            . "delete a$n noreply\r\n"
            . "touch n$n 100\r\n"
            . "bogus\r\n"
            . "version\r\n";
    my $rep = "STORED\r\n"
            . "VALUE a$n 1 3\r\nabc\r\nEND\r\n"
            . "NOT_STORED\r\n"
            . "STORED\r\n"
            . "42\r\n"
            . "STORED\r\n"
            . "VALUE a$n 1 5\r\nabc\r\n\r\nVALUE n$n 0 2\r\n42\r\nEND\r\n"
            . "DELETED\r\n"
            . "TOUCHED\r\n"
            . "ERROR\r\n";
    return ($req, $rep);
}

my $version = $srv->cmd('version');
like($version, qr/\AVERSION \S+\r\n\z/, 'version');

# read until the reply ends with the version line
sub read_reply {
    my ($s, $want_len) = @_;
    my $got = $srv->read_bytes($want_len, $s, 5);
    return $got;
}

# 1. whole script in one write
{
    my $s = $srv->new_sock;
    my ($req, $rep) = script(0);
    $srv->send($req, $s);
    my $want = $rep . $version;
    is(read_reply($s, length $want), $want, 'one write: replies in order');
    is($srv->drain($s, 0.1), '', 'and nothing more');
}

# 2. the script split in two at every byte boundary
{
    my $s = $srv->new_sock;
    setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
    my ($req0) = script('s1');
    my $len = length $req0;    # later keys are longer; cut in 1..$len-1
    my $bad = 0;
    for my $i (1 .. $len - 1) {
        my ($req, $rep) = script("s$i");
        $srv->send(substr($req, 0, $i), $s);
        sleep 0.001;
        $srv->send(substr($req, $i), $s);
        my $want = $rep . $version;
        my $got = read_reply($s, length $want);
        if (!defined $got || $got ne $want) {
            $bad++;
            diag("split at $i: got " . ($got // 'undef')) if $bad < 3;
        }
    }
    is($bad, 0, "split at each of " . ($len - 1) . " byte boundaries");
}

# 3. one byte per write
{
    my $s = $srv->new_sock;
    setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
    my ($req, $rep) = script('bytewise');
    for my $c (split //, $req) {
        $srv->send($c, $s);
        sleep 0.0005;
    }
    my $want = $rep . $version;
    is(read_reply($s, length $want), $want, 'one byte per write');
}

# 4. 1000 gets in one write, and a get of 1000 keys
{
    my $s = $srv->new_sock;
    my $sets = join '', map { "set key$_ 0 0 " . length("val$_")
                              . " noreply\r\nval$_\r\n" } 1 .. 1000;
    $srv->send($sets, $s);
    my $req = join '', map { "get key$_\r\n" } 1 .. 1000;
    $srv->send($req, $s);
    my $want = join '', map {
        "VALUE key$_ 0 " . length("val$_") . "\r\nval$_\r\nEND\r\n"
    } 1 .. 1000;
    is(read_reply($s, length $want), $want, '1000 gets in one write');

    my $line = 'get ' . join(' ', map { "key$_" } 1 .. 1000) . "\r\n";
    $srv->send($line, $s);
    my $want2 = join('', map {
        "VALUE key$_ 0 " . length("val$_") . "\r\nval$_\r\n"
    } 1 .. 1000) . "END\r\n";
    is(read_reply($s, length $want2), $want2,
       'one get line with 1000 keys (' . length($line) . ' bytes)');

    my $mixed = join '', map { "get key$_ nokey$_\r\nincr nokey$_ 1\r\n" }
                1 .. 300;
    $srv->send($mixed, $s);
    my $want3 = join '', map {
        "VALUE key$_ 0 " . length("val$_") . "\r\nval$_\r\nEND\r\nNOT_FOUND\r\n"
    } 1 .. 300;
    is(read_reply($s, length $want3), $want3, '600 mixed commands in order');
}

# 5. a large value followed by a get in the same write
{
    my $s = $srv->new_sock;
    my $v = join '', map { chr($_ % 251) } 1 .. 500000;
    $srv->send("set big 0 0 500000\r\n$v\r\nget big\r\nversion\r\n", $s);
    my $want = "STORED\r\nVALUE big 0 500000\r\n$v\r\nEND\r\n$version";
    my $got = read_reply($s, length $want);
    ok(defined $got && $got eq $want, '500 KB set + get + version in one write');
}

# 6. the client reading slowly: a big pipelined reply is not lost
{
    my $s = $srv->new_sock;
    my $v = 'z' x 100000;
    $srv->mem_set('slow', $v, 0, 0, $s);
    $srv->send("get slow\r\n" x 50, $s);
    sleep 0.3;    # a slow reader on purpose: the server's writes block
    my $one = "VALUE slow 0 100000\r\n$v\r\nEND\r\n";
    my $got = read_reply($s, 50 * length $one);
    ok(defined $got && $got eq $one x 50, '50 x 100 KB replies, read late');
}

done_testing();
