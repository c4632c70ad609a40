#!/usr/bin/perl
# Pair replication between two virtual hosts (doc/replication.txt, "Link
# states", "Backlog and partial resync", "Checking convergence"): each
# node runs in its own network namespace, the two joined by a veth pair
# on a private /30, the replication listener on the veth address (so a
# secret is mandatory).  Then the veth link is set down while both
# processes keep running:
#  - both links leave "linked" within repl_timeout (2 s) + a little;
#  - both nodes keep accepting writes, and none crosses;
#  - once the link is up again they relink, each has the other's writes
#    made during the cut (a key written on both ends the same on both),
#    the digests agree, and each sent the other a partial resync, not a
#    full copy.
# The test talks to each node on 127.0.0.1 inside its namespace: it
# enters the namespace with setns(2) just long enough to create a socket
# (a socket stays in the namespace it was made in).  Nothing is added to
# the root namespace; END kills the nodes and deletes both namespaces.
# Needs root and `ip netns`; skipped otherwise.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Cwd ();
use Config;
use POSIX ();
use Time::HiRes qw(time sleep);
use MemcTest;
use MemcPair;

my $BIN = require_pair_build();
plan skip_all => 'network namespaces need root' if $> != 0;

my $TMO = 2;                        # repl_timeout of both nodes
my $PORT = 11211;                   # client port (alone in its namespace)
my $RPORT = 11212;                  # replication port
my $CLONE_NEWNET = 0x40000000;
my $OWNER = $$;

my $X = $$ % 250;
my %NS = (A => "paircached-a-$$", B => "paircached-b-$$");
my %DEV = (A => "pcva$$", B => "pcvb$$");
my %IP = (A => "10.231.$X.1", B => "10.231.$X.2");

my @CREATED;                        # namespaces to delete at the end
my @NODES;                          # nodes to kill at the end
my %NS_FH;                          # namespace name => open nsfs file

# --- entering a namespace ------------------------------------------------

# setns(2) has no Perl builtin: call it by number
my $SYS_SETNS = eval { require 'syscall.ph'; &SYS_setns() } // {
    x86_64 => 308, i386 => 346, i486 => 346, i586 => 346, i686 => 346,
    aarch64 => 268, riscv64 => 268, loongarch64 => 268, arm => 375,
    ppc64 => 350, ppc64le => 350, powerpc => 350, s390x => 339,
}->{ (split /-/, $Config{archname})[0] };

open my $ROOT_NS, '<', '/proc/self/ns/net'
    or die "cannot open /proc/self/ns/net: $!";

sub setns_fh {
    my ($fh) = @_;
    die "no setns(2) syscall number for $Config{archname}\n"
        unless defined $SYS_SETNS;
    return syscall($SYS_SETNS, fileno($fh), $CLONE_NEWNET) == 0;
}

# run $code (scalar context) inside namespace $ns, then come back, even
# when it dies
sub in_ns {
    my ($ns, $code) = @_;
    my $fh = $NS_FH{$ns};
    if (!$fh) {
        open $fh, '<', "/run/netns/$ns" or die "/run/netns/$ns: $!\n";
        $NS_FH{$ns} = $fh;
    }
    setns_fh($fh) or die "setns into $ns: $!\n";
    my $r = eval { $code->() };
    my $err = $@;
    setns_fh($ROOT_NS) or die "cannot return to the root namespace: $!\n";
    die $err if $err;
    return $r;
}

sub ns_inode {
    my ($path) = @_;
    my @st = stat $path;
    return @st ? $st[1] : -1;
}

# --- a node in a namespace -------------------------------------------------

# A pair node run with `ip netns exec NS server ...`: ip execs the
# server, so the pid we fork is the server's.  Client sockets are made
# inside the namespace (on 127.0.0.1, which stays up when the veth goes
# down); everything else is MemcPair::Node's.
package NsNode;
our @ISA = ('MemcPair::Node');

sub new {
    my ($class, %o) = @_;
    my @args = ('-u', 'root', '-U', '0', '-v', '-l', "$o{ip},127.0.0.1",
                '-p', $PORT, '-x', "$o{peer}:$RPORT",
                '-o', join(',', "repl_port=$RPORT", "repl_listen=$o{ip}",
                          "repl_secret_file=$o{secret}",
                          "repl_timeout=$TMO"));
    return bless {
        port => $PORT, host => '127.0.0.1', args => \@args, owner => $$,
        name => $o{name}, ns => $o{ns}, peer => $o{peer}, bin => $o{bin},
        repl_port => $RPORT,
    }, $class;
}

