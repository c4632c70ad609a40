#!/usr/bin/perl
# Bounded fuzz of the meta protocol: random and mutated mg / ms / md /
# ma / mn / me lines and data blocks, on many short connections, sent
# in random pieces and dropped at random points.  Afterwards the server
# must still run, answer "version" on a fresh connection, and keep the
# keys stored before the fuzz intact.
#
# The seed is fixed and printed; FUZZ_SEED=<n> replays another one.
# FUZZ_SECONDS (default 10, at most 20) bounds the time spent fuzzing.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;
use MemcMeta;
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use IO::Select;
use IO::Socket::INET;
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(time);

my $seed = $ENV{FUZZ_SEED} // 20240611;
my $budget = $ENV{FUZZ_SECONDS} // 10;
$budget = 20 if $budget > 20;
diag("FUZZ_SEED=$seed (set FUZZ_SEED to replay), ${budget}s budget");
srand($seed);

my $srv = MemcTest->start();

# --- data that must survive ---------------------------------------------
my %keep;
for my $i (1 .. 20) {
    my $v = join '', map { chr(($i * 31 + $_) % 256) } 1 .. 50 + $i * 13;
    $keep{"sentinel_keep_$i"} = [$v, $i * 1000];
}
my $stored = grep { $srv->store('set', $_, @{ $keep{$_} }) eq "STORED\r\n" }
             sort keys %keep;
is($stored, 20, 'stored 20 keys with classic set');
is(exchange($srv, "ms sentinel_meta 5 F77 T0\r\nmeta!\r\n"), "HD\r\n",
   'stored a key with ms');
my $keep_raw = $srv->get_raw('gets ' . join ' ', sort keys %keep);
my $meta_raw = mcmd($srv, 'mg sentinel_meta v f t c');

# --- generators -----------------------------------------------------------
sub pick { return $_[int rand @_] }

sub rand_bytes {
    my ($n) = @_;
    return join '', map { chr int rand 256 } 1 .. $n;
}

sub rand_key {
    my $r = rand;
    return 'fz' . int(rand 20) if $r < 0.55;
    return 'fz' . ('k' x (240 + int rand 20)) if $r < 0.62;
    return encode_base64(rand_bytes(1 + int rand 40), '') if $r < 0.75;
    return pick('', ' ', 'a b', "\t", "\x00", "k\x01\x7f\xff");
}

sub rand_num {
    return pick(0, 1, 2, 30, 100, -1, -100, 4294967295, 4294967296,
                18446744073709551615, '18446744073709551616',
                '99999999999999999999999', 'x', '', '1x', ' ', '+5',
                int rand 1000, -(int rand 1000));
}

my @FLAGS = (qw(b c f h k l q s t u v I), map({ "O$_" } 1, 'abc', '',
             'o' x 31, 'o' x 40), 'N', 'R', 'T', 'C', 'F', 'D', 'J', 'M',
             qw(ME MA MP MR MS MI MD M+ M- Mx MSS E5 S3 Z W X x 1));
sub rand_flags {
    my @f;
    for (1 .. int rand 8) {
        my $f = pick(@FLAGS);
        $f .= rand_num() if $f =~ /\A[NRTCFDJ]\z/;
        push @f, $f;
    }
    push @f, ('v') x (15 + int rand 10) if rand() < 0.03;
    return join ' ', @f;
}

# one command, well formed or nearly so
sub gen_command {
    my $verb = pick(qw(mg mg ms ms md ma ma mn me));
    my $key = rand_key();
    my $line = "$verb $key " . rand_flags();
    if ($verb eq 'ms') {
        my $len = rand() < 0.9 ? int rand 200 : pick(0, 1048577, 2000000);
        my $dl = rand() < 0.8 ? $len : rand_num();
        $line = "ms $key $dl " . rand_flags();
        my $data = $len > 5000 ? 'z' x (int rand 5000) : rand_bytes($len);
        my $end = rand() < 0.85 ? "\r\n" : pick('', "\n", "\r", 'XY', "\r\r\n");
        return "$line\r\n$data$end";
    }
    return $line . (rand() < 0.9 ? "\r\n" : pick("\n", "\r", '', "\r\r\n"));
}

# damage a byte string
sub mutate {
    my ($s) = @_;
    for (1 .. 1 + int rand 3) {
        my $len = length $s;
        my $pos = $len ? int rand $len : 0;
        my $r = rand;
        if ($r < 0.25 && $len) {
            substr($s, $pos, 1) = chr int rand 256;
        } elsif ($r < 0.45) {
            substr($s, $pos, 0) = rand_bytes(1 + int rand 8);
        } elsif ($r < 0.6 && $len) {
            substr($s, $pos, 1 + int rand 10) = '';
        } elsif ($r < 0.7 && $len) {
            $s = substr($s, 0, $pos);
        } elsif ($r < 0.8) {
            substr($s, $pos, 0) = pick("\r\n", "\n", "\0", ' ', ' ' x 30);
        } elsif ($r < 0.9 && $len) {
            my $piece = substr($s, $pos, 1 + int rand 20);
            substr($s, $pos, 0) = $piece x (1 + int rand 4);
        } else {
            substr($s, $pos, 0) = rand_num();
        }
    }
    return $s;
}

