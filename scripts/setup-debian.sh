#!/bin/sh
# Install the Debian 12 packages paircached needs to build and to run its
# tests, but only those that are missing. Safe to run again.
set -eu

build="build-essential autoconf automake libtool pkg-config libevent-dev
libssl-dev libsasl2-dev check perl clang libfuzzer-14-dev"
tests="memcached libmemcached-tools php-cli php-fpm libfcgi-bin php-memcached php-memcache
python3 python3-pymemcache nutcracker valgrind strace iproute2 keepalived
haproxy libsasl2-modules libsasl2-modules-db sasl2-bin netcat-openbsd openssl
libio-socket-ssl-perl man-db groff-base systemd debhelper lintian"

missing=""
for p in $build $tests; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
            grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup-debian: installing:$missing" >&2
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    --no-install-recommends $missing >&2
