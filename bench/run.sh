#!/bin/bash
# run.sh: benchmark ours against Debian's memcached (see bench/README.md).
# Builds bench/loadgen with cc -O2 when loadgen.c is newer, checks the
# tools, then hands over to harness.pl with the same arguments.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
export MEMCACHED_BIN=${MEMCACHED_BIN:-$here/../memcached}
export REFERENCE_BIN=${REFERENCE_BIN:-/usr/bin/memcached}

for tool in cc perl taskset strace valgrind callgrind_control getconf; do
    if ! command -v "$tool" >/dev/null; then
        echo "run.sh: $tool not found (see bench/README.md)" >&2
        exit 1
    fi
done
if [ "$(getconf _NPROCESSORS_ONLN)" -lt 2 ]; then
    echo "run.sh: needs 2 CPUs (server on 0, load on 1)" >&2
    exit 1
fi
case " $* " in
*" --list "* | *" --help "*) ;;
*)
    for bin in "$REFERENCE_BIN" "$MEMCACHED_BIN"; do
        if [ ! -x "$bin" ]; then
            echo "run.sh: $bin is not built; set MEMCACHED_BIN" >&2
            exit 1
        fi
    done
    ;;
esac

if [ ! -x "$here/loadgen" ] || [ "$here/loadgen.c" -nt "$here/loadgen" ]
then
    cc -O2 -Wall -Wextra -o "$here/loadgen" "$here/loadgen.c" -lssl -lcrypto
fi
mkdir -p "$here/out"
# The TLS loads' certificate: self-signed, made once (openssl(1)).
tls="$here/out/tls"
if [ ! -s "$tls/cert.pem" ] && command -v openssl >/dev/null; then
    mkdir -p "$tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -nodes -days 3650 -subj /CN=paircached-bench \
        -keyout "$tls/key.pem" -out "$tls/cert.pem" >/dev/null 2>&1
fi
export BENCH_TLS_CERT="$tls/cert.pem" BENCH_TLS_KEY="$tls/key.pem"
exec perl "$here/harness.pl" "$@"
