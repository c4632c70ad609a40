#!/usr/bin/perl
# -Y: text protocol authentication, as memcached 1.6 does it.  Until a
# connection authenticates, the only accepted request is
# "set <any> <flags> <exptime> <len>" whose data is "user password";
# anything else answers "CLIENT_ERROR unauthenticated", wrong credentials
# "CLIENT_ERROR authentication failure"; the connection stays open.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp qw(tempdir);
use MemcTest;

my $dir = tempdir(CLEANUP => 1);
my $file = "$dir/auth";
open my $fh, '>', $file or die "$file: $!";
print $fh "alice:secret1\nbob:pw2\n";
close $fh;
chmod 0600, $file;

my $UNAUTH = "CLIENT_ERROR unauthenticated\r\n";
my $FAIL = "CLIENT_ERROR authentication failure\r\n";

# Up when a connection gets the refusal: nothing else answers yet.
my $refuses = sub {
    my ($srv) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $srv->port, Timeout => 1)
        or return 0;
    print $s "version\r\n";
    my $line = MemcTest::_read_line($s, 1);
    return defined $line && $line eq $UNAUTH;
};
my $srv = MemcTest->start({args => ['-Y', $file], ready => $refuses});

# --- before authenticating: refused and closed -----------------------------
for my $req ("version\r\n", "get a\r\n", "stats\r\n",
             "add x 0 0 13\r\nalice secret1\r\n", "mg a v\r\n") {
    my $s = $srv->new_sock;
    (my $show = $req) =~ s/\r\n.*//s;
    $srv->send($req, $s);
    is($srv->read_line($s), $UNAUTH, "'$show' before auth: unauthenticated");
    like($srv->cmd('version', $s), qr/\A\Q$UNAUTH\E\z/,
         "... the connection stays, still unauthenticated");
}
{
    my $s = $srv->new_sock;
    $srv->send("set x 0 0 12\r\nalice wrongp\r\n", $s);
    is($srv->read_line($s), $FAIL, 'wrong password: authentication failure');
    $srv->send("set x 0 0 13\r\nalice secret1\r\n", $s);
    is($srv->read_line($s), "STORED\r\n", '... a retry on the same connection');
    $s = $srv->new_sock;
    $srv->send("set x 0 0 12\r\nalicesecret1\r\n", $s);
    is($srv->read_line($s), "CLIENT_ERROR bad authentication token format\r\n",
       'no space between user and password: bad token format');
    $s = $srv->new_sock;
    $srv->send("set x 0 0 13\r\nmallo secret1\r\n", $s);
    is($srv->read_line($s), $FAIL, 'unknown user');
}

# --- authenticating -------------------------------------------------------
{
    my $s = $srv->new_sock;
    $srv->send("set anything 0 0 13\r\nalice secret1\r\n", $s);
    is($srv->read_line($s), "STORED\r\n", 'right credentials: STORED');
    is($srv->cmd('get anything', $s), "END\r\n",
       'the credentials are not stored as a value');
    is($srv->mem_set('k', 'v', 0, 0, $s), "STORED\r\n", 'then sets work');
    is(scalar $srv->mem_get('k', $s), 'v', 'and gets');
    like($srv->cmd('version', $s), qr/\AVERSION /, 'and version');
    my $st = $srv->stats('settings', $s);
    is($st->{auth_enabled_ascii}, $file,
       'stats settings auth_enabled_ascii: the file, as memcached shows it');
    my $o = $srv->new_sock;
    $srv->send("get k\r\n", $o);
    is($srv->read_line($o), $UNAUTH, 'authentication is per connection');
}
{
    my $s = $srv->new_sock;
    $srv->send("set x 0 0 7 noreply\r\nbob pw2\r\n", $s);
    is($srv->read_line($s), "STORED\r\n",
       'noreply does not hide the STORED; second user of the file');
    is(scalar $srv->mem_get('k', $s), 'v', 'second user sees the data');
}

# --- -Y and the binary protocol do not mix --------------------------------
{
    my ($st, $out) = MemcTest::run_cmd([MemcTest::memc_bin(),
        ($> == 0 ? ('-u', 'root') : ()), '-U', '0', '-l', '127.0.0.1',
        '-p', '0', '-Y', $file, '-B', 'binary'], timeout => 10);
    ok($st != 0, '-Y with -B binary: refused to start');
    like($out, qr/cannot allow the BINARY protocol while using ascii authentication/,
         '... with memcached\'s message');
}

ok($srv->is_alive, 'server still running');
done_testing();
