#!/usr/bin/perl
# delete: DELETED / NOT_FOUND, noreply, the legacy "0" time argument,
# and the usage error for anything else.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;

my $srv = MemcTest->start();

$srv->mem_set('a', 'x');
is($srv->cmd('delete a'), "DELETED\r\n", 'delete existing: DELETED');
is($srv->get_raw('get a'), "END\r\n", 'gone after delete');
is($srv->cmd('delete a'), "NOT_FOUND\r\n", 'delete again: NOT_FOUND');
is($srv->cmd('delete never'), "NOT_FOUND\r\n", 'delete unknown: NOT_FOUND');

# delete then add works (the key is really free)
is($srv->mem_add('a', 'y'), "STORED\r\n", 'add after delete');
is($srv->get_raw('get a'), "VALUE a 0 1\r\ny\r\nEND\r\n", 'new value');

# legacy zero time argument is accepted
is($srv->cmd('delete a 0'), "DELETED\r\n", 'delete key 0: DELETED');
$srv->mem_set('a', 'x');
is($srv->cmd('delete a 5'),
   "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n",
   'delete key 5: usage error');
is($srv->cmd('delete a b c'),
   "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n",
   'delete with two extra tokens: usage error');
is($srv->get_raw('get a'), "VALUE a 0 1\r\nx\r\nEND\r\n",
   'refused delete kept the item');
is($srv->cmd('delete'), "ERROR\r\n", 'delete without key: ERROR');

# noreply
{
    my $s = $srv->new_sock;
    $srv->mem_set('n1', 'x', 0, 0, $s);
    $srv->mem_set('n2', 'x', 0, 0, $s);
    $srv->send("delete n1 noreply\r\n", $s);
    $srv->send("delete nothere noreply\r\n", $s);
    $srv->send("delete n2 0 noreply\r\n", $s);
    is($srv->get_raw('get n1 n2 a', $s), "VALUE a 0 1\r\nx\r\nEND\r\n",
       'delete noreply (and "0 noreply") silent and applied');
}

# A bad delete with noreply stays silent (its usage error too, as in
# memcached) and deletes nothing: the next reply is the add's.
{
    my $s = $srv->new_sock;
    $srv->mem_set('q', 'x', 0, 0, $s);
    $srv->send("delete q 10 noreply\r\n", $s);
    is($srv->mem_add('q', 'y', 0, 0, $s), "NOT_STORED\r\n",
       'delete key 10 noreply: silent, key kept');
    is($srv->get_raw('get q', $s), "VALUE q 0 1\r\nx\r\nEND\r\n",
       'delete key 10 noreply: value unchanged');
}

# key too long
is($srv->cmd('delete ' . ('k' x 251)),
   "CLIENT_ERROR bad command line format\r\n", '251-byte key refused');
{
    my $k = 'k' x 250;
    $srv->mem_set($k, 'v');
    is($srv->cmd("delete $k"), "DELETED\r\n", '250-byte key deleted');
}

# counters
{
    $srv->cmd('stats reset');
    $srv->mem_set('c', 'x');
    $srv->cmd('delete c');
    $srv->cmd('delete c');
    $srv->cmd('delete c');
    my $st = $srv->stats;
    is($st->{delete_hits}, 1, 'delete_hits 1');
    is($st->{delete_misses}, 2, 'delete_misses 2');
}

# delete of many keys leaves the others
{
    $srv->mem_set("m$_", $_) for 1 .. 100;
    $srv->cmd("delete m$_") for grep { $_ % 2 } 1 .. 100;
    my @left = grep { defined $srv->mem_get("m$_") } 1 .. 100;
    is_deeply(\@left, [grep { !($_ % 2) } 1 .. 100],
              'only the deleted half is gone');
}

done_testing();
