#!/bin/sh
# SPDX-License-Identifier: MIT
#
# test_ops_deb.sh BUILD_DIR [check|dpkg|build OUT_DIR]
#
# The Debian packages that debian/ builds with debhelper.
#
# check (the default): first, always, debian/ agrees with the build in
# BUILD_DIR -- the symbols file lists exactly what libarena-client.so.0
# exports (a new arena_* function needs a line there), debian/changelog's
# version is the project's, the maintainer scripts parse. Then, when
# dpkg-buildpackage, debhelper and the build dependencies are installed
# (skipped otherwise; ARENA_TEST_DEB=0 turns it off), it builds the packages
# the way a Debian maintainer does -- dpkg-buildpackage -us -uc -b in a clean
# copy of the source tree -- and checks them: lintian (when installed) must
# report no error and no warning; dpkg-deb shows what each package holds
# (the daemon and arenactl, units, sysusers/tmpfiles snippets, the conffile,
# compressed man pages; the runtime library with its symbols and shlibs;
# header, .so link, static library, pkg-config file in the multiarch
# directory, CMake package; the preload library in its private directory;
# the -dbgsym packages). The package build skips the tests (nocheck: they
# are neither built nor run; the suite that runs this test runs them), so it
# compiles only what is installed: about 30 s on two cores, lintian included.
#
# dpkg (ARENA_TEST_DPKG=1, as root): builds as above, then installs the
# packages on this machine with dpkg -i, checks them, removes them with
# dpkg -r and purges them with dpkg -P, and checks that nothing is left.
#
# build OUT_DIR: only builds the packages into OUT_DIR (the boot test uses it).
#
# Exit 77 means skipped, with the reason.
set -eu
BUILD=$(cd "$1" && pwd)
MODE=${2:-check}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
PKGS="arenad libarena-client0 libarena-client-dev libarena-preload"

[ -d "$SRC/debian" ] || fail "no debian/ in $SRC"

# ---- check: debian/ against the build, always ----
check_debian() {
    [ -x "$SRC/debian/rules" ] || fail "debian/rules is not executable"
    grep -qx 'Build-Depends: debhelper-compat (= 13),' "$SRC/debian/control" ||
        fail "debian/control does not build-depend on debhelper-compat (= 13)"
    proj=$(sed -n 's/^project(arenad VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
    chlog=$(sed -n '1s/^arenad (\([^)]*\)).*/\1/p' "$SRC/debian/changelog")
    [ -n "$proj" ] && [ "$chlog" = "$proj" ] ||
        fail "debian/changelog says '$chlog', CMakeLists.txt says '$proj'"
    if command -v dpkg-parsechangelog >/dev/null 2>&1; then
        dpkg-parsechangelog -l"$SRC/debian/changelog" >/dev/null || fail "debian/changelog does not parse"
    fi
    for s in "$SRC"/debian/*.postrm "$SRC"/debian/*.postinst "$SRC"/debian/*.prerm "$SRC"/debian/*.preinst; do
        [ -e "$s" ] || continue
        sh -n "$s" || fail "$s: syntax"
        if grep -q 'systemctl' "$s"; then fail "$s calls systemctl (debhelper's snippets do that)"; fi
    done
    LIB=$BUILD/lib/libarena-client.so.0
    [ -e "$LIB" ] || skip "$LIB not built"
    command -v nm >/dev/null 2>&1 || skip "nm is not installed"
    # Names without their version node (nm says name@@NODE, the file name@NODE).
    nm -D --defined-only "$LIB" | awk '$3 != "" {sub(/@.*/, "", $3); print $3}' | sort >"$DIR/exported.txt"
    sed -n 's/^ \([^ @]*\)@[^ ]* .*/\1/p' "$SRC/debian/libarena-client0.symbols" | sort >"$DIR/symbols.txt"
    if ! cmp -s "$DIR/exported.txt" "$DIR/symbols.txt"; then
        diff "$DIR/symbols.txt" "$DIR/exported.txt" || true
        fail "debian/libarena-client0.symbols differs from what libarena-client.so.0 exports (< file, > library)"
    fi
    echo "debian/: version $chlog, $(wc -l <"$DIR/symbols.txt") symbols in libarena-client0.symbols"
}

