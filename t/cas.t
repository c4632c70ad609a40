#!/usr/bin/perl
# gets/cas: STORED, EXISTS, NOT_FOUND, and which commands change the
# cas unique (every modification; not touch/gat/get).

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;

my $srv = MemcTest->start();

sub cas_of { return $srv->mem_cas($_[0]); }

is($srv->mem_set('k', 'v1', 3), "STORED\r\n", 'set');
my $c = cas_of('k');
like($c, qr/\A\d+\z/, 'gets gives a numeric cas unique');

is($srv->store('cas', 'k', 'v2', 4, 0, undef, $c), "STORED\r\n",
   'cas with current unique: STORED');
is($srv->get_raw('get k'), "VALUE k 4 2\r\nv2\r\nEND\r\n",
   'value and flags replaced by cas');
my $c2 = cas_of('k');
isnt($c2, $c, 'successful cas changes the unique');

is($srv->store('cas', 'k', 'v3', 0, 0, undef, $c), "EXISTS\r\n",
   'cas with stale unique: EXISTS');
is($srv->get_raw('get k'), "VALUE k 4 2\r\nv2\r\nEND\r\n",
   'EXISTS left the value alone');
is(cas_of('k'), $c2, 'EXISTS left the unique alone');

is($srv->store('cas', 'missing', 'x', 0, 0, undef, 1), "NOT_FOUND\r\n",
   'cas on missing key: NOT_FOUND');
is($srv->get_raw('get missing'), "END\r\n", 'NOT_FOUND created nothing');

$srv->cmd('delete k');
is($srv->store('cas', 'k', 'x', 0, 0, undef, $c2), "NOT_FOUND\r\n",
   'cas on deleted key: NOT_FOUND');

# cas unique 0 never matches an existing item
$srv->mem_set('z', 'v');
is($srv->store('cas', 'z', 'x', 0, 0, undef, 0), "EXISTS\r\n",
   'cas with unique 0 on existing key: EXISTS');

# bad cas argument: the line is refused and its data line is then
# read as a command of its own (memcached does not swallow it)
$srv->send("cas z 0 0 1 abc\r\nx\r\n");
is($srv->read_line, "CLIENT_ERROR bad command line format\r\n",
   'non-numeric cas unique: CLIENT_ERROR bad command line format');
is($srv->read_line, "ERROR\r\n", 'its data line then answers ERROR');
# cas without the unique is an unknown form
$srv->send("cas z 0 0 1\r\nx\r\n");
is($srv->read_line, "ERROR\r\n", 'cas without unique: ERROR');
is($srv->read_line, "ERROR\r\n", '(its data line: ERROR)');
is($srv->get_raw('get z'), "VALUE z 0 1\r\nv\r\nEND\r\n",
   'value untouched after the bad cas lines');

# --- which commands change the cas unique ------------------------------
my %changes = (
    'set'      => sub { $srv->mem_set('m', '5') },
    'replace'  => sub { $srv->mem_replace('m', '6') },
    'append'   => sub { $srv->store('append', 'm', '1') },
    'prepend'  => sub { $srv->store('prepend', 'm', '1') },
    'incr'     => sub { $srv->cmd('incr m 1') },
    'decr'     => sub { $srv->cmd('decr m 1') },
    'cas'      => sub { $srv->store('cas', 'm', '7', 0, 0, undef,
                                    cas_of('m')) },
);
for my $name (sort keys %changes) {
    $srv->mem_set('m', '10');
    my $before = cas_of('m');
    $changes{$name}->();
    my $after = cas_of('m');
    ok(defined $after && $after != $before,
       "$name changes the cas unique ($before -> " . ($after // 'undef')
       . ')');
}

my %keeps = (
    'touch' => sub { $srv->cmd('touch m 100') },
    'gat'   => sub { $srv->get_raw('gat 100 m') },
    'gats'  => sub { $srv->get_raw('gats 200 m') },
    'get'   => sub { $srv->get_raw('get m') },
    'add (failing)' => sub { $srv->mem_add('m', 'x') },
    'cas (failing)' => sub { $srv->store('cas', 'm', 'x', 0, 0, undef, 1) },
    'incr (non-numeric)' => sub { $srv->cmd('incr m abc') },
);
for my $name (sort keys %keeps) {
    $srv->mem_set('m', '10');
    my $before = cas_of('m');
    $keeps{$name}->();
    is(cas_of('m'), $before, "$name keeps the cas unique");
}

# uniques grow: a later store gets a larger unique
{
    $srv->mem_set('g1', 'a');
    $srv->mem_set('g2', 'b');
    ok(cas_of('g2') > cas_of('g1'), 'later store has a larger unique');
}

# gats returns the cas column, gat does not
{
    $srv->mem_set('t', 'val', 8);
    my $cu = cas_of('t');
    is($srv->get_raw('gats 100 t'), "VALUE t 8 3 $cu\r\nval\r\nEND\r\n",
       'gats shows the unique');
    is($srv->get_raw('gat 100 t'), "VALUE t 8 3\r\nval\r\nEND\r\n",
       'gat does not');
}

# cas noreply
{
    my $s = $srv->new_sock;
    $srv->mem_set('n', 'a', 0, 0, $s);
    my $cu = $srv->mem_cas('n', $s);
    $srv->send("cas n 1 0 1 $cu noreply\r\nb\r\n", $s);
    $srv->send("cas n 2 0 1 $cu noreply\r\nc\r\n", $s);
    $srv->send("cas nn 2 0 1 $cu noreply\r\nc\r\n", $s);
    is($srv->get_raw('get n nn', $s), "VALUE n 1 1\r\nb\r\nEND\r\n",
       'cas noreply: first applied, stale one not, no replies');
}

# with -C (cas disabled) gets shows 0
{
    my $nocas = MemcTest->start('-C');
    $nocas->mem_set('a', 'x');
    is($nocas->get_raw('gets a'), "VALUE a 0 1 0\r\nx\r\nEND\r\n",
       '-C: gets shows unique 0');
    $nocas->stop;
}

done_testing();