sub gen_payload {
    my $p = '';
    for (1 .. 1 + int rand 8) {
        my $r = rand;
        if ($r < 0.5) {
            $p .= gen_command();
        } elsif ($r < 0.85) {
            $p .= mutate(gen_command());
        } elsif ($r < 0.95) {
            $p .= rand_bytes(int rand 300);
        } else {
            $p .= 'm' . pick(qw(g s d a n e)) . ' ' . ('x' x (2000 + int rand 3000));
        }
    }
    return $p;
}

# write what the socket takes within $deadline; errors (the server
# hung up) end the write quietly
sub write_some {
    my ($s, $data, $deadline) = @_;
    my $sel = IO::Select->new($s);
    my $off = 0;
    while ($off < length $data) {
        my $left = $deadline - time;
        return 0 if $left <= 0;
        next unless $sel->can_write($left);
        my $n = syswrite($s, $data, length($data) - $off, $off);
        if (!defined $n) {
            next if $! == EINTR || $! == EAGAIN || $! == EWOULDBLOCK;
            return 0;
        }
        $off += $n;
    }
    return 1;
}

# read whatever arrives within $secs
sub read_some {
    my ($s, $secs) = @_;
    my $sel = IO::Select->new($s);
    my $deadline = time + $secs;
    my $total = 0;
    while ((my $left = $deadline - time) > 0) {
        last unless $sel->can_read($left);
        my $n = sysread($s, my $buf, 65536);
        last unless $n;
        $total += $n;
    }
    return $total;
}

# --- the fuzz loop --------------------------------------------------------
my $st0 = $srv->stats;
my $start = time;
my ($conns, $bytes, $dead) = (0, 0, 0);
while (time - $start < $budget && $conns < 3000) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $srv->{port},
                                  Proto => 'tcp', Timeout => 2);
    if (!$s) {
        $dead++;
        last unless $srv->is_alive;
        next;
    }
    $s->blocking(0);
    my $payload = gen_payload();
    my @pieces;
    while (length $payload) {
        my $n = rand() < 0.5 ? length $payload : 1 + int rand length $payload;
        push @pieces, substr($payload, 0, $n, '');
    }
    for my $p (@pieces) {
        $bytes += length $p;
        last unless write_some($s, $p, time + 0.2);
        read_some($s, 0.002) if rand() < 0.3;
    }
    # sometimes wait for (part of) the answer, sometimes hang up at once
    read_some($s, 0.02) if rand() < 0.3;
    shutdown($s, 1) if rand() < 0.2;
    close $s;
    $conns++;
    if ($conns % 200 == 0 && !$srv->is_alive) {
        last;
    }
}
my $took = time - $start;
note(sprintf '%d connections, %d bytes in %.1fs', $conns, $bytes, $took);
ok($conns >= 50, "fuzzed on $conns connections ($bytes bytes)");
ok($took < 21, sprintf('fuzz stayed in its time bound (%.1fs)', $took));

# --- afterwards -----------------------------------------------------------
ok($srv->is_alive, 'the server process is still running')
    or diag("FUZZ_SEED=$seed killed the server; log:\n" . $srv->log_text);
$srv->reset_sock;
like($srv->cmd('version'), qr/\AVERSION \S+\r\n\z/,
     'a fresh connection gets a version reply');
is($srv->get_raw('gets ' . join ' ', sort keys %keep), $keep_raw,
   'the 20 classic keys stored before are intact (values, flags, cas)');
is(mcmd($srv, 'mg sentinel_meta v f t c'), $meta_raw,
   'the ms key stored before is intact');
is(exchange($srv, "ms after 2 k\r\nok\r\n"), "HD kafter\r\n",
   'meta set still works');
is(mcmd($srv, 'mg after v'), "VA 2\r\nok\r\n", 'meta get still works');
is(mcmd($srv, 'mn'), "MN\r\n", 'mn still works');
is($dead, 0, 'every connection was accepted');
{
    # the fuzz reached the command handlers, not just the line reader
    my $st = $srv->stats;
    my %d = map { $_ => $st->{$_} - $st0->{$_} }
            qw(cmd_get cmd_set cmd_meta incr_misses delete_misses);
    my $sum = 0;
    $sum += $_ for values %d;
    ok(!grep({ $d{$_} <= 0 } keys %d) && $sum >= $conns / 5,
       "fuzzed commands were executed (@{[map { \"$_+$d{$_}\" } sort keys %d]})");
}

done_testing();