# ---- build: dpkg-buildpackage in a clean copy ----
build_packages() {
    out=$1
    command -v dpkg-buildpackage >/dev/null 2>&1 || skip "dpkg-buildpackage is not installed (apt-get install dpkg-dev)"
    command -v dh >/dev/null 2>&1 || skip "debhelper is not installed (apt-get install debhelper)"
    dpkg-checkbuilddeps "$SRC/debian/control" >"$DIR/builddeps.txt" 2>&1 ||
        { cat "$DIR/builddeps.txt"; skip "build dependencies missing (mk-build-deps -i debian/control)"; }
    # A clean tree: the files git knows (tracked, or new and not ignored), so
    # build directories and earlier package builds stay out.
    mkdir -p "$out/src"
    if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
        (cd "$SRC" && git ls-files -z -c -o --exclude-standard | xargs -0 tar -cf - --) |
            tar -xf - -C "$out/src"
    else
        (cd "$SRC" && tar --exclude='./build*' --exclude='./obj-*' -cf - .) | tar -xf - -C "$out/src"
    fi
    (cd "$out/src" && DEB_BUILD_OPTIONS="nocheck ${DEB_BUILD_OPTIONS:-}" \
        dpkg-buildpackage -us -uc -b -j2 >"$out/build.log" 2>&1) ||
        { tail -40 "$out/build.log"; fail "dpkg-buildpackage -us -uc -b"; }
    for p in $PKGS; do
        ls "$out"/${p}_*.deb >/dev/null 2>&1 || fail "package $p not built"
    done
}

