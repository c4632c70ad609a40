#!/usr/bin/env bash
# upstream-suite.sh [--tap] BINARY [TEST ...]
#
# Runs test files of memcached 1.6.18's own suite (t/*.t from Debian 12's
# memcached source package) against BINARY: the drop-in check of issue
# #19.  Nothing of that suite is kept in this tree; the source is fetched
# and cached:
#   1. $UPSTREAM_SRC, an unpacked memcached-1.6.18 tree, if set;
#   2. $UPSTREAM_CACHE/memcached-1.6.18 if an earlier run unpacked it
#      (default ${XDG_CACHE_HOME:-$HOME/.cache}/memcached-upstream);
#   3. `apt-get source` with a deb-src list of its own for Debian 12
#      (bookworm), nothing changed in /etc/apt;
#   4. the same .orig tarball from deb.debian.org (hosts without Debian's
#      keys).
# Either way the tarball must have the SHA-256 that bookworm's signed
# .dsc lists for it.
# When none works (no network), it prints why and exits 0: with --tap as
# "1..0 # SKIP".
#
# The files run in a temp dir holding a copy of t/, ./memcached-debug
# (BINARY, less the debug-only "-o relaxed_privileges" the suite adds)
# and ./timedrun built from the same release.  TEST is a name such as
# "cas" or "t/cas.t"; default: every file.  Output: one line per file
# (PASS/FAIL/SKIP, seconds, reason) and "N passed, N failed, N skipped";
# exit 1 if a file failed.  With --tap: TAP, one test per file.
#
# Environment: UPSTREAM_SRC, UPSTREAM_CACHE, UPSTREAM_TIMEOUT (seconds per
# file, default 120), UPSTREAM_KEEP_LOGS=DIR (per-file logs kept there),
# UPSTREAM_DEBUG_BIN=FILE (a build with memcached's debug-only
# `debugtime`, make's t/debug/memcached: expirations.t runs against it).
set -u

VERSION=1.6.18
ORIG_SHA256=35872bd25f8d29d7cc2072d23e74344530891bfd0aa4f4f64184a8ae7291164b
ORIG_URL=http://deb.debian.org/debian/pool/main/m/memcached/memcached_${VERSION}.orig.tar.xz

tap=0
if [ "${1:-}" = --tap ]; then
    tap=1
    shift
fi
if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
    sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
bin=$(readlink -f "$1") && [ -x "$bin" ] || {
    echo "upstream-suite: $1 is not an executable" >&2
    exit 2
}
shift
per_file=${UPSTREAM_TIMEOUT:-120}
cache=${UPSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/memcached-upstream}

# skip REASON: the suite cannot run here; not a failure.
skip() {
    if [ "$tap" = 1 ]; then
        echo "1..0 # SKIP $1"
    else
        echo "upstream-suite: skipped: $1"
    fi
    exit 0
}

