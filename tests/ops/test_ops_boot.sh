#!/bin/sh
# SPDX-License-Identifier: MIT
#
# test_ops_boot.sh BUILD_DIR -- a real boot: systemd as PID 1 in a container
# made from a Debian 12 debootstrap tree (BUILD_DIR/boot-tree, kept between
# runs), the Debian packages (debian/, built with dpkg-buildpackage by
# test_ops_deb.sh) installed inside, a client compiled in the container
# against libarena-client-dev with pkg-config, `systemctl start arenad`, the
# client leasing memory through /run/arenad/arenad.sock, `arenactl status`
# and `clients`, a reload, an upgrade under a client that holds data (the
# daemon restarts with its fd store), a SIGKILL under two such clients, the
# preload library, `systemctl stop arenad`, removal with the daemon running,
# purge.
#
# The steps run inside the container as a oneshot unit that records its
# output in /root/arenad-boot.log and powers the container off; the host
# waits for systemd-nspawn to exit and reads the log. systemd is only ever
# booted on the tree (never on the host root: it would clean /tmp).
#
# Opt-in (ARENA_TEST_BOOT=1): it needs root, systemd-nspawn
# (systemd-container), debootstrap, dpkg-buildpackage with debhelper and the
# build dependencies, and Debian's package mirror for the first run. Exit 77 means skipped, with the reason.
set -eu
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

[ "${ARENA_TEST_BOOT:-0}" = 1 ] || skip "set ARENA_TEST_BOOT=1 to boot a container (debootstrap + systemd-nspawn)"
[ "$(id -u)" = 0 ] || skip "needs root"
command -v systemd-nspawn >/dev/null 2>&1 || skip "systemd-nspawn missing (apt-get install systemd-container)"
command -v debootstrap >/dev/null 2>&1 || skip "debootstrap missing (apt-get install debootstrap)"
command -v dpkg-buildpackage >/dev/null 2>&1 || skip "dpkg-buildpackage missing (apt-get install dpkg-dev debhelper)"

TREE=$BUILD/boot-tree
case "$(readlink -f "$TREE")" in
    / | "") fail "refusing to boot on /" ;;
esac

# The marker names the package set: a tree from an older list is made again.
MARK=$TREE/.arenad-tree-ok-2
if [ ! -e "$MARK" ]; then
    echo "== debootstrap bookworm into $TREE (first run only)"
    rm -rf "$TREE"
    debootstrap --variant=minbase \
        --include=systemd,systemd-sysv,dbus,libuv1,libprotobuf-c1,libsystemd0,gcc,libc6-dev,pkg-config,libprotobuf-c-dev \
        bookworm "$TREE" http://deb.debian.org/debian >"$BUILD/boot-debootstrap.log" 2>&1 ||
        { tail -20 "$BUILD/boot-debootstrap.log"; skip "debootstrap failed (no mirror?)"; }
    touch "$MARK"
fi

WORK=$(mktemp -d /tmp/arenad-ops-boot-XXXXXX)
NSPID=""
cleanup() {
    [ -n "$NSPID" ] && kill "$NSPID" 2>/dev/null || true
    rm -rf "$WORK"
    rm -rf "$TREE/root/debs"
    rm -f "$TREE/root/outside" "$TREE/root/outside.c" "$TREE/root/boot-test.sh" \
          "$TREE/etc/systemd/system/arenad-boot-test.service" \
          "$TREE/etc/systemd/system/multi-user.target.wants/arenad-boot-test.service"
}
trap cleanup EXIT INT TERM

echo "== packages (dpkg-buildpackage)"
mkdir "$WORK/debs"
sh "$SRC/tests/ops/test_ops_deb.sh" "$BUILD" build "$WORK/debs" >"$WORK/debs.log" 2>&1 ||
    { cat "$WORK/debs.log"; fail "building the packages"; }
mkdir -p "$TREE/root/debs"
for p in arenad libarena-client0 libarena-client-dev libarena-preload; do
    cp "$WORK"/debs/${p}_*.deb "$TREE/root/debs/" || fail "no package $p"
