#!/bin/sh
# SPDX-License-Identifier: MIT
#
# test_ops_install.sh BUILD_DIR SOURCE_DIR PROM_CHECK
#
# `cmake --install` into a temporary prefix, then checks what landed there:
# the file list, the library's SONAME, version node and exports (arena_*
# only), the units (systemd-analyze verify, and that it catches a broken
# unit), the man pages (groff -ww), the bash completion (bash -n), the default
# configuration (every key of daemon/config.c, all commented out). Then the
# installed arenad serves: an outside program built once with pkg-config and
# once with find_package(ArenaClient) leases memory through it, and the
# installed arenactl's metrics pass the strict Prometheus checker while a
# client with an awkward name holds a lease.
#
# Everything lives in one mktemp directory; the daemon and the holder are
# killed and the directory removed on every exit path.
set -eu
BUILD=$1
SRC=$2
PROM_CHECK=$3

DIR=$(mktemp -d /tmp/arenad-ops-install-XXXXXX)
DPID=""
HPID=""
cleanup() {
    [ -n "$HPID" ] && kill "$HPID" 2>/dev/null || true
    if [ -n "$DPID" ]; then
        kill "$DPID" 2>/dev/null || true
        wait "$DPID" 2>/dev/null || true
    fi
    [ -n "$HPID" ] && wait "$HPID" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
# A step this machine cannot run: said at once, and the test ends with 77
# (CTest's skip) after every other check passed, listing each reason.
SKIPPED=""
skip() {
    echo "SKIP $*"
    SKIPPED="$SKIPPED$*
"
}

PREFIX=$DIR/usr
step "cmake --install $BUILD --prefix $PREFIX"
cmake --install "$BUILD" --prefix "$PREFIX" >"$DIR/install.log" || { cat "$DIR/install.log"; fail "install"; }

LIBSO=$(find "$PREFIX" -name 'libarena-client.so.0' | head -1)
[ -n "$LIBSO" ] || fail "libarena-client.so.0 not installed"
LIBDIR=$(dirname "$LIBSO")
for f in sbin/arenad bin/arenactl include/arena.h lib/systemd/system/arenad.service \
         lib/systemd/system/arenad.socket lib/sysusers.d/arenad.conf lib/tmpfiles.d/arenad.conf \
         etc/arenad/arenad.conf share/man/man8/arenad.8 share/man/man8/arenactl.8 \
         share/man/man5/arenad.conf.5 share/man/man3/arena.3 \
         share/bash-completion/completions/arenactl; do
    [ -e "$PREFIX/$f" ] || fail "$f not installed"
done
for f in libarena-client.so libarena-client.a pkgconfig/arena-client.pc \
         cmake/ArenaClient/ArenaClientConfig.cmake cmake/ArenaClient/ArenaClientConfigVersion.cmake; do
    [ -e "$LIBDIR/$f" ] || fail "$LIBDIR/$f not installed"
done
if [ -e "$BUILD/lib/libarena-preload.so" ]; then
    [ -e "$LIBDIR/libarena-preload.so" ] || fail "libarena-preload.so not installed"
fi

step "library: SONAME, version node, exports"
readelf -d "$LIBSO" | grep -q 'SONAME.*\[libarena-client\.so\.0\]' || fail "no SONAME libarena-client.so.0"
readelf --dyn-syms -W "$LIBSO" | grep -q 'arena_connect@@LIBARENA_CLIENT_0' ||
    fail "arena_connect is not in the version node LIBARENA_CLIENT_0"
nm -D --defined-only "$LIBSO" | awk '
    $2 ~ /^[TDBRVW]$/ && $3 !~ /^arena_[a-z]/ { print "unexpected export: " $3; bad = 1 }
    $3 ~ /^arena_connect(@|$)/ { seen = 1 }
    END { exit (bad || !seen) }' || fail "exports other than arena_*"
echo "exports: $(nm -D --defined-only "$LIBSO" | awk '$2 ~ /^[TDBRVW]$/' | wc -l) symbols, all arena_*"

step "units"
if command -v systemd-analyze >/dev/null 2>&1; then
    UNITS="$PREFIX/lib/systemd/system"
    grep -q "^ExecStart=$PREFIX/sbin/arenad " "$UNITS/arenad.service" || fail "ExecStart does not name the installed arenad"
    MANPATH=$PREFIX/share/man systemd-analyze verify "$UNITS/arenad.service" "$UNITS/arenad.socket" ||
        fail "systemd-analyze verify"
    # The verification must be able to fail: a unit with a missing binary.
    mkdir "$DIR/broken"
    sed "s|^ExecStart=[^ ]*|ExecStart=$DIR/no-such-arenad|" "$UNITS/arenad.service" >"$DIR/broken/arenad.service"
    cp "$UNITS/arenad.socket" "$DIR/broken/"
    if MANPATH=$PREFIX/share/man systemd-analyze verify "$DIR/broken/arenad.service" >/dev/null 2>&1; then
        fail "systemd-analyze verify accepted a unit whose binary is missing"
    fi
    systemd-analyze security --offline=yes --threshold=30 "$UNITS/arenad.service" >"$DIR/security.txt" 2>&1 ||
        { tail -5 "$DIR/security.txt"; fail "exposure above 3.0"; }
    grep 'Overall exposure' "$DIR/security.txt" || true
else
    skip "units: systemd-analyze is not installed"
fi

step "man pages"
command -v groff >/dev/null 2>&1 || skip "man page lint: groff is not installed"
for page in "$PREFIX"/share/man/man*/*; do
    command -v groff >/dev/null 2>&1 || break
    out=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$page" 2>&1) || fail "groff $page"
    [ -z "$out" ] || { echo "$out"; fail "groff warnings in $page"; }
    if command -v man >/dev/null 2>&1; then
        MANWIDTH=80 man -l "$page" 2>/dev/null | grep -q 'NAME' || fail "man -l $page"
    fi
done

step "bash completion"
bash -n "$PREFIX/share/bash-completion/completions/arenactl" || fail "bash -n"
got=$(bash -c ". '$PREFIX/share/bash-completion/completions/arenactl'; COMP_WORDS=(arenactl t); COMP_CWORD=1; _arenactl; echo \"\${COMPREPLY[*]}\"")
[ "$got" = "top" ] || fail "completion of 't' gave '$got'"

step "default configuration lists every key"
CONF=$PREFIX/etc/arenad/arenad.conf
keys=$(sed -n 's/^ *{"\([a-z_]*\)", set_[a-z_]*},.*/\1/p' "$SRC/daemon/config.c")
[ -n "$keys" ] || fail "no keys found in daemon/config.c"
for k in $keys; do
    grep -q "^#$k = " "$CONF" || fail "key $k missing from arenad.conf"
done
# Per-uid keys (weight.UID, ...) are parsed apart from the table.
for k in $(grep -o '"[a-z_]*\."' "$SRC/daemon/config.c" | tr -d '"' | sort -u); do
    grep -q "^#${k}[0-9]* = " "$CONF" || fail "per-uid key ${k}UID missing from arenad.conf"
done
if grep -v '^#' "$CONF" | grep -q '[^[:space:]]'; then
    fail "arenad.conf sets something (every key must be commented out)"
fi
echo "keys: $(echo $keys | wc -w)"

step "the documented defaults parse"
# Every commented setting, uncommented (but admin_group, whose group may not
# exist here, and budget/heap_size, kept small), must be accepted.
sed -e 's/^#\([a-z_.0-9]* = \)/\1/' -e '/^admin_group/d' -e '/^budget/d' -e '/^heap_size/d' \
    "$CONF" >"$DIR/all-keys.conf"
"$PREFIX/sbin/arenad" --config "$DIR/all-keys.conf" --socket "$DIR/probe.sock" --budget 16M \
    --foreground --log-level warn </dev/null &
PPID_=$!
i=0
until "$PREFIX/bin/arenactl" --socket "$DIR/probe.sock" status >/dev/null 2>&1; do
    i=$((i + 1))
    kill -0 "$PPID_" 2>/dev/null || fail "arenad refused the documented defaults (all-keys.conf)"
    [ $i -lt 200 ] || { kill "$PPID_"; fail "arenad with all-keys.conf did not answer"; }
    sleep 0.05
done
kill "$PPID_"
wait "$PPID_" || fail "arenad with all-keys.conf did not exit cleanly"

step "installed arenad serves"
SOCK=$DIR/arenad.sock
"$PREFIX/sbin/arenad" --foreground --socket "$SOCK" --budget 64M --log-level warn \
    --config "$CONF" </dev/null &
DPID=$!
i=0
until "$PREFIX/bin/arenactl" --socket "$SOCK" status >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -lt 200 ] || fail "installed arenad did not answer"
    kill -0 "$DPID" 2>/dev/null || fail "installed arenad exited"
    sleep 0.05