# --- the source -----------------------------------------------------------------
# archive_uri: the Debian mirror this machine uses, else deb.debian.org.
archive_uri() {
    local u
    u=$(awk '/^URIs:/ && $2 ~ /debian\/?$/ { print $2; exit }' \
            /etc/apt/sources.list.d/*.sources 2>/dev/null)
    [ -n "$u" ] || u=$(awk '$1 == "deb" && $2 ~ /debian\/?$/ { print $2; exit }' \
                          /etc/apt/sources.list 2>/dev/null)
    echo "${u:-http://deb.debian.org/debian}"
}

# unpack TARBALL: check it is 1.6.18's .orig tarball, unpack it into the
# cache; succeeds when the tree is there.
unpack() {
    echo "$ORIG_SHA256  $1" | sha256sum -c --status || {
        echo "checksum mismatch: $1" >>"$cache/fetch.log"
        rm -f "$1"
        return 1
    }
    tar -xJf "$1" -C "$cache" 2>>"$cache/fetch.log" &&
        [ -f "$cache/memcached-$VERSION/t/lib/MemcachedTest.pm" ]
}

# by_apt: `apt-get source` of bookworm's memcached (1.6.18 plus Debian
# revisions; only the upstream .orig tarball is used), signatures checked
# by apt against the keys the host trusts.
by_apt() {
    command -v apt-get >/dev/null || return 1
    mkdir -p "$cache/lists/partial" || return 1
    echo "deb-src $(archive_uri) bookworm main" >"$cache/src.list"
    local apt=(timeout 300 apt-get -q -o Dir::Etc::SourceList="$cache/src.list"
               -o Dir::Etc::SourceParts=/dev/null
               -o Dir::State::Lists="$cache/lists"
               -o Acquire::http::Timeout=20 -o APT::Sandbox::User=root)
    ( cd "$cache" && "${apt[@]}" update && "${apt[@]}" source \
          --download-only memcached ) >>"$cache/fetch.log" 2>&1 &&
        unpack "$cache/memcached_$VERSION.orig.tar.xz"
}

# by_url: the .orig tarball itself, checked against its known SHA-256.
by_url() {
    local f="$cache/memcached_$VERSION.orig.tar.xz.part"
    if command -v curl >/dev/null; then
        curl -fsS --max-time 300 -o "$f" "$ORIG_URL"
    elif command -v wget >/dev/null; then
        wget -q -T 60 -O "$f" "$ORIG_URL"
    else
        return 1
    fi >>"$cache/fetch.log" 2>&1 || return 1
    mv "$f" "$cache/memcached_$VERSION.orig.tar.xz" &&
        unpack "$cache/memcached_$VERSION.orig.tar.xz"
}

if [ -n "${UPSTREAM_SRC:-}" ]; then
    src=$UPSTREAM_SRC
elif [ -f "$cache/memcached-$VERSION/t/lib/MemcachedTest.pm" ]; then
    src=$cache/memcached-$VERSION
else
    mkdir -p "$cache" || skip "cannot create $cache"
    echo "upstream-suite: fetching Debian's memcached $VERSION source" >&2
    if by_apt || by_url; then
        src=$cache/memcached-$VERSION
    else
        skip "cannot fetch memcached $VERSION's source from the Debian archive (see $cache/fetch.log)"
    fi
fi
[ -f "$src/t/lib/MemcachedTest.pm" ] || skip "no t/lib/MemcachedTest.pm under $src"

# --- the run directory ----------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/upstream-suite.XXXXXX") || exit 2
tag="upstream-suite-$$-$RANDOM"
logs=${UPSTREAM_KEEP_LOGS:-$work/logs}
mkdir -p "$work/tmp" "$work/doc" "$logs"

# reap: stop, by PID, what a test file left running (servers, daemons):
# every process whose environment carries our tag.
reap() {
    local sig p pids
    for sig in TERM KILL; do
        pids=()
        for p in /proc/[0-9]*; do
            grep -qxzF "UPSTREAM_SUITE_TAG=$tag" "$p/environ" 2>/dev/null &&
                pids+=("${p#/proc/}")
        done
        [ ${#pids[@]} -eq 0 ] && return 0
        kill -s "$sig" "${pids[@]}" 2>/dev/null
        sleep 0.5
    done
}
trap 'reap; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM HUP

cp -r "$src/t" "$src/timedrun.c" "$work/" || exit 2
cp "$src/doc/protocol.txt" "$work/doc/" 2>/dev/null
cat >"$work/memcached-debug" <<EOF
#!/usr/bin/env bash
# memcached-debug for the suite: BINARY without "-o relaxed_privileges"
# (a debug-build option); exec keeps the PID the tests signal.
args=()
while [ \$# -gt 0 ]; do
    if [ "\$1" = -o ] && [ "\${2:-}" = relaxed_privileges ]; then
        shift 2
        continue
    fi
    args+=("\$1")
    shift
done
exec "\${UPSTREAM_RUN_BIN:-$bin}" "\${args[@]}"
EOF
chmod +x "$work/memcached-debug"
ln -s "$bin" "$work/memcached"
if ! cc -O2 -o "$work/timedrun" "$work/timedrun.c" 2>/dev/null; then
    printf '#!/bin/sh\nshift\nexec "$@"\n' >"$work/timedrun"
    chmod +x "$work/timedrun"
fi

# --- the files ------------------------------------------------------------------
files=()
if [ $# -gt 0 ]; then
    for t in "$@"; do
        t=${t##*/}
        files+=("${t%.t}.t")
    done
else
    for t in "$work"/t/*.t; do
        files+=("${t##*/}")
    done
