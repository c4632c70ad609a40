#!/usr/bin/perl
# version, verbosity, quit, shutdown (with and without -A),
# cache_memlimit.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MemcTest;

my $srv = MemcTest->start();

like($srv->cmd('version'), qr/\AVERSION \d+\.\d+\.\d+\S*\r\n\z/,
     'version: "VERSION x.y.z"');
{
    my ($v) = $srv->cmd('version') =~ /\AVERSION (\S+)\r\n/;
    is($srv->stats->{version}, $v, 'stats version matches');
}

# verbosity
is($srv->cmd('verbosity 1'), "OK\r\n", 'verbosity 1: OK');
is($srv->stats('settings')->{verbosity}, 1, 'reflected in stats settings');
is($srv->cmd('verbosity 0'), "OK\r\n", 'verbosity 0: OK');
is($srv->stats('settings')->{verbosity}, 0, 'back to 0');
is($srv->cmd('verbosity'), "ERROR\r\n", 'verbosity without level: ERROR');
is($srv->cmd('verbosity abc'), "CLIENT_ERROR bad command line format\r\n",
   'verbosity abc');
{
    my $s = $srv->new_sock;
    $srv->send("verbosity 1 noreply\r\n", $s);
    like($srv->cmd('version', $s), qr/\AVERSION /, 'verbosity noreply: silent');
    is($srv->stats('settings', $s)->{verbosity}, 1, 'and applied');
    $srv->cmd('verbosity 0', $s);
}

# quit closes the connection promptly, without a reply
{
    my $s = $srv->new_sock;
    $srv->mem_set('q', 'x', 0, 0, $s);
    my $t0 = time;
    $srv->send("quit\r\n", $s);
    ok($srv->closed_within($s, 2), 'quit closes the connection');
    ok(time - $t0 < 1, 'promptly');
    is($srv->get_raw('get q'), "VALUE q 0 1\r\nx\r\nEND\r\n",
       'data and server fine after quit');
    # commands pipelined after quit are not executed
    my $s2 = $srv->new_sock;
    $srv->send("quit\r\nset afterquit 0 0 1\r\nx\r\n", $s2);
    ok($srv->closed_within($s2, 2), 'quit with more commands behind it');
    is($srv->get_raw('get afterquit'), "END\r\n",
       'commands after quit were ignored');
    # replies before quit are still delivered
    my $s3 = $srv->new_sock;
    $srv->send("get q\r\nquit\r\n", $s3);
    my ($raw) = $srv->read_values($s3);
    is($raw, "VALUE q 0 1\r\nx\r\nEND\r\n", 'reply before quit delivered');
    ok($srv->closed_within($s3, 2), 'then closed');
}

# shutdown is refused without -A
is($srv->cmd('shutdown'), "ERROR: shutdown not enabled\r\n",
   'shutdown without -A refused');
is($srv->cmd('shutdown graceful'), "ERROR: shutdown not enabled\r\n",
   'shutdown graceful without -A refused');
ok($srv->is_alive, 'server still running');
is($srv->stats('settings')->{shutdown_command}, 'no',
   'stats settings: shutdown_command no');

# cache_memlimit
is($srv->cmd('cache_memlimit 100'), "OK\r\n", 'cache_memlimit 100: OK');
is($srv->stats('settings')->{maxbytes}, 100 * 1024 * 1024,
   'maxbytes follows (MB)');
is($srv->stats->{limit_maxbytes}, 100 * 1024 * 1024, 'limit_maxbytes too');
is($srv->cmd('cache_memlimit 1'),
   "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n",
   'cache_memlimit 1: too small');
is($srv->cmd('cache_memlimit abc'), "ERROR\r\n", 'cache_memlimit abc: ERROR');
is($srv->cmd('cache_memlimit'), "ERROR\r\n", 'cache_memlimit alone: ERROR');
{
    my $s = $srv->new_sock;
    $srv->send("cache_memlimit 80 noreply\r\n", $s);
    like($srv->cmd('version', $s), qr/\AVERSION /, 'noreply: silent');
    is($srv->stats('settings', $s)->{maxbytes}, 80 * 1024 * 1024,
       'and applied');
}

# shutdown with -A: "shutdown" ends the server, exit status 0
{
    my $a = MemcTest->start('-A');
    is($a->stats('settings')->{shutdown_command}, 'yes',
       '-A: shutdown_command yes');
    is($a->cmd('shutdown foo'), "CLIENT_ERROR invalid shutdown mode\r\n",
       'shutdown with an unknown mode');
    my $s = $a->new_sock;
    $a->send("shutdown\r\n", $s);
    ok($a->closed_within($s, 5), 'shutdown closes the connection');
    ok(MemcTest::wait_until(sub { !$a->is_alive }, 10, 'server to exit'),
       'server exits after shutdown');
    is($a->exit_status, 0, 'exit status 0');
}
{
    my $a = MemcTest->start('-A');
    my $s = $a->new_sock;
    $a->send("shutdown graceful\r\n", $s);
    ok($a->closed_within($s, 5), 'shutdown graceful closes the connection');
    ok(MemcTest::wait_until(sub { !$a->is_alive }, 10, 'server to exit'),
       'server exits after shutdown graceful');
    is($a->exit_status, 0, 'exit status 0');
}

done_testing();
