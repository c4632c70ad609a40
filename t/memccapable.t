#!/usr/bin/perl
# libmemcached's protocol checker: every ascii case must pass.  The
# binary cases run too when the server speaks the binary protocol.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;

my ($tool) = grep { -x } map { "$_/memccapable" } split /:/, $ENV{PATH};
$tool ||= (grep { -x } '/usr/bin/memccapable')[0];
plan skip_all => 'memccapable not installed (libmemcached-tools)'
    unless $tool;

my $srv = MemcTest->start();

{
    my ($st, $out) = run_cmd([$tool, '-a', '-t', '5', '-h', '127.0.0.1',
                              '-p', $srv->port], timeout => 120);
    is($st, 0, 'memccapable -a exits 0') or diag($out);
    my @fail = grep { !/\[pass\]\s*$/ && /\[\w+\]\s*$/ } split /\n/, $out;
    is(scalar @fail, 0, 'no ascii case failed') or diag(join "\n", @fail);
    unlike($out, qr/fail/i, 'no "fail" in the output');
    my $n = () = $out =~ /^ascii \S+.*\[pass\]/mg;
    ok($n >= 27, "$n ascii cases passed");
    like($out, qr/^All tests passed$/m, 'All tests passed');
}
like($srv->cmd('version'), qr/\AVERSION /, 'server fine after memccapable');

# binary protocol: only when the server answers a binary NOOP
SKIP: {
    my $s = $srv->new_sock;
    # magic 0x80, opcode 0x0a (noop), opaque 0xdeadbeef
    $srv->send(pack('CCnCCnNNNN', 0x80, 0x0a, 0, 0, 0, 0, 0, 0xdeadbeef,
                    0, 0), $s);
    my $hdr = $srv->read_bytes(24, $s, 3);
    skip 'server does not speak the binary protocol', 3
        unless defined $hdr && length $hdr == 24
               && unpack('C', $hdr) == 0x81;
    my ($st, $out) = run_cmd([$tool, '-b', '-t', '5', '-h', '127.0.0.1',
                              '-p', $srv->port], timeout => 120);
    is($st, 0, 'memccapable -b exits 0') or diag($out);
    unlike($out, qr/fail/i, 'no binary case failed');
    like($out, qr/^All tests passed$/m, 'All tests passed');
}

done_testing();
