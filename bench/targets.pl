# targets.pl: the servers a load runs against, read by harness.pl.
# A target is a name and a list of server command lines; the load
# generator talks to the first server, and CPU, RSS, system calls and
# instructions are summed over all of them (so a replicated pair is a
# target with two command lines).  Placeholders: %PORT% is this
# server's port, %PORT0%, %PORT1%, ... the ports of the target's servers
# by index, %RPORT% / %RPORTn% a second free port per server (the
# replication port of a pair).  Every server gets taskset -c 0 (and valgrind for callgrind
# loads) put in front by the harness.
#
# Settings, the same for every target (see README.md, "Server settings"):
# one worker thread on one pinned core, UDP off, loopback only, a 2 GiB
# cache so that no load evicts, and the default 1024 connections written
# out because valgrind needs it (harness.pl sets ulimit -n to it + 12).
use strict;
use warnings;

my @server_args = (
    '-p', '%PORT%', '-U', '0', '-l', '127.0.0.1',
    '-t', '1', '-m', '2048', '-c', '1024',
    ($> == 0 ? ('-u', 'root') : ()),
);

my $reference = $ENV{REFERENCE_BIN} || '/usr/bin/memcached';
my $ours = $ENV{MEMCACHED_BIN} || die "MEMCACHED_BIN not set\n";

# -Z with the self-signed certificate run.sh makes: TLS on %RPORT%, the
# plain notls: listener on %PORT% for the readiness check (the same
# -l for both servers: memcached adds up its -l options, ours takes the
# last, so the plain -l 127.0.0.1 above is left out).
my @tls_args = (
    '-p', '%RPORT%', '-U', '0',
    '-l', 'notls:127.0.0.1:%PORT%,127.0.0.1:%RPORT%',
    '-t', '1', '-m', '2048', '-c', '1024',
    ($> == 0 ? ('-u', 'root') : ()),
    '-Z', '-o', 'ssl_chain_cert=' . ($ENV{BENCH_TLS_CERT} // 'none'),
    '-o', 'ssl_key=' . ($ENV{BENCH_TLS_KEY} // 'none'),
);

[
    { name => 'reference', servers => [[$reference, @server_args]] },
    { name => 'ours', servers => [[$ours, @server_args]] },
    # TLS on the client port (issue #20): loads with tls => 1
    { name => 'reference-tls', servers => [[$reference, @tls_args]] },
    { name => 'ours-tls', servers => [[$ours, @tls_args]] },
    # A replicated pair: the load goes to node 0, node 1 is its peer.
    # %RPORTn% is the replication port of server n.  CPU, syscalls and
    # instructions are summed over both nodes.
    { name => 'ours-pair', servers => [
          [$ours, @server_args, '-o', 'repl_port=%RPORT0%',
           '-x', '127.0.0.1:%RPORT1%'],
          [$ours, @server_args, '-o', 'repl_port=%RPORT1%',
           '-x', '127.0.0.1:%RPORT0%'] ] },
];
