#!/bin/sh
# Build the Debian package from the release tarball (make dist), the way a
# packager would, then check it: lintian must report no error, and
# systemd-analyze verify must have nothing to say about its unit.  The
# package is never installed: on CI, Debian's memcached is the
# benchmark's reference and must stay the only one.
# Usage: scripts/check-package.sh [TARBALL]   (default: make dist's)
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
tarball=${1:-}
if [ -z "$tarball" ]; then
    make -s -C "$src" dist >/dev/null
    tarball=$(ls -t "$src"/paircached-*.tar.gz | head -1)
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/paircached-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -xzf "$tarball" -C "$work"
cd "$work"/paircached-*/

echo "check-package: dpkg-buildpackage -us -uc -b (nocheck)"
DEB_BUILD_OPTIONS="nocheck parallel=2" dpkg-buildpackage -us -uc -b \
    > "$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }
deb=$(ls "$work"/paircached_*.deb)
changes=$(ls "$work"/paircached_*.changes)
echo "check-package: built $(basename "$deb")"

# lintian: errors fail; warnings are printed for the reader.
lintian --tag-display-limit 0 "$changes" > "$work/lintian.txt" 2>&1 || true
cat "$work/lintian.txt"
if grep -q '^E: ' "$work/lintian.txt"; then
    echo "check-package: lintian reports errors" >&2
    exit 1
fi
echo "check-package: lintian: no errors"

# The unit as the package ships it, with its commands checked in the
# unpacked package (their installed paths do not exist here).
mkdir -p "$work/root" "$work/unit"
dpkg-deb -x "$deb" "$work/root"
unit="$work/root/lib/systemd/system/paircached.service"
test -f "$unit"
sed "s|=/usr/|=$work/root/usr/|g" "$unit" > "$work/unit/paircached.service"
out=$(systemd-analyze verify --man=no "$work/unit/paircached.service" 2>&1)
if [ -n "$out" ]; then
    echo "$out"
    echo "check-package: systemd-analyze verify complains" >&2
    exit 1
fi
echo "check-package: systemd-analyze verify: clean"
for f in usr/bin/paircached usr/share/man/man1/paircached.1.gz \
         etc/paircached.conf usr/libexec/paircached/paircached-wrapper; do
    test -e "$work/root/$f" || { echo "check-package: no /$f" >&2; exit 1; }
done
echo "check-package: ok"
