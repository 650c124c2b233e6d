#!/bin/sh
# SPDX-License-Identifier: MIT
#
# test_ops_deb.sh BUILD_DIR [dpkg]
#
# Builds the .deb with CPack into a temporary directory and checks it with
# dpkg-deb: control fields, maintainer scripts, conffiles, and the contents
# (binaries, library, units with /usr paths, /etc/arenad/arenad.conf, man
# pages; nothing under /usr/local, no build paths).
#
# With the second argument `dpkg` (ARENA_TEST_DPKG=1 in CTest) it also installs
# the package on this machine with dpkg -i, checks it, removes it with dpkg -r
# and purges it with dpkg -P, and checks that nothing is left. That changes
# the host, so it only runs as root and when asked; exit 77 means skipped.
set -eu
BUILD=$1
MODE=${2:-contents}
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }

command -v dpkg-deb >/dev/null 2>&1 || skip "dpkg-deb is not installed (not a Debian system)"
command -v cpack >/dev/null 2>&1 || skip "cpack is not installed"
if [ "$MODE" = dpkg ]; then
    [ "${ARENA_TEST_DPKG:-0}" = 1 ] || skip "set ARENA_TEST_DPKG=1 to install the .deb on this machine"
    [ "$(id -u)" = 0 ] || skip "dpkg -i needs root"
    if dpkg -s arenad >/dev/null 2>&1; then
        skip "a package named arenad is already installed; not touching it"
    fi
fi

DIR=$(mktemp -d /tmp/arenad-ops-deb-XXXXXX)
cleanup() {
    if [ "$MODE" = dpkg ] && dpkg -s arenad >/dev/null 2>&1; then
        dpkg -P arenad >/dev/null 2>&1 || true
    fi
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

(cd "$BUILD" && cpack -G DEB -B "$DIR" >"$DIR/cpack.log" 2>&1) || { cat "$DIR/cpack.log"; fail "cpack -G DEB"; }
DEB=$(ls "$DIR"/arenad_*.deb 2>/dev/null | head -1)
[ -n "$DEB" ] || fail "no .deb produced"
echo "package: $(basename "$DEB") ($(wc -c <"$DEB") bytes)"

dpkg-deb -I "$DEB" >"$DIR/info.txt"
for f in 'Package: arenad' 'Architecture: ' 'Depends: .*libuv1' 'Section: admin'; do
    grep -q "$f" "$DIR/info.txt" || { cat "$DIR/info.txt"; fail "control lacks $f"; }
done
dpkg-deb -e "$DEB" "$DIR/control"
for s in postinst prerm postrm; do
    [ -x "$DIR/control/$s" ] || fail "maintainer script $s missing or not executable"
    sh -n "$DIR/control/$s" || fail "$s: syntax"
done
grep -qx '/etc/arenad/arenad.conf' "$DIR/control/conffiles" || fail "arenad.conf is not a conffile"

dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|' >"$DIR/contents.txt"
for f in /usr/sbin/arenad /usr/bin/arenactl /usr/include/arena.h \
         /usr/lib/systemd/system/arenad.service /usr/lib/systemd/system/arenad.socket \
         /usr/lib/sysusers.d/arenad.conf /usr/lib/tmpfiles.d/arenad.conf /etc/arenad/arenad.conf \
         /usr/share/man/man8/arenad.8 /usr/share/man/man8/arenactl.8 \
         /usr/share/man/man5/arenad.conf.5 /usr/share/man/man3/arena.3 \
         /usr/share/bash-completion/completions/arenactl; do
    grep -qx "$f" "$DIR/contents.txt" || fail "$f not in the package"
done
grep -q '/libarena-client\.so\.0$' "$DIR/contents.txt" || fail "libarena-client.so.0 not in the package"
grep -q '/pkgconfig/arena-client\.pc$' "$DIR/contents.txt" || fail "arena-client.pc not in the package"
if grep -q '^/usr/local' "$DIR/contents.txt"; then fail "files under /usr/local"; fi
mkdir "$DIR/root"
dpkg-deb -x "$DEB" "$DIR/root"
grep -q '^ExecStart=/usr/sbin/arenad --foreground --config /etc/arenad/arenad.conf$' \
    "$DIR/root/usr/lib/systemd/system/arenad.service" || fail "ExecStart does not use /usr/sbin and /etc"
PC=$(find "$DIR/root" -name arena-client.pc)
grep -q '^prefix=/usr$' "$PC" || fail "arena-client.pc prefix is not /usr"
if grep -rqs "$BUILD" "$DIR/root/usr/lib/systemd" "$PC" "$DIR/root/etc"; then fail "build paths in the package"; fi
echo "contents: $(wc -l <"$DIR/contents.txt") entries"

if [ "$MODE" != dpkg ]; then
    echo PASS
    exit 0
fi

# ---- the real thing, on this host ----
dpkg -i "$DEB" >"$DIR/dpkg-i.log" 2>&1 || { cat "$DIR/dpkg-i.log"; fail "dpkg -i"; }
dpkg -s arenad | grep -q '^Status: install ok installed' || fail "not installed"
/usr/sbin/arenad --version | grep -q '^arenad ' || fail "installed arenad does not run"
/usr/bin/arenactl --version | grep -q '^arenactl ' || fail "installed arenactl does not run"
getent passwd arenad >/dev/null || fail "user arenad not created"
dpkg -L arenad >"$DIR/files.txt"
if [ -d /run/systemd/system ]; then
    systemctl is-enabled arenad.socket >/dev/null || fail "arenad.socket not enabled"
fi
dpkg -r arenad >"$DIR/dpkg-r.log" 2>&1 || { cat "$DIR/dpkg-r.log"; fail "dpkg -r"; }
# After remove only the conffile may stay.
left=""
while read -r f; do
    [ -f "$f" ] || [ -L "$f" ] || continue
    [ "$f" = /etc/arenad/arenad.conf ] && continue
    left="$left $f"
done <"$DIR/files.txt"
[ -z "$left" ] || fail "left after dpkg -r:$left"
dpkg -P arenad >"$DIR/dpkg-p.log" 2>&1 || { cat "$DIR/dpkg-p.log"; fail "dpkg -P"; }
[ ! -e /etc/arenad ] || fail "/etc/arenad left after purge"
if dpkg -s arenad >/dev/null 2>&1; then fail "package still known after purge"; fi
if getent passwd arenad >/dev/null; then fail "user arenad left after purge"; fi
if getent group arenad >/dev/null; then fail "group arenad left after purge"; fi
while read -r f; do
    [ -f "$f" ] && fail "left after purge: $f"
done <"$DIR/files.txt"
echo PASS