sub spawn {
    my ($self) = @_;
    my @argv = ('ip', 'netns', 'exec', $self->{ns}, $self->{bin},
                @{ $self->{args} });
    $self->{argv} = \@argv;
    $self->{log} = MemcTest::tmp_dir() . "/netns-$self->{name}.log";
    $self->reset_sock;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $self->{log} or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
        { no warnings 'exec'; exec { $argv[0] } @argv; }
        POSIX::_exit(127);
    }
    $self->{pid} = $pid;
    MemcTest::adopt_pid($pid);
    # wait for ip to exec the server (or to fail)
    MemcTest::wait_until(sub {
        my $exe = readlink("/proc/$pid/exe") // '';
        return index($exe, $self->{bin}) == 0 || !$self->is_alive;
    }, 5);
    return $self;
}

for my $m (qw(new_sock repl_stats _answers_version)) {
    my $super = MemcPair::Node->can($m) or die "MemcPair::Node has no $m";
    no strict 'refs';
    *{"NsNode::$m"} = sub {
        my ($self, @a) = @_;
        return main::in_ns($self->{ns}, sub { $self->$super(@a) });
    };
}

package main;

# --- the namespaces --------------------------------------------------------

sub ip {
    my (@argv) = @_;
    my ($st, $out) = run_cmd(['ip', @argv], timeout => 10);
    return ($st == 0, $out);
}

sub must_ip {
    my (@argv) = @_;
    my ($ok, $out) = ip(@argv);
    die "ip @argv: $out" unless $ok;
}

for my $n (qw(A B)) {
    # one named after our pid can only be left over from a killed run
    ip('netns', 'del', $NS{$n}) if -e "/run/netns/$NS{$n}";
    my ($ok, $out) = ip('netns', 'add', $NS{$n});
    if (!$ok) {
        chomp $out;
        plan skip_all => "cannot create a network namespace (ip netns add:"
            . " $out)";
    }
    push @CREATED, $NS{$n};
}
must_ip('link', 'add', $DEV{A}, 'netns', $NS{A}, 'type', 'veth',
        'peer', 'name', $DEV{B}, 'netns', $NS{B});
for my $n (qw(A B)) {
    must_ip('-n', $NS{$n}, 'addr', 'add', "$IP{$n}/30", 'dev', $DEV{$n});
    must_ip('-n', $NS{$n}, 'link', 'set', 'lo', 'up');
    must_ip('-n', $NS{$n}, 'link', 'set', $DEV{$n}, 'up');
}