done

# A sanitizer build's library needs its runtime first in the program: build
# the outside programs with the same sanitizer.
SANFLAGS=""
if readelf -d "$LIBSO" | grep -q 'NEEDED.*libasan'; then
    SANFLAGS="-fsanitize=address,undefined"
elif readelf -d "$LIBSO" | grep -q 'NEEDED.*libtsan'; then
    SANFLAGS="-fsanitize=thread"
fi

step "outside program, pkg-config"
export PKG_CONFIG_PATH="$LIBDIR/pkgconfig"
pkg-config --exists arena-client || fail "pkg-config cannot find arena-client"
[ "$(pkg-config --modversion arena-client)" = "$(sed -n 's/^Version: //p' "$LIBDIR/pkgconfig/arena-client.pc")" ] || fail "modversion"
# shellcheck disable=SC2046
cc $SANFLAGS -o "$DIR/outside-pc" "$SRC/tests/ops/outside/outside.c" $(pkg-config --cflags --libs arena-client) \
    -Wl,-rpath,"$LIBDIR" || fail "build with pkg-config"
ldd "$DIR/outside-pc" | grep -q "$LIBDIR/libarena-client.so.0" || fail "outside-pc does not use the installed library"
"$DIR/outside-pc" "$SOCK" || fail "outside-pc against the daemon"

