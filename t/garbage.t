#!/usr/bin/perl
# Random bytes and truncated commands on several connections, while
# another connection checks that stored data is intact and that the
# server keeps answering.  Bounded in iterations and time.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcTest;

my $seed = $ENV{GARBAGE_SEED} // 20240601;
srand($seed);
note("seed $seed (set GARBAGE_SEED to replay)");

my $srv = MemcTest->start('-m', '64');
my $check = $srv->new_sock;

# reference data; garbage only ever names keys starting with "g"
my %keep;
for my $i (1 .. 50) {
    my $v = join '', map { chr(int rand 256) } 1 .. (1 + int rand 3000);
    $keep{"keep$i"} = $v;
    is($srv->mem_set("keep$i", $v, $i, 0, $check), "STORED\r\n",
       "stored keep$i") if $i == 1;
    $srv->mem_set("keep$i", $v, $i, 0, $check) if $i > 1;
}
my $keep_req = 'get ' . join(' ', sort keys %keep);
my $keep_raw = $srv->get_raw($keep_req, $check);
my $version = $srv->cmd('version', $check);

my @pieces = (
    "set g1 0 0 5\r\n", "set g2 0 0 100000\r\n", "get g1 g2 g3\r\n",
    "gets g", "add g3 1 2 3\r\nabc\r\n", "append g1 0 0 ", "incr g1 ",
    "decr g4 99999999999999999999\r\n", "touch g1 -1\r\n", "cas g1 0 0 1 ",
    "delete g", "get ", "\r\n", "\n", "\r", "\0", " ", "noreply",
    "set g5 0 0 -1\r\n", "set g6 4294967295 0 2000000\r\n",
    "VALUE g 0 1\r\n", "END\r\n", "stats\r\n", "stats items\r\n",
    "gat 0 g1\r\n", "version\r\n", "set " . ('g' x 300) . " 0 0 1\r\n",
    "set g7 0 0 3\r\nabcdef\r\n", "incr\r\n", "set g8 0 0 1 noreply\r\n",
    "\x80\x01\x00\x05", "\x80\x00\x00\x00\x00\x00\x00\x00",
);

sub garbage {
    my $out = '';
    for (1 .. 1 + int rand 6) {
        my $r = rand;
        if ($r < 0.4) {
            $out .= join '', map { chr(int rand 256) } 1 .. int rand 200;
        } elsif ($r < 0.5) {
            $out .= 'g' x int rand 5000;
        } else {
            my $p = $pieces[int rand @pieces];
            $out .= rand() < 0.3 ? substr($p, 0, int rand length $p) : $p;
        }
    }
    return $out;
}

my @socks;
my ($writes, $reconnects, $checks, $bad) = (0, 0, 0, 0);
my $deadline = time + 20;
for my $iter (1 .. 600) {
    last if time > $deadline;
    my $i = int rand 8;
    if (!$socks[$i] || rand() < 0.05) {
        close $socks[$i] if $socks[$i];
        $socks[$i] = eval { $srv->new_sock } or do { $bad++; next };
        $reconnects++;
    }
    my $ok = eval { MemcTest::_write_all($socks[$i], garbage(), 2); 1 };
    if (!$ok) {
        close $socks[$i];
        $socks[$i] = undef;    # the server hung up: fine
    }
    $writes++;
    # throw away whatever came back so the server never blocks on us
    for my $s (grep { defined } @socks) {
        MemcTest::_fill($s, time + 0.001);
        ${ MemcTest::_buf($s) } = '';
    }
    if ($iter % 25 == 0) {
        $checks++;
        my $raw = $srv->get_raw($keep_req, $check);
        my $v = $srv->cmd('version', $check);
        if ($raw ne $keep_raw || !defined $v || $v ne $version) {
            $bad++;
            diag("check failed at iteration $iter");
            last;
        }
    }
}
note("writes $writes, reconnects $reconnects, checks $checks");
is($bad, 0, "stored data and version intact during $checks checks");
ok($checks >= 5, 'enough checks ran');
close $_ for grep { defined } @socks;

is($srv->get_raw($keep_req, $check), $keep_raw, 'stored data intact at end');
is($srv->cmd('version', $check), $version, 'server answers version');
ok($srv->is_alive, 'server process alive');

# the server still works normally on a fresh connection
my $fresh = $srv->new_sock;
is($srv->mem_set('after', 'ok', 0, 0, $fresh), "STORED\r\n", 'set works');
is($srv->get_raw('get after', $fresh), "VALUE after 0 2\r\nok\r\nEND\r\n",
   'get works');
ok(MemcTest::wait_until(sub { $srv->stats(undef, $fresh)->{curr_connections}
                              <= 5 }, 5, 'garbage connections to close'),
   'closed garbage connections are released');

done_testing();