DIR=$(mktemp -d /tmp/arenad-ops-deb-XXXXXX)
cleanup() {
    if [ "$MODE" = dpkg ]; then
        for p in $PKGS; do
            dpkg -s "$p" >/dev/null 2>&1 && dpkg -P "$p" >/dev/null 2>&1 || true
        done
    fi
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

if [ "$MODE" = build ]; then
    OUT=$(cd "$3" && pwd)
    build_packages "$OUT"
    rm -rf "$OUT/src"
    ls "$OUT"/*.deb
    exit 0
fi

check_debian
if [ "$MODE" = check ] && [ "${ARENA_TEST_DEB:-1}" = 0 ]; then
    echo "PASS (ARENA_TEST_DEB=0: the packages were not built)"
    exit 0
fi
if [ "$MODE" = dpkg ]; then
    [ "${ARENA_TEST_DPKG:-0}" = 1 ] || skip "set ARENA_TEST_DPKG=1 to install the packages on this machine"
    [ "$(id -u)" = 0 ] || skip "dpkg -i needs root"
    for p in $PKGS; do
        if dpkg -s "$p" >/dev/null 2>&1; then skip "a package named $p is already installed; not touching it"; fi
    done
fi

build_packages "$DIR"
CHANGES=$(ls "$DIR"/arenad_*.changes)
for deb in "$DIR"/*.deb; do
    echo "package: $(basename "$deb") ($(wc -c <"$deb") bytes, $(dpkg-deb -c "$deb" | grep -vc '/$') files)"
done

# lintian: no error, no warning (overrides only in debian/*.lintian-overrides,
# each with its reason).
if command -v lintian >/dev/null 2>&1; then
    lintian --fail-on error,warning "$CHANGES" >"$DIR/lintian.txt" 2>&1 ||
        { cat "$DIR/lintian.txt"; fail "lintian reports errors or warnings"; }
    grep -v 'running with root privileges' "$DIR/lintian.txt" || true
    echo "lintian: no errors, no warnings"
else
    echo "lintian is not installed: not run (apt-get install lintian)"
fi

# contents_of PKG: the package's paths, one a line, without the leading '.'.
contents_of() {
    dpkg-deb -c "$DIR"/"$1"_*.deb | awk '{print $6}' | sed 's|^\./|/|'
}
expect() { # PKG PATH-PATTERN...
    p=$1
    shift
    contents_of "$p" >"$DIR/c.txt"
    for f in "$@"; do
        grep -qx "$f" "$DIR/c.txt" || { cat "$DIR/c.txt"; fail "$f not in $p"; }
    done
}
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
expect arenad /usr/sbin/arenad /usr/bin/arenactl /etc/arenad/arenad.conf \
    /lib/systemd/system/arenad.service /lib/systemd/system/arenad.socket \
    /usr/lib/sysusers.d/arenad.conf /usr/lib/tmpfiles.d/arenad.conf \
    /usr/share/man/man8/arenad.8.gz /usr/share/man/man8/arenactl.8.gz \
    /usr/share/man/man5/arenad.conf.5.gz /usr/share/bash-completion/completions/arenactl \
    /usr/share/doc/arenad/copyright /usr/share/doc/arenad/changelog.gz
expect libarena-client0 "/usr/lib/$MA/libarena-client.so.0" "/usr/lib/$MA/libarena-client.so.0.*"
expect libarena-client-dev /usr/include/arena.h "/usr/lib/$MA/libarena-client.so" \
    "/usr/lib/$MA/libarena-client.a" "/usr/lib/$MA/pkgconfig/arena-client.pc" \
    "/usr/lib/$MA/cmake/ArenaClient/ArenaClientConfig.cmake" /usr/share/man/man3/arena.3.gz
expect libarena-preload "/usr/lib/$MA/arenad/libarena-preload.so"
for p in $PKGS; do
    if contents_of "$p" | grep -q '^/usr/local'; then fail "$p has files under /usr/local"; fi
done
for p in arenad libarena-client0 libarena-preload; do
    ls "$DIR"/${p}-dbgsym_*.deb >/dev/null 2>&1 || fail "no $p-dbgsym package"
done

dpkg-deb -e "$DIR"/arenad_*.deb "$DIR/control"
grep -qx '/etc/arenad/arenad.conf' "$DIR/control/conffiles" || fail "arenad.conf is not a conffile"
grep -q 'systemd-sysusers' "$DIR/control/postinst" || fail "postinst does not create the user"
grep -q "try-restart 'arenad.service'" "$DIR/control/postinst" ||
    fail "postinst does not restart a running daemon after an upgrade"
if grep -q "stop 'arenad.service'" "$DIR/control/prerm" 2>/dev/null; then
    fail "prerm stops arenad.service on upgrade (its fd store would be lost)"
fi
dpkg-deb -e "$DIR"/libarena-client0_*.deb "$DIR/libcontrol"
[ -f "$DIR/libcontrol/symbols" ] && [ -f "$DIR/libcontrol/shlibs" ] || fail "libarena-client0 lacks symbols or shlibs"
mkdir "$DIR/root"
for deb in "$DIR"/*.deb; do
    case "$deb" in *-dbgsym_*) continue ;; esac
    dpkg-deb -x "$deb" "$DIR/root"
done
grep -q '^ExecStart=/usr/sbin/arenad --foreground --config /etc/arenad/arenad.conf$' \
    "$DIR/root/lib/systemd/system/arenad.service" || fail "ExecStart does not use /usr/sbin and /etc"
PC=$DIR/root/usr/lib/$MA/pkgconfig/arena-client.pc
grep -q '^prefix=/usr$' "$PC" || fail "arena-client.pc prefix is not /usr"
grep -q "^libdir=\${prefix}/lib/$MA\$" "$PC" || fail "arena-client.pc libdir is not the multiarch directory"
if grep -rqs -e "$BUILD" -e "$DIR/src" "$DIR/root/lib/systemd" "$PC" "$DIR/root/etc" \
    "$DIR/root/usr/lib/$MA/cmake"; then
    fail "build paths in the packages"
fi

if [ "$MODE" != dpkg ]; then
    echo PASS
    exit 0
fi

# ---- the real thing, on this host ----
DEBS=""
for p in $PKGS; do DEBS="$DEBS $(ls "$DIR"/${p}_*.deb)"; done
# shellcheck disable=SC2086
dpkg -i $DEBS >"$DIR/dpkg-i.log" 2>&1 || { cat "$DIR/dpkg-i.log"; fail "dpkg -i"; }
for p in $PKGS; do
    dpkg -s "$p" | grep -q '^Status: install ok installed' || fail "$p not installed"
done
/usr/sbin/arenad --version | grep -q '^arenad ' || fail "installed arenad does not run"
/usr/bin/arenactl --version | grep -q '^arenactl ' || fail "installed arenactl does not run"
getent passwd arenad >/dev/null || fail "user arenad not created"
pkg-config --exists arena-client || fail "pkg-config does not find arena-client"
for p in $PKGS; do dpkg -L "$p"; done >"$DIR/files.txt"
if [ -d /run/systemd/system ]; then
    systemctl is-enabled arenad.socket >/dev/null || fail "arenad.socket not enabled"
fi
# shellcheck disable=SC2086
dpkg -r $PKGS >"$DIR/dpkg-r.log" 2>&1 || { cat "$DIR/dpkg-r.log"; fail "dpkg -r"; }
# After remove only the conffile may stay.
left=""
while read -r f; do
    # Directories stay (shared ones like /lib are symlinks on a merged /usr).
    [ -d "$f" ] && continue
    [ -f "$f" ] || [ -L "$f" ] || continue
    [ "$f" = /etc/arenad/arenad.conf ] && continue
    left="$left $f"
done <"$DIR/files.txt"
[ -z "$left" ] || fail "left after dpkg -r:$left"
# shellcheck disable=SC2086
dpkg -P $PKGS >"$DIR/dpkg-p.log" 2>&1 || { cat "$DIR/dpkg-p.log"; fail "dpkg -P"; }
[ ! -e /etc/arenad ] || fail "/etc/arenad left after purge"
for p in $PKGS; do
    if dpkg -s "$p" >/dev/null 2>&1; then fail "$p still known after purge"; fi
done
if getent passwd arenad >/dev/null; then fail "user arenad left after purge"; fi
if getent group arenad >/dev/null; then fail "group arenad left after purge"; fi
while read -r f; do
    [ -f "$f" ] && fail "left after purge: $f"
done <"$DIR/files.txt"
echo PASS