step "outside program, find_package(ArenaClient)"
cmake -S "$SRC/tests/ops/outside" -B "$DIR/outside-build" -DCMAKE_PREFIX_PATH="$PREFIX" \
    -DCMAKE_BUILD_RPATH="$LIBDIR" -DCMAKE_C_FLAGS="$SANFLAGS" >"$DIR/outside-cmake.log" 2>&1 || { cat "$DIR/outside-cmake.log"; fail "find_package(ArenaClient)"; }
cmake --build "$DIR/outside-build" >"$DIR/outside-build.log" 2>&1 || { cat "$DIR/outside-build.log"; fail "build with find_package"; }
ldd "$DIR/outside-build/outside" | grep -q "$LIBDIR/libarena-client.so.0" || fail "outside (cmake) does not use the installed library"
"$DIR/outside-build/outside" "$SOCK" || fail "outside (cmake) against the daemon"

step "metrics: strict Prometheus text format, with a client holding a lease"
# A client whose name needs escaping in label values.
cp "$DIR/outside-pc" "$DIR/odd\"na\\me"
"$DIR/odd\"na\\me" "$SOCK" 30 >"$DIR/holder.out" &
HPID=$!
i=0
until grep -q holding "$DIR/holder.out" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 200 ] || fail "holder did not lease"
    sleep 0.05
done
"$PREFIX/bin/arenactl" --socket "$SOCK" metrics >"$DIR/metrics.txt" || fail "arenactl metrics"
"$PROM_CHECK" <"$DIR/metrics.txt" || { cat "$DIR/metrics.txt"; fail "metrics are not valid exposition text"; }
grep -q '^arenad_leased_bytes 8388608$' "$DIR/metrics.txt" || { cat "$DIR/metrics.txt"; fail "leased bytes not in metrics"; }
"$PREFIX/bin/arenactl" --socket "$SOCK" top --once >"$DIR/top.txt" || fail "arenactl top --once"
grep -q '8.0 MiB' "$DIR/top.txt" || { cat "$DIR/top.txt"; fail "top does not show the holder's lease"; }
kill "$HPID"; wait "$HPID" 2>/dev/null || true; HPID=""

kill "$DPID"
wait "$DPID" || fail "installed arenad did not exit cleanly"
DPID=""
if [ -n "$SKIPPED" ]; then
    printf '%s' "$SKIPPED" | sed 's/^/SKIPPED: /'
    exit 77
fi
echo "PASS"
