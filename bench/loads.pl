# loads.pl: the loads bench/run.sh runs, in order, read by harness.pl.
# One hash per load.  Fields (defaults in brackets):
#   name     what --only takes and the table shows
#   kind     throughput: ops/s, CPU per request, syscalls per request
#            callgrind:  user-space instructions per request
#            rss:        RSS per stored value byte after the preload
#   desc     one line for --list
#   keys     key space, all preloaded before measuring [100000]
#   value    value bytes [1024]
#   get      fraction of requests that are gets [0.9]
#   width    keys per get; > 1 is a multi-get [1]
#   conns    connections, one request in flight each [50]
#   proto    text, binary or meta [text]
#   count    callgrind only: requests in the measured window
#   targets  the two targets compared, ratio = second / first
#            [reference, ours]
#   limits   metric => highest ratio the issue accepts (README.md)
use strict;
use warnings;

my %throughput_limits = (
    'CPU us/request' => 1.0,
    'syscalls/request' => 1.0,
);

[
    {
        name => 'get-heavy', kind => 'throughput',
        desc => '90/10 get/set, 1 KB values, 100k keys, 50 conns',
        keys => 100_000, value => 1024, get => 0.9,
        limits => {%throughput_limits},
    },
    {
        name => 'set-heavy', kind => 'throughput',
        desc => '10/90 get/set, 4 KB values, 100k keys, 50 conns',
        keys => 100_000, value => 4096, get => 0.1,
        limits => {%throughput_limits},
    },
    {
        name => 'small-values', kind => 'throughput',
        desc => '90/10 get/set, 32-byte values, 100k keys, 50 conns',
        keys => 100_000, value => 32, get => 0.9,
        limits => {%throughput_limits},
    },
    {
        name => 'multiget-10', kind => 'throughput',
        desc => 'gets of 10 keys each, 1 KB values, 100k keys, 50 conns',
        keys => 100_000, value => 1024, get => 1.0, width => 10,
        limits => {%throughput_limits},
    },
    {
        name => 'rss-1m-1k', kind => 'rss',
        desc => 'RSS per value byte after storing 1M items of 1 KB',
        keys => 1_000_000, value => 1024,
        limits => { 'RSS bytes/value byte' => 1.0 },
    },
    {
        name => 'instr-get', kind => 'callgrind',
        desc => 'instructions per 1 KB get, 1 conn, 10k keys preloaded',
        keys => 10_000, value => 1024, get => 1.0, conns => 1,
        count => 20_000,
        limits => { 'instructions/get' => 0.8 },
    },
    {
        name => 'instr-set', kind => 'callgrind',
        desc => 'instructions per 1 KB set, 1 conn, 10k keys preloaded',
        keys => 10_000, value => 1024, get => 0.0, conns => 1,
        count => 20_000,
        limits => { 'instructions/set' => 0.8 },
    },
    # Issue #3: the binary protocol and the meta commands.
    {
        name => 'bin-get-heavy', kind => 'throughput', proto => 'binary',
        desc => 'binary protocol, 90/10 GET/SET, 1 KB, 100k keys, 50 conns',
        keys => 100_000, value => 1024, get => 0.9,
        limits => {%throughput_limits},
    },
    {
        name => 'meta-mg', kind => 'throughput', proto => 'meta',
        desc => 'meta mg/ms, 90/10, 1 KB, 100k keys, 50 conns',
        keys => 100_000, value => 1024, get => 0.9,
        limits => {%throughput_limits},
    },
    {
        name => 'instr-bin-get', kind => 'callgrind', proto => 'binary',
        desc => 'instructions per 1 KB binary GET, 1 conn',
        keys => 10_000, value => 1024, get => 1.0, conns => 1,
        count => 20_000,
        limits => { 'instructions/get' => 0.8 },
    },
    {
        name => 'instr-meta-mg', kind => 'callgrind', proto => 'meta',
        desc => 'instructions per 1 KB meta mg, 1 conn',
        keys => 10_000, value => 1024, get => 1.0, conns => 1,
        count => 20_000,
        limits => { 'instructions/get' => 0.8 },
    },
    # Issue #20: TLS clients (-Z), ours against Debian's memcached -Z with
    # the same self-signed certificate (ECDSA P-256, made by run.sh).
    {
        name => 'tls-get-heavy', kind => 'throughput', tls => 1,
        desc => 'TLS: 90/10 get/set, 1 KB values, 100k keys, 50 conns',
        keys => 100_000, value => 1024, get => 0.9,
        targets => ['reference-tls', 'ours-tls'],
        limits => { 'CPU us/request' => 1.0 },
    },
    {
        name => 'tls-set-heavy', kind => 'throughput', tls => 1,
        desc => 'TLS: 10/90 get/set, 4 KB values, 100k keys, 50 conns',
        keys => 100_000, value => 4096, get => 0.1,
        targets => ['reference-tls', 'ours-tls'],
        limits => { 'CPU us/request' => 1.0 },
    },
    {
        name => 'instr-tls-get', kind => 'callgrind', tls => 1,
        desc => 'TLS: instructions per 1 KB get, 1 conn, 10k keys preloaded',
        keys => 10_000, value => 1024, get => 1.0, conns => 1,
        count => 10_000, targets => ['reference-tls', 'ours-tls'],
        limits => { 'instructions/get' => 1.0 },
    },
    {
        name => 'instr-tls-set', kind => 'callgrind', tls => 1,
        desc => 'TLS: instructions per 1 KB set, 1 conn, 10k keys preloaded',
        keys => 10_000, value => 1024, get => 0.0, conns => 1,
        count => 10_000, targets => ['reference-tls', 'ours-tls'],
        limits => { 'instructions/set' => 1.0 },
    },
    # Issue #4: a replicated pair against a single memcached.
    {
        name => 'pair-get-heavy', kind => 'throughput',
        desc => 'pair: 90/10 get/set, 1 KB, 100k keys, 50 conns',
        keys => 100_000, value => 1024, get => 0.9,
        targets => ['reference', 'ours-pair'],
        limits => { 'CPU us/request' => 1.05 },
    },
    {
        name => 'pair-set-heavy', kind => 'throughput',
        desc => 'pair: 10/90 get/set, 4 KB, 100k keys, 50 conns',
        keys => 100_000, value => 4096, get => 0.1,
        targets => ['reference', 'ours-pair'],
        limits => { 'CPU us/request' => 1.4 },
    },
    {
        name => 'instr-pair-set', kind => 'callgrind',
        desc => 'pair: instructions per 1 KB set, both nodes, 1 conn',
        keys => 10_000, value => 1024, get => 0.0, conns => 1,
        count => 20_000, targets => ['reference', 'ours-pair'],
        limits => {},
    },
];
