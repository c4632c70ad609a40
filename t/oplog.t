#!/usr/bin/perl
# The pair's operational events are logged at the default verbosity (no
# -v), one line each with the peer's address and the reason, stamped with
# the UTC time unless stderr is systemd's journal (JOURNAL_STREAM naming
# stderr): the start-up gate closed and open, link up, a full resync's
# start and end on both sides, link down when the peer dies, a partial
# resync when it returns, and an authentication failure.  Requests log
# nothing below -vv.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MemcTest;
use MemcPair;

require_pair_build();
my $STAMP = qr/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /;

# a node at the default verbosity: MemcPair's nodes run with -v
sub node {
    my (%o) = @_;
    my $n = MemcPair::Node->create(%o);
    $n->{args} = [grep { $_ ne '-v' } @{ $n->{args} }];
    return $n;
}

sub lines_like {
    my ($n, $re) = @_;
    return grep { /$re/ } split /\n/, $n->log_text;
}

my ($pa, $ra, $pb, $rb) = free_ports(4);
my $A = node(name => 'A', port => $pa, repl_port => $ra, dial => $rb,
             o => ['repl_timeout=2']);
my $B = node(name => 'B', port => $pb, repl_port => $rb, dial => $ra,
             o => ['repl_timeout=2']);
$A->spawn;
$B->spawn;
ok($A->wait_ready(30) && $B->wait_ready(30), 'both nodes serve');
ok(wait_linked($A, $B, 20), 'linked');
ok(wait_until(sub { lines_like($A, qr/full resync done/)
                    && lines_like($B, qr/full resync done/) }, 10),
   'both logged the end of the first full resync');

for my $n ($A, $B) {
    my $name = $n->name;
    my $peer = qr/127\.0\.0\.1:\d+/;
    ok(lines_like($n, qr/^$STAMP.*gate closed.*127\.0\.0\.1:\d+/),
       "$name: gate closed, with the peer");
    ok(lines_like($n, qr/^$STAMP.*gate open, client port opening \(.+\)/),
       "$name: gate open, with the reason");
    ok(lines_like($n, qr/^${STAMP}replication $peer: link up \((dialled|accepted)/),
       "$name: link up, with the peer's address");
    ok(lines_like($n, qr/^${STAMP}replication $peer: full resync started/),
       "$name: full resync started");
    my @bad = grep { !/^$STAMP/ } split /\n/, $n->log_text;
    is("@bad", '', "$name: every line at the default verbosity is stamped");
}

# requests log nothing below -vv
my $before = length $A->log_text;
$A->mem_set("k$_", "v$_") for 1 .. 50;
$A->mem_get("k$_") for 1 .. 50;
my $c = $A->new_sock;
print $c "quit\r\n";
close $c;
ok(wait_value($B, 'k50', 'v50', 10), 'writes reached B');
is(substr($A->log_text, $before), '', 'no line for requests or connections');

# the peer dies: link down with the address and the reason
$B->kill9;
ok(wait_until(sub { lines_like($A, qr/^${STAMP}replication 127\.0\.0\.1:\d+: link down \(.+\)/) }, 15),
   'A: link down, with the address and the reason');
# it returns within the backlog: a partial resync, start and end
$B->restart(timeout => 30);
ok(wait_linked($A, $B, 20), 'linked again');
ok(wait_until(sub { lines_like($B, qr/partial resync started/)
                    || lines_like($B, qr/full resync started.*\n?/) > 1 }, 10),
   'B: a resync started when it returned');
ok(wait_until(sub { lines_like($A, qr/partial resync (started|done)/)
                    || lines_like($A, qr/full resync done/) > 1 }, 10),
   'A: served the resync and logged it');

# authentication failure: a third node with another secret dials A
SKIP: {
    my (undef, $help) = run_cmd([MemcTest::memc_bin(), '-h']);
    skip 'no OpenSSL', 2 unless $help =~ /repl_secret_file/;
    my $s1 = secret_file('s1', 'first secret of the test 000001');
    my $s2 = secret_file('s2', 'other secret of the test 000002');
    my ($pc, $rc, $pd, $rd) = free_ports(4);
    my $C = node(name => 'C', port => $pc, repl_port => $rc, dial => $rd,
                 o => ["repl_secret_file=$s1", 'repl_initial_sync_timeout=1']);
    my $D = node(name => 'D', port => $pd, repl_port => $rd, dial => $rc,
                 o => ["repl_secret_file=$s2", 'repl_initial_sync_timeout=1']);
    $C->spawn;
    $D->spawn;
    ok(wait_until(sub { lines_like($C, qr/^${STAMP}replication 127\.0\.0\.1:\d+: authentication failed \(.+\)/) }, 15),
       'C: authentication failed, with the address and the reason')
        or diag($C->log_text);
    ok(!lines_like($C, qr/link up/), 'C: no link up');
    $C->kill9;
    $D->kill9;
}

# under the journal (JOURNAL_STREAM names stderr): no stamp of our own
{
    my ($pe, $re) = free_ports(2);
    my ($dead) = closed_ports(1);
    my $E = node(name => 'E', port => $pe, repl_port => $re, dial => $dead,
                 o => ['repl_initial_sync_timeout=1']);
    # MemcTest names the log file before it opens it as stderr: create it
    # first, so that its device and inode are known.
    my $log = tmp_dir() . "/server-$pe-" . ($MemcTest::SEQ + 1) . '.log';
    open my $fh, '>', $log or die "$log: $!";
    close $fh;
    my @st = stat $log;
    local $ENV{JOURNAL_STREAM} = "$st[0]:$st[1]";
    $E->spawn;
    ok($E->wait_ready(20), 'E serves');
    ok(wait_until(sub { lines_like($E, qr/gate open/) }, 10), 'E: gate open');
    my @stamped = lines_like($E, qr/^$STAMP/);
    is(scalar @stamped, 0, 'under the journal: lines carry no timestamp')
        or diag($E->log_text);
    $E->kill9;
}

$A->kill9;
$B->kill9;
done_testing();
