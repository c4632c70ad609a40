#!/usr/bin/perl
# -o read_buf_mem_limit: each worker's share of response memory, as in
# memcached 1.6.18 (1 MB over 32 threads: 13 pending responses).  A
# multi-get past it answers SERVER_ERROR, pipelined requests past it
# close the connection with nothing sent; both count response_obj_oom,
# and the slots come back once replies are sent.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;

my $srv = MemcTest->start('-o', 'read_buf_mem_limit=1', '-t', '32',
                          '-R', '500');
my $st = $srv->sock;
$srv->mem_set('foo', 'bar');

sub get_n {
    my ($n, $s) = @_;
    return $srv->cmd('get ' . join(' ', ('nokey') x $n), $s);
}

is(get_n(13), "END\r\n", 'multi-get of 13 keys served');
is(get_n(14), "SERVER_ERROR out of memory writing get response\r\n",
   'multi-get of 14 keys: SERVER_ERROR, as memcached');
is(get_n(500), "SERVER_ERROR out of memory writing get response\r\n",
   'multi-get of 500 keys: SERVER_ERROR');
my $oom = $srv->stats(undef, $st)->{response_obj_oom};
ok($oom >= 2, "response_obj_oom counted ($oom)");

# pipelined requests: 13 answered, 14 close the connection, no byte sent
sub pipelined {
    my ($n) = @_;
    my $s = $srv->new_sock;
    MemcTest::_write_all($s, "mg foo v\r\n" x $n);
    shutdown($s, 1);
    local $/;
    my $got = <$s>;
    close $s;
    return $got // '';
}
is(pipelined(13), "VA 3\r\nbar\r\n" x 13, '13 pipelined mg answered');
is(pipelined(14), '', '14 pipelined mg: closed, nothing sent');
is(pipelined(500), '', '500 pipelined mg: closed, nothing sent');
ok($srv->stats(undef, $st)->{response_obj_oom} > $oom,
   'response_obj_oom counted again');

# slots are returned: the same worker keeps serving
my $ok = 0;
for (1 .. 100) {
    $ok++ if get_n(13) eq "END\r\n";
}
is($ok, 100, '100 more 13-key multi-gets served: no slot leaked');

# requests that send nothing (noreply) hold no slot either
{
    my $s = $srv->new_sock;
    for (1 .. 30) {
        MemcTest::_write_all($s, "set k$_ 0 0 1 noreply\r\nx\r\n");
    }
    MemcTest::_write_all($s, "set a 0 0 1 noreply\r\nx\r\n" x 12);
    is($srv->cmd('mn', $s), "MN\r\n", '42 noreply sets hold no slot');
    is(get_n(13, $s), "END\r\n", 'and a 13-key multi-get still served');
}

# without the option there is no such limit
my $free = MemcTest->start();
is($free->cmd('get ' . join(' ', ('nokey') x 500)), "END\r\n",
   'no read_buf_mem_limit: 500-key multi-get served');
$free->stop;

done_testing();