END {
    local ($?, $!);
    if (($OWNER // 0) == $$) {
        $_->stop('KILL', 5) for grep { $_->pid } @NODES;
        close $_ for values %NS_FH;
        system('ip', 'netns', 'del', $_) for @CREATED;
    }
}

# --- the nodes -------------------------------------------------------------

my $secret = tmp_dir() . '/repl-secret';
{
    my $old = umask 077;
    open my $fh, '>', $secret or die "$secret: $!";
    printf $fh "%s\n", join '', map { sprintf '%04x', int rand 65536 } 1 .. 16;
    close $fh;
    umask $old;
    chmod 0600, $secret;
}

my $bin = Cwd::abs_path($BIN) // $BIN;
my $A = NsNode->new(name => 'A', ns => $NS{A}, ip => $IP{A}, peer => $IP{B},
                    bin => $bin, secret => $secret);
my $B = NsNode->new(name => 'B', ns => $NS{B}, ip => $IP{B}, peer => $IP{A},
                    bin => $bin, secret => $secret);
push @NODES, $A, $B;
$_->spawn for $A, $B;
my %ready = map { ($_->name => $_->wait_ready(20)) } $A, $B;
for my $n ($A, $B) {
    next if $ready{ $n->name };
    plan skip_all => "$bin has no OpenSSL, so no repl_secret_file"
        if $n->log_text =~ /needs OpenSSL/;
}

for my $n ($A, $B) {
    my $exe = readlink("/proc/" . ($n->pid // 0) . "/exe") // '';
    is(index($exe, $bin), 0, 'node ' . $n->name . ': the pid we hold is '
       . "the server itself, not ip ($exe)");
    is(ns_inode("/proc/" . ($n->pid // 0) . "/ns/net"),
       ns_inode("/run/netns/$n->{ns}"),
       'node ' . $n->name . " runs in namespace $n->{ns}");
    ok($ready{ $n->name }, 'node ' . $n->name . ' opens its client port')
        or diag($n->log_tail(20));
}
ok(wait_linked($A, $B, 15), 'the pair links across the veth')
    or die "the pair did not link\nA: " . $A->log_tail(10) . "\nB: "
           . $B->log_tail(10) . "\n";
for my $n ($A, $B) {
    my $peer = $n->{peer};
    like($n->repl_stats->{peer_addr} // '', qr/^\[?\Q$peer\E\b/,
         'node ' . $n->name . "'s link runs to $peer");
}

# --- before the cut ----------------------------------------------------------


sub digest {
    my ($node) = @_;
    my $h = eval { $node->stats_fresh('replication digest') } or return '';
    return ($h->{digest} // '') . '/' . ($h->{digest_items} // '');
}

my %want;
for my $i (1 .. 20) {
    $A->mem_set("pre$i", "p$i");
    $want{"pre$i"} = "p$i";
}
$A->mem_set('both', 'pre');
$want{both} = 'pre';
ok(wait_until(sub { has_all($B, \%want) }, 5),
   'keys written on A are read on B')
    or diag(missing($B, \%want));
my %c0 = map {
    my $s = $_->repl_stats || {};
    ($_->name => { map { ($_ => $s->{$_} // 0) }
                   qw(partial_syncs full_syncs reconnects) });
} $A, $B;

# --- the cut -----------------------------------------------------------------

must_ip('-n', $NS{A}, 'link', 'set', $DEV{A}, 'down');
my $t0 = time;
my $down = wait_until(sub {
    (stat_of($A, 'link_state') // 'linked') ne 'linked'
        && (stat_of($B, 'link_state') // 'linked') ne 'linked';
}, $TMO + 3, 'both links to leave linked');
my $noticed = time - $t0;
ok($down, 'veth down: both links leave linked');
cmp_ok($noticed, '<=', $TMO + 3, "within repl_timeout ($TMO s) + 3 s");
diag(sprintf 'the cut was noticed on both nodes after %.2fs', $noticed);

my (%wa, %wb);
my $bad = 0;
for my $i (1 .. 15) {
    $bad++ unless ($A->mem_set("cut_a$i", "A$i") // '') eq "STORED\r\n";
    $bad++ unless ($B->mem_set("cut_b$i", "B$i") // '') eq "STORED\r\n";
    $wa{"cut_a$i"} = "A$i";
    $wb{"cut_b$i"} = "B$i";
}
is($bad, 0, 'during the cut both nodes answer STORED to their writes');
is($A->mem_set('both', 'from-a'), "STORED\r\n", 'A writes the shared key');
my $ta = time;
is($B->cmd('delete pre1'), "DELETED\r\n", 'B deletes a key A wrote');
# versions carry the millisecond (doc/items.txt): B's write of the same
# key must fall in a later one to be the later write
wait_until(sub { time > $ta + 0.005 }, 1);
is($B->mem_set('both', 'from-b'), "STORED\r\n",
   'B writes the shared key after A');
ok(!defined $B->item('cut_a1') && !defined $A->item('cut_b1'),
   'no write crosses the cut');

# --- the restore -------------------------------------------------------------

must_ip('-n', $NS{A}, 'link', 'set', $DEV{A}, 'up');
$t0 = time;
ok(wait_linked($A, $B, 15), 'veth up: both relink');
diag(sprintf 'relinked %.2fs after the restore', time - $t0);

my %all = (%want, %wa, %wb, pre1 => undef);
delete $all{both};
for my $n ($A, $B) {
    ok(wait_until(sub { has_all($n, \%all) }, 10),
       $n->name . ' has the writes of both sides made during the cut')
        or diag(missing($n, \%all));
}
my ($same, $ia, $ib) = wait_same($A, $B, 'both', 10);
ok($same, 'the key written on both sides reads the same on both')
    or diag('A: ' . esc($ia && $ia->{value}) . ', B: '
            . esc($ib && $ib->{value}));
is($ia && $ia->{value}, 'from-b', '... the later write (B\'s)');

my $items = 1 + grep { defined } values %all;      # and "both"
my ($da, $db) = ('', '');
ok(wait_until(sub {
    ($da, $db) = (digest($A), digest($B));
    return length $da > 1 && $da eq $db;
}, 5), 'stats replication digest is the same on both nodes')
    or diag("A $da, B $db");
like($da, qr{^[0-9a-f]{16}/\Q$items\E\z}, "... over all $items keys");

for my $n ($A, $B) {
    my $s = $n->repl_stats || {};
    my $c = $c0{ $n->name };
    cmp_ok($s->{partial_syncs} // 0, '>', $c->{partial_syncs},
           $n->name . ' sent a partial resync (partial_syncs '
           . "$c->{partial_syncs} -> " . ($s->{partial_syncs} // '?') . ')');
    is($s->{full_syncs} // -1, $c->{full_syncs},
       $n->name . ' sent no full copy after the cut');
    cmp_ok($s->{reconnects} // 0, '>', $c->{reconnects},
           $n->name . ': reconnects grew');
}

done_testing();