done
ls "$TREE/root/debs"
# The client is compiled inside the container, against the installed
# libarena-client-dev.
cp "$SRC/tests/ops/outside/outside.c" "$TREE/root/outside.c"

# A leftover installation from an interrupted run goes first.
rm -f "$TREE/root/arenad-boot.log" "$TREE/root/arenad-boot.done"
cat >"$TREE/root/boot-test.sh" <<'INNER'
#!/bin/sh
# Runs inside the container as PID 1's job; every step is logged.
exec >/root/arenad-boot.log 2>&1
set -x
# The journal persists in the tree: read only what this run wrote.
START=$(date '+%Y-%m-%d %H:%M:%S')
sleep 1
dpkg -P arenad libarena-client-dev libarena-client0 libarena-preload >/dev/null 2>&1 || true
dpkg -i /root/debs/*.deb || exit 1
dpkg -l 'arenad*' 'libarena*' | grep '^ii'
getent passwd arenad || exit 1
systemctl is-enabled arenad.socket || exit 1
systemctl is-active arenad.socket || exit 1
# Socket-activated: the package starts the socket, not the daemon.
systemctl is-active arenad && exit 1
cc -o /root/outside /root/outside.c $(pkg-config --cflags --libs arena-client) || exit 1
ldd /root/outside | grep 'libarena-client.so.0 => /' || exit 1
systemctl start arenad || { journalctl --since "$START" -u arenad --no-pager | tail -30; exit 1; }
systemctl is-active arenad || exit 1
ls -l /run/arenad/arenad.sock || exit 1
arenactl status || exit 1
/root/outside /run/arenad/arenad.sock 5 &
HOLDER=$!
sleep 1
arenactl clients || exit 1
arenactl clients | grep -q outside || exit 1
systemctl show -p StatusText arenad
systemctl show -p StatusText arenad | grep -q '1 lease' || exit 1
sed -i 's/^#budget = .*/budget = 256M/' /etc/arenad/arenad.conf
systemctl reload arenad || { journalctl --since "$START" -u arenad --no-pager | tail -20; exit 1; }
arenactl --json status | grep -q '"budget":268435456' || exit 1
arenactl clients | grep -q outside || exit 1
wait $HOLDER || exit 1
# An upgrade (the same packages again) restarts the running daemon under a
# client that holds 8 MiB of data: systemd keeps the fd store through the
# restart, the new daemon adopts the pool and the ledger, the client claims
# its lease back and finds every byte intact after the hold.
USTART=$(date '+%Y-%m-%d %H:%M:%S')
sleep 1
ARENA_BACKGROUND=1 ARENAD_SOCKET=/run/arenad/arenad.sock /root/outside - 6 &
HOLDER=$!
sleep 1
OLDPID=$(systemctl show -p MainPID --value arenad)
dpkg -i /root/debs/*.deb || exit 1
systemctl is-active arenad || exit 1
systemctl is-active arenad.socket || exit 1
NEWPID=$(systemctl show -p MainPID --value arenad)
[ "$OLDPID" != "$NEWPID" ] || exit 1
arenactl status | grep -q 'budget' || exit 1
journalctl --since "$USTART" -u arenad --no-pager | grep 'with the ledger: 1 lease(s) (8.0 MiB)' || exit 1
wait $HOLDER || exit 1
journalctl --since "$USTART" -u arenad --no-pager | grep 'claimed 1 lease(s) back' || exit 1
# A crash under two clients that hold data: systemd restarts arenad
# (Restart=on-failure) and hands back the pool and the lease ledger from
# its fd store. One client's notification thread re-registers its lease at
# once; the other sleeps through the (shortened) grace period without
# calling and keeps its lease because its process lives. Both find every
# byte intact after the hold.
sed -i 's/^#restart_grace_ms = .*/restart_grace_ms = 2000/' /etc/arenad/arenad.conf
START=$(date '+%Y-%m-%d %H:%M:%S')
sleep 1
ARENA_BACKGROUND=1 ARENAD_SOCKET=/run/arenad/arenad.sock /root/outside - 8 &
HOLDER=$!
ARENAD_SOCKET=/run/arenad/arenad.sock /root/outside - 8 &
IDLE=$!
sleep 1
OLDPID=$(systemctl show -p MainPID --value arenad)
systemctl kill -s KILL arenad || exit 1
for i in 1 2 3 4 5 6 7 8 9 10; do
    sleep 0.5
    NEWPID=$(systemctl show -p MainPID --value arenad)
    [ "$NEWPID" != "$OLDPID" ] && [ "$NEWPID" != 0 ] && break
