"""The leak check: 100,000 lease/release cycles and 100,000 share/attach
cycles in one process keep the interpreter's RSS, its fd count and its
mapping count flat, and leave nothing held at the daemon.

$ARENAD_LEAK_CYCLES overrides the count (default 100000; about 15 s in all
on a 2-core machine). Run with -s to see the figures."""

import os

import numpy as np

import arenad

CYCLES = int(os.environ.get("ARENAD_LEAK_CYCLES", "100000"))
WARMUP = min(5000, CYCLES)


def _rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def _fds():
    return len(os.listdir("/proc/self/fd"))


def _maps():
    with open("/proc/self/maps") as f:
        return sum(1 for _ in f)


def _figures():
    return _rss_kib(), _fds(), _maps()


def _check_flat(name, before, after):
    rss0, fd0, map0 = before
    rss1, fd1, map1 = after
    print(f"\n{name}: {CYCLES} cycles: RSS {rss0} -> {rss1} KiB ({rss1 - rss0:+d}), "
          f"fds {fd0} -> {fd1}, mappings {map0} -> {map1}")
    assert fd1 == fd0, f"{name}: fds {fd0} -> {fd1}"
    assert map1 <= map0 + 2, f"{name}: mappings {map0} -> {map1}"
    assert rss1 - rss0 < 4096, f"{name}: RSS grew {rss1 - rss0} KiB"


def test_lease_release_cycles_flat(conn):
    def cycle(i):
        lease = conn.lease(4096 * (1 + i % 16))
        a = np.frombuffer(lease, dtype=np.uint8)
        a[0] = i & 0xFF
        del a
        lease.release()

    for i in range(WARMUP):
        cycle(i)
    before = _figures()
    for i in range(CYCLES):
        cycle(i)
    after = _figures()
    _check_flat("lease/release", before, after)
    assert conn.stats()["leases"] == 0


def test_share_attach_cycles_flat(conn):
    base = conn.lease(64 * 1024)
    memoryview(base)[0] = 77

    def cycle(i):
        token = base.share(once=True, readonly=bool(i & 1))
        att = conn.attach(token)
        m = memoryview(att)
        assert m[0] == 77
        m.release()
        att.release()

    for i in range(WARMUP):
        cycle(i)
    before = _figures()
    for i in range(CYCLES):
        cycle(i)
    after = _figures()
    _check_flat("share/attach", before, after)
    base.release()
    s = conn.stats()
    assert s["leases"] == 0
