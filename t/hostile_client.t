#!/usr/bin/perl
# Hostile clients on the client port (issue #15, items 1, 4 and 7).
#
# 1. One multi-get naming a key 70,000 times (text, gat, binary quiet
#    gets, meta) must not wrap the item's reference count: the key is
#    still readable afterwards and keys stored after it stay apart.
# 7. A client that never reads holds no more than a bounded reply: four
#    1 MB get lines, or a metadump of 300,000 items, do not grow the
#    server by the size of their replies; idle_timeout also closes
#    connections stuck in the middle of a value or of their replies.
# 4. With -Y, a connection that has not authenticated can neither
#    delete a key (a too-large set) nor hold item memory, nor send a
#    long line.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Select;
use Time::HiRes qw(time);
use MemcTest;
use MemcBin;

# Write $data to $s while reading its replies, until the reply read so
# far matches $done (a regex on its tail) or $timeout seconds pass.
# Returns the reply bytes.
sub exchange {
    my ($s, $data, $done, $timeout) = @_;
    my $deadline = time + ($timeout // 30);
    my ($out, $in) = (0, '');
    $s->blocking(0);
    my $sel = IO::Select->new($s);
    while (time < $deadline) {
        my $want_w = $out < length $data;
        my ($r, $w) = IO::Select->select($sel, $want_w ? $sel : undef,
                                         undef, 0.2);
        if ($w && @$w) {
            my $n = syswrite($s, $data, 65536, $out);
            $out += $n if defined $n;
        }
        if ($r && @$r) {
            my $n = sysread($s, my $buf, 1 << 20);
            last if defined $n && $n == 0;
            $in .= $buf if $n;
        }
        last if $out == length $data && $in =~ $done;
    }
    $s->blocking(1);
    return $in;
}

# Under AddressSanitizer freed memory sits in its quarantine: resident
# size says nothing there, so the sanitizer pass skips those checks.
my $SAN = defined $ENV{ASAN_OPTIONS};

sub rss_kb {
    my ($pid) = @_;
    my $st = MemcTest::slurp("/proc/$pid/status") // '';
    return $st =~ /^VmRSS:\s+(\d+)/m ? $1 : 0;
}

my $N = 70_000;

# --- 1. reference counts -----------------------------------------------
{
    my $srv = MemcTest->start('-m', '64');
    is($srv->mem_set('k', 'x'), "STORED\r\n", 'k stored');

    my $s = $srv->new_sock;
    my $r = exchange($s, 'get ' . join(' ', ('k') x $N) . "\r\n",
                     qr/END\r\n\z/);
    my $values = () = $r =~ /VALUE k 0 1\r\nx\r\n/g;
    is($values, $N, "text get naming k $N times: $N values");
    like($r, qr/\A(?:VALUE k 0 1\r\nx\r\n)+END\r\n\z/,
         '... one END, at the end');

    $r = exchange($s, 'gats 0  ' . join('  ', ('k') x $N) . "\r\n",
                  qr/END\r\n\z/);
    $values = () = $r =~ /VALUE k 0 1 \d+\r\nx\r\n/g;
    is($values, $N, "gats with double spaces: $N values");

    $r = exchange($s, ("mg k v\r\n" x $N) . "mn\r\n", qr/MN\r\n\z/);
    $values = () = $r =~ /VA 1\s*\r\nx\r\n/g;
    is($values, $N, "$N pipelined mg k v: $N values");

    my $b = $srv->new_sock;
    my $req = MemcBin::bin_req('GETKQ', key => 'k');
    $r = exchange($b, ($req x $N) . MemcBin::bin_req('NOOP'),
                  qr/\x81\x0a\0{22}\z/);
    is(length $r, $N * (24 + 4 + 1 + 1) + 24,
       "$N pipelined binary GETKQ: every reply");

    # Had the count wrapped, k's chunk would be free while linked: the
    # next items of its size would take it over.
    for my $i (1 .. 64) {
        $srv->mem_set("k$i", 'y');
    }
    my $t = $srv->new_sock;
    is($srv->get_raw('get k', $t), "VALUE k 0 1\r\nx\r\nEND\r\n",
       'k still reads x after 64 more small sets');
    is($srv->get_raw('get k33', $t), "VALUE k33 0 1\r\ny\r\nEND\r\n",
       '... and k33 reads y');
    is($srv->stats(undef, $t)->{curr_items}, 65, '... 65 items');
    is($srv->cmd('delete k', $t), "DELETED\r\n", 'k deletes');
    is($srv->get_raw('get k', $t), "END\r\n", '... and is gone');

    # A bad key after the first part was served still fails the line
    # before anything is sent, as memcached does.
    $srv->mem_set('k', 'x', 0, 0, $t);
    $r = exchange($s, 'get ' . join(' ', ('k') x 5000) . ' ' . ('z' x 251)
                  . "\r\nget k\r\n", qr/END\r\n\z/);
    is($r, "CLIENT_ERROR bad command line format\r\nVALUE k 0 1\r\nx\r\n"
           . "END\r\n", 'a 251-byte key at the end fails the whole line');
}

# --- 7. bounded memory for clients that do not read ---------------------
{
    my $srv = MemcTest->start('-m', '256');
    $srv->mem_set('k', 'x');
    my $base = rss_kb($srv->pid);
    my @idle;
    for (1 .. 4) {
        my $s = $srv->new_sock;
        $srv->send('get ' . join(' ', ('k') x 500_000) . "\r\n", $s);
        push @idle, $s;
    }
    my $grew = MemcTest::wait_until(
        sub { rss_kb($srv->pid) - $base > 24 * 1024 }, 3);
    SKIP: {
        skip 'resident size under ASan', 1 if $SAN;
        ok(!$grew, 'four 1 MB get lines nobody reads: the server grows by '
           . 'less than 24 MB (' . (rss_kb($srv->pid) - $base) . ' KB)');
    }
    close $_ for @idle;
    is($srv->cmd('version'), "VERSION " . $srv->stats->{version} . "\r\n",
       '... and answers afterwards');

}
{
    # 300,000 items: their metadump is about 25 MB of text.  A server of
    # its own, so that memory freed by the test above cannot hide it.
    my $srv = MemcTest->start('-m', '256');
    $srv->mem_set('k', 'x');
    my $load = join '', map { "set key$_ 0 0 1 noreply\r\nv\r\n" }
                        1 .. 300_000;
    my $l = $srv->new_sock;
    exchange($l, $load . "mn\r\n", qr/MN\r\n\z/, 60);
    is($srv->stats->{curr_items}, 300_001, '300,001 items loaded');
    my $base = rss_kb($srv->pid);
    my $d = $srv->new_sock;
    $srv->send("lru_crawler metadump all\r\n", $d);
    my $grew = MemcTest::wait_until(
        sub { rss_kb($srv->pid) - $base > 12 * 1024 }, 3);
    SKIP: {
        skip 'resident size under ASan', 1 if $SAN;
        ok(!$grew, 'metadump of 300,000 items nobody reads: the server '
           . 'grows by less than 12 MB (' . (rss_kb($srv->pid) - $base)
           . ' KB)');
    }
    my $dump = exchange($d, '', qr/^END\r\n\z/m, 60);
    my $lines = () = $dump =~ /^key=key\d+ /mg;
    cmp_ok($lines, '>=', 300_000, '... read afterwards: every item listed');
    like($dump, qr/\nEND\r\n\z/, '... one END, at the end');
}

# --- 7. stats detail: any client may turn it on and invent prefixes -----
{
    my $srv = MemcTest->start();
    is($srv->cmd('stats detail on'), "OK\r\n", 'stats detail on');
    my $s = $srv->new_sock;
    exchange($s, join('', map { "set p$_:x 0 0 1 noreply\r\nv\r\n" }
                          1 .. 12_000) . "mn\r\n", qr/MN\r\n\z/);
    my $dump = $srv->cmd_lines('stats detail dump', undef, qr/^END\r\n/);
    my $n = () = $dump =~ /^PREFIX /mg;
    is($n, 10_000, '12,000 prefixes: 10,000 tracked, no more');
    like($dump, qr/^PREFIX p1 get 0 hit 0 set 1 del 0\r\n/m,
         '... the first ones counted');
}

# --- 7. idle_timeout closes stuck connections ---------------------------
{
    my $srv = MemcTest->start('-o', 'idle_timeout=2');
    $srv->mem_set('big', 'b' x 500_000);
    my $nread = $srv->new_sock;
    $srv->send("set a 0 0 10\r\nabc", $nread);
    my $write = $srv->new_sock;
    $srv->send("get big\r\n" x 200, $write);
    my $busy = $srv->new_sock;
    my $t0 = time;
    # The second socket must not be read: that would unstick it.
    ok(MemcTest::wait_until(sub {
           $srv->stats(undef, $busy)->{idle_kicks} >= 2 }, 10),
       'idle_timeout closes a connection stuck in a value, and one that '
       . 'does not read its replies (idle_kicks 2)');
    cmp_ok(time - $t0, '>=', 1.5, '... not before the timeout');
    ok($srv->closed_within($nread, 1), '... the first is closed');
    is($srv->mem_get('a', $busy), undef, 'the half-sent value is not stored');
}

# --- 4. -Y: nothing before authentication -------------------------------
{
    my $file = MemcTest::tmp_dir() . '/auth';
    open my $fh, '>', $file or die "$file: $!";
    print $fh "alice:secret1\n";
    close $fh;
    chmod 0600, $file;
    my $UNAUTH = "CLIENT_ERROR unauthenticated\r\n";
    my $srv = MemcTest->start({args => ['-Y', $file], ready => sub {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $_[0]->port, Timeout => 1)
            or return 0;
        print $s "version\r\n";
        my $line = MemcTest::_read_line($s, 1);
        return defined $line && $line eq $UNAUTH;
    }});
    my $a = $srv->new_sock;
    $srv->send("set x 0 0 13\r\nalice secret1\r\n", $a);
    is($srv->read_line($a), "STORED\r\n", 'alice authenticates');
    is($srv->mem_set('victim', 'keep me', 0, 0, $a), "STORED\r\n",
       'victim stored');
    my $before = $srv->stats(undef, $a)->{auth_errors};

    my $u = $srv->new_sock;
    $srv->send("set victim 0 0 2000000\r\n", $u);
    is($srv->read_line($u), "CLIENT_ERROR authentication failure\r\n",
       'unauthenticated too-large set: authentication failure');
    is($srv->mem_get('victim', $a), 'keep me', '... and victim is still there');
    cmp_ok($srv->stats(undef, $a)->{auth_errors}, '>', $before,
           '... counted in auth_errors');

    my @held;
    for (1 .. 20) {
        my $s = $srv->new_sock;
        $srv->send("set x 0 0 1000\r\nalice ", $s);
        push @held, $s;
        $s = $srv->new_sock;
        $srv->send("set x 0 0 500000\r\n" . ('p' x 1000), $s);
        push @held, $s;
    }
    MemcTest::wait_until(sub { $srv->stats(undef, $a)->{curr_connections}
                               >= 40 }, 5);
    my $slabs = $srv->stats('slabs', $a);
    my $used = 0;
    $used += $slabs->{$_} for grep { /:used_chunks\z/ } keys %$slabs;
    is($used, 1, '40 half-sent unauthenticated sets hold no item memory '
       . '(1 chunk in use: victim)');
    close $_ for @held;

    my $g = $srv->new_sock;
    $srv->send('get ' . ('k ' x 4000), $g);
    ok($srv->closed_within($g, 5),
       'an unauthenticated 8 KB get line without end: closed');
    my $v = $srv->new_sock;
    $srv->send("set x 0 0 13\r\nalice secret1\r\nget victim\r\n", $v);
    is($srv->read_line($v), "STORED\r\n", 'authentication still works');
    is($srv->read_line($v), "VALUE victim 0 7\r\n", '... and then reads');
}

# --- 4. -S: before SASL succeeds, no large frame ------------------------
{
    my $pwdb = MemcTest::tmp_dir() . '/pwdb';
    open my $fh, '>', $pwdb or die "$pwdb: $!";
    print $fh "alice:secret1\n";
    close $fh;
    chmod 0600, $pwdb;
    my $srv = MemcBin::Server->start('-S', '-o', "sasl_pwdb=$pwdb");
    my $s = $srv->new_sock;
    bin_send($srv, $s, bin_req('SASL_AUTH', key => 'PLAIN',
                               bodylen => 5 + 100_000));
    my $r = bin_read($srv, $s, 3);
    is($r && $r->{status}, 0x20,
       'SASL_AUTH announcing a 100 KB body: auth error at once');
    ok($srv->closed_within($s, 3), '... and the connection is closed');
}

done_testing();
