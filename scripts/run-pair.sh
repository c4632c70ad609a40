#!/bin/sh
# Start a replicated pair on loopback in the foreground:
#   node A: clients on 127.0.0.1:11211, replication on 127.0.0.1:11212
#   node B: clients on 127.0.0.1:11213, replication on 127.0.0.1:11214
# Ctrl-C (or SIGTERM) stops both.  Extra arguments go to both nodes,
# e.g. scripts/run-pair.sh -m 1024 -v
set -eu
cd "$(dirname "$0")/.."
BIN=${MEMCACHED_BIN:-./memcached}
USER_ARG=""
[ "$(id -u)" -eq 0 ] && USER_ARG="-u nobody"

# shellcheck disable=SC2086
$BIN $USER_ARG -l 127.0.0.1 -p 11211 -o repl_port=11212 \
    -x 127.0.0.1:11214 "$@" &
A=$!
# shellcheck disable=SC2086
$BIN $USER_ARG -l 127.0.0.1 -p 11213 -o repl_port=11214 \
    -x 127.0.0.1:11212 "$@" &
B=$!
trap 'kill $A $B 2>/dev/null; wait $A $B 2>/dev/null; exit 0' INT TERM
echo "paircached pair: A on 127.0.0.1:11211 (pid $A), B on" \
     "127.0.0.1:11213 (pid $B); Ctrl-C stops both" >&2
wait $A $B