done
[ "$NEWPID" != "$OLDPID" ] && [ "$NEWPID" != 0 ] || exit 1
for i in 1 2 3 4 5 6; do
    journalctl --since "$START" -u arenad --no-pager | grep 'with the ledger: 2 lease(s) (16.0 MiB)' && break
    sleep 0.5
done
journalctl --since "$START" -u arenad --no-pager | grep -q 'with the ledger: 2 lease(s) (16.0 MiB)' || exit 1
for i in 1 2 3 4 5 6; do
    arenactl --json clients | grep -q '"leased_bytes":8388608' && break
    sleep 0.5
done
arenactl leases
arenactl --json clients | grep -q '"leased_bytes":8388608' || exit 1
journalctl --since "$START" -u arenad --no-pager | grep 'claimed 1 lease(s) back' || exit 1
wait $HOLDER || exit 1
wait $IDLE || exit 1
# The preload library, by its multiarch path ($LIB is ld.so's).
LD_PRELOAD='/usr/$LIB/arenad/libarena-preload.so' ARENAD_SOCKET=/run/arenad/arenad.sock \
    sh -c 'seq 1 20000 | sort -n | tail -1' | grep -qx 20000 || exit 1
systemctl stop arenad || exit 1
systemctl is-active arenad && exit 1
journalctl --since "$START" -u arenad --no-pager | tail -20
# Removal with the daemon running stops it (the socket's stop in prerm
# takes the service with it); only the conffile stays until the purge.
systemctl start arenad || exit 1
dpkg -r arenad libarena-client-dev libarena-client0 libarena-preload || exit 1
systemctl is-active arenad && exit 1
systemctl is-active arenad.socket && exit 1
[ -e /usr/sbin/arenad ] && exit 1
[ -f /etc/arenad/arenad.conf ] || exit 1
dpkg -P arenad libarena-client-dev libarena-client0 libarena-preload || exit 1
[ -e /etc/arenad ] && exit 1
getent passwd arenad && exit 1
echo BOOT-TEST-PASS
INNER
chmod +x "$TREE/root/boot-test.sh"
mkdir -p "$TREE/etc/systemd/system/multi-user.target.wants"
cat >"$TREE/etc/systemd/system/arenad-boot-test.service" <<'UNIT'
[Unit]
Description=arenad boot test
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/bin/sh -c '/root/boot-test.sh; touch /root/arenad-boot.done; systemctl --no-block poweroff'
[Install]
WantedBy=multi-user.target
UNIT
ln -sf ../arenad-boot-test.service "$TREE/etc/systemd/system/multi-user.target.wants/arenad-boot-test.service"

echo "== systemd-nspawn --boot -D $TREE"
timeout 300 systemd-nspawn --boot -D "$TREE" --register=no --keep-unit --private-network --console=pipe \
    >"$WORK/nspawn.log" 2>&1 </dev/null &
NSPID=$!
wait "$NSPID" || true
NSPID=""
if [ ! -e "$TREE/root/arenad-boot.done" ]; then
    tail -40 "$WORK/nspawn.log"
    [ -e "$TREE/root/arenad-boot.log" ] && cat "$TREE/root/arenad-boot.log"
    if grep -qiE 'operation not permitted|failed to .*namespace|permission denied' "$WORK/nspawn.log"; then
        skip "systemd-nspawn cannot boot a container here (see above)"
    fi
    fail "the container did not run the test"
fi
cat "$TREE/root/arenad-boot.log"
grep -q BOOT-TEST-PASS "$TREE/root/arenad-boot.log" || fail "boot test failed inside the container"
echo PASS
