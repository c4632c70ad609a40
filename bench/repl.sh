#!/bin/bash
# repl.sh: replication figures of a paircached pair, with Debian's
# memcached as a single-node reference (see bench/README.md,
# "Replication").  Builds bench/loadgen with cc -O2 when loadgen.c is
# newer, checks the tools, then runs repl.pl on CPU 1 (every server it
# starts goes to CPU 0).  Output: stdout and bench/out/repl.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
export MEMCACHED_BIN=${MEMCACHED_BIN:-$here/../memcached}
export REFERENCE_BIN=${REFERENCE_BIN:-/usr/bin/memcached}

for tool in cc perl taskset strace getconf; do
    if ! command -v "$tool" >/dev/null; then
        echo "repl.sh: $tool not found (see bench/README.md)" >&2
        exit 1
    fi
done
if [ "$(getconf _NPROCESSORS_ONLN)" -lt 2 ]; then
    echo "repl.sh: needs 2 CPUs (servers on 0, load on 1)" >&2
    exit 1
fi
for bin in "$REFERENCE_BIN" "$MEMCACHED_BIN"; do
    if [ ! -x "$bin" ]; then
        echo "repl.sh: $bin is not built; set MEMCACHED_BIN" >&2
        exit 1
    fi
done

if [ ! -x "$here/loadgen" ] || [ "$here/loadgen.c" -nt "$here/loadgen" ]
then
    # build beside it and rename, so that a harness run using the old
    # binary at this moment is not disturbed
    cc -O2 -Wall -Wextra -o "$here/loadgen.tmp.$$" "$here/loadgen.c" \
        -lssl -lcrypto
    mv -f "$here/loadgen.tmp.$$" "$here/loadgen"
fi
mkdir -p "$here/out"
exec taskset -c 1 perl "$here/repl.pl" "$@"