fi

# result LOG RC -> "PASS|FAIL|SKIP<tab>reason" for one file's output
result() {
    local log=$1 rc=$2 nok nnot
    nok=$(grep -c '^ok ' "$log")
    nnot=$(grep -E '^not ok ' "$log" | grep -vc '# TODO')
    if grep -qE '^1\.\.0\b' "$log"; then
        printf 'SKIP\t%s\n' "$(grep -m1 -E '^1\.\.0' "$log" |
                               sed -E 's/^1\.\.0 *(# *(SKIP|skip))? *//')"
    elif [ "$rc" -eq 0 ] && [ "$nnot" -eq 0 ] && grep -qE '^1\.\.[0-9]+' "$log"; then
        printf 'PASS\t%s ok\n' "$nok"
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        printf 'FAIL\ttimed out after %ss\n' "$per_file"
    elif [ "$nnot" -gt 0 ]; then
        printf 'FAIL\t%s\n' "$(grep -m1 -E '^not ok ' "$log" | cut -c1-100)"
    else
        printf 'FAIL\trc=%s: %s\n' "$rc" "$(grep -vE '^(ok |not ok |#|1\.\.)' "$log" |
                                          grep -v '^\s*$' | tail -n1 | cut -c1-100)"
    fi
}

[ "$tap" = 1 ] && echo "1..${#files[@]}"
n=0 passed=0 failed=0 skipped=0
for t in "${files[@]}"; do
    n=$((n + 1))
    log=$logs/${t%.t}.log
    start=$SECONDS
    if [ -f "$work/t/$t" ]; then
        run_bin=
        if [ "$t" = expirations.t ] && [ -n "${UPSTREAM_DEBUG_BIN:-}" ]; then
            run_bin=$(readlink -f "$UPSTREAM_DEBUG_BIN")
        fi
        ( cd "$work" && UPSTREAM_SUITE_TAG=$tag TMPDIR="$work/tmp" \
              UPSTREAM_RUN_BIN=$run_bin \
              exec timeout -k 10 "$per_file" perl "t/$t" ) >"$log" 2>&1 </dev/null
        rc=$?
    else
        echo "no such file in memcached $VERSION: t/$t" >"$log"
        rc=2
    fi
    reap
    IFS=$'\t' read -r status reason < <(result "$log" "$rc")
    secs=$((SECONDS - start))
    case $status in
    PASS) passed=$((passed + 1)) ;;
    FAIL) failed=$((failed + 1)) ;;
    SKIP) skipped=$((skipped + 1)) ;;
    esac
    if [ "$tap" = 1 ]; then
        case $status in
        PASS) echo "ok $n - t/$t (${secs}s, $reason)" ;;
        SKIP) echo "ok $n - t/$t # SKIP $reason" ;;
        FAIL) echo "not ok $n - t/$t (${secs}s): $reason"
              sed 's/^/# /' "$log" | tail -n 15 ;;
        esac
    else
        printf '%-4s  %-27s %4ss  %s\n' "$status" "$t" "$secs" "$reason"
    fi
done
if [ "$tap" = 1 ]; then
    echo "# $passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed, $skipped skipped"
fi
[ "$failed" -eq 0 ]
