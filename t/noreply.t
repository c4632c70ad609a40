#!/usr/bin/perl
# noreply: every command that takes it stays silent, whether it works
# or fails, and the effects are applied in order.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;

my $srv = MemcTest->start();
my $s = $srv->new_sock;

my @cmds = (
    "set a 1 0 1 noreply\r\n1\r\n",
    "set a 2 0 2 noreply\r\n10\r\n",
    "add a 0 0 1 noreply\r\nx\r\n",          # fails
    "add b 3 0 1 noreply\r\nb\r\n",
    "replace b 4 0 2 noreply\r\nbb\r\n",
    "replace zz 0 0 1 noreply\r\nz\r\n",     # fails
    "append b 0 0 1 noreply\r\n+\r\n",
    "prepend b 0 0 1 noreply\r\n-\r\n",
    "append zz 0 0 1 noreply\r\nz\r\n",      # fails
    "incr a 5 noreply\r\n",
    "decr a 3 noreply\r\n",
    "incr zz 1 noreply\r\n",                 # NOT_FOUND, silent
    "set c 0 0 1 noreply\r\nc\r\n",
    "delete c noreply\r\n",
    "delete c noreply\r\n",                  # NOT_FOUND, silent
    "touch b 1000 noreply\r\n",
    "touch zz 1000 noreply\r\n",             # NOT_FOUND, silent
    "cas b 0 0 1 1 noreply\r\nq\r\n",        # EXISTS, silent
    "cas zz 0 0 1 1 noreply\r\nq\r\n",       # NOT_FOUND, silent
    "verbosity 0 noreply\r\n",
    "set d 0 0 1 noreply\r\nd\r\n",
);
$srv->send(join('', @cmds), $s);
$srv->send("get a b c d\r\n", $s);
my ($raw) = $srv->read_values($s);
is($raw, "VALUE a 2 2\r\n12\r\nVALUE b 4 4\r\n-bb+\r\nVALUE d 0 1\r\nd\r\nEND\r\n",
   'the first bytes back are the get reply; all effects applied');
is($srv->drain($s, 0.2), '', 'nothing else was sent');

# a successful cas with noreply
{
    my $cas = $srv->mem_cas('b', $s);
    $srv->send("cas b 9 0 3 $cas noreply\r\nnew\r\n", $s);
    is($srv->get_raw('get b', $s), "VALUE b 9 3\r\nnew\r\nEND\r\n",
       'cas noreply applied silently');
}

# flush_all noreply
$srv->send("flush_all noreply\r\n", $s);
is($srv->get_raw('get a b d', $s), "END\r\n", 'flush_all noreply silent');

# noreply does not leak to the next command
$srv->send("set e 0 0 1 noreply\r\ne\r\nset f 0 0 1\r\nf\r\n", $s);
is($srv->read_line($s), "STORED\r\n", 'next command without noreply answers');
is($srv->get_raw('get e f', $s), "VALUE e 0 1\r\ne\r\nVALUE f 0 1\r\nf\r\nEND\r\n",
   'both stored');

# client errors are silenced by noreply too (memcached 1.6)
$srv->mem_set('s', 'abc', 0, 0, $s);
$srv->send("incr s 1 noreply\r\n", $s);            # non-numeric value
$srv->send("incr s abc noreply\r\n", $s);          # bad delta
$srv->send("touch s abc noreply\r\n", $s);         # bad exptime
$srv->send("flush_all abc noreply\r\n", $s);       # bad exptime
$srv->send("set s 0 0 1 noreply\r\nxyz\r\n", $s);   # bad data chunk
is($srv->cmd('version', $s), "ERROR\r\n",
   'errors silenced; only the rest of the bad chunk ("\r\n") answers ERROR');
like($srv->read_line($s), qr/\AVERSION /, 'then the version reply');
is($srv->get_raw('get s', $s), "VALUE s 0 3\r\nabc\r\nEND\r\n",
   'value unchanged by the failed commands');

# too large with noreply: silent, and the data is swallowed
$srv->send("set big 0 0 2000000 noreply\r\n" . ('x' x 2000000) . "\r\n", $s);
like($srv->cmd('version', $s), qr/\AVERSION /,
     'too-large set with noreply: silent, data swallowed');

# an unknown command is answered even with noreply
is($srv->cmd('foo noreply', $s), "ERROR\r\n", 'unknown command: ERROR');

done_testing();
