#!/usr/bin/env python3
"""Hand-off of a NumPy array between two Python processes, three ways.

arenad:  the array lives in a lease; the producer sends a token (share,
         once), the consumer attaches it and wraps it with numpy.frombuffer.
shm:     the array lives in a multiprocessing.shared_memory segment; the
         producer sends its name, the consumer opens it.
pipe:    the array is an ordinary one; multiprocessing's Pipe pickles it
         through a pipe (send/recv), the consumer gets a copy.

Hand-off time: from the producer starting the hand-off (the array already
built where that method keeps it; both processes started and, for arenad,
connected) until the consumer holds an ndarray of the data and has read one
value from every page of it (so mapping and first-touch costs count as a
copy's would). CLOCK_MONOTONIC is system-wide, so the two processes' clocks
agree. The median of --repeat runs; the last line is

    RESULT arenad_handoff_ms=... shm_handoff_ms=... pipe_handoff_ms=...

    python3 python/bench/bench_handoff.py [--size 1G] [--repeat 3] [--arenad BINARY]

Uses $ARENAD_SOCKET when set, else starts a private arenad ($ARENAD_BINARY,
--arenad, or build/bin/arenad) with a budget of twice the size.
"""

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time

import numpy as np

import arenad

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "examples", "python"))
from _daemon import daemon  # noqa: E402  (the examples' private daemon)

PAGE_STRIDE = 4096 // 8  # float64 values per page


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    u = text[-1].upper()
    return int(float(text[:-1]) * units[u]) if u in units else int(text)


def touch(a):
    """Reads one value per page; returns their sum."""
    return float(a[::PAGE_STRIDE].sum())


# ---- consumers (forked children): wait for the handle, take the data, report --

def consume_arenad(ctl):
    with arenad.connect() as conn:
        ctl.send("ready")
        token = ctl.recv()
        lease = conn.attach(token)
        a = np.frombuffer(lease, dtype=np.float64)
        s = touch(a)
        ctl.send((time.monotonic(), s))
        del a
        lease.release()


def consume_shm(ctl):
    from multiprocessing import shared_memory

    ctl.send("ready")
    name, n = ctl.recv()
    shm = shared_memory.SharedMemory(name=name)
    a = np.ndarray((n,), dtype=np.float64, buffer=shm.buf)
    s = touch(a)
    ctl.send((time.monotonic(), s))
    del a
    shm.close()  # a forked child shares the producer's resource tracker: it unlinks


def consume_pipe(ctl):
    ctl.send("ready")
    a = ctl.recv()
    s = touch(a)
    ctl.send((time.monotonic(), s))


def run_once(method, size, conn):
    """One hand-off; returns its milliseconds."""
    n = size // 8
    ctx = mp.get_context("fork")
    ours, theirs = ctx.Pipe()
    target = {"arenad": consume_arenad, "shm": consume_shm, "pipe": consume_pipe}[method]
    # Build the array where the method keeps it (not timed).
    keep = None
    if method == "arenad":
        keep = conn.lease(size)
        a = np.frombuffer(keep, dtype=np.float64)[:n]
    elif method == "shm":
        from multiprocessing import shared_memory

        keep = shared_memory.SharedMemory(create=True, size=size)
        a = np.ndarray((n,), dtype=np.float64, buffer=keep.buf)
    else:
        a = np.empty(n, dtype=np.float64)
    a[:] = 1.0
    expect = touch(a)
    child = ctx.Process(target=target, args=(theirs,))
    child.start()
    assert ours.recv() == "ready"
    t0 = time.monotonic()
    if method == "arenad":
        ours.send(keep.share(once=True))
    elif method == "shm":
        ours.send((keep.name, n))
    else:
        ours.send(a)
    t1, got = ours.recv()
    child.join(120)
    if child.exitcode != 0 or got != expect:
        raise SystemExit(f"{method}: consumer failed (exit {child.exitcode}, sum {got} != {expect})")
    del a
    if method == "arenad":
        keep.release()
    elif method == "shm":
        keep.close()
        keep.unlink()
    return (t1 - t0) * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="1G", help="bytes of the array (default 1G)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per method (median; default 3)")
    ap.add_argument("--arenad", help="start a private arenad from this binary")
    args = ap.parse_args()
    size = parse_size(args.size)
    size -= size % 4096
    if size <= 0:
        raise SystemExit("--size must be at least 4K")
    binary = args.arenad or os.environ.get("ARENAD_BINARY")
    with daemon(str(2 * size + (64 << 20)), binary), arenad.connect() as conn:
        print(f"hand-off of a {size / (1 << 20):.0f} MiB float64 array between two processes "
              f"(median of {args.repeat}; Python {sys.version.split()[0]}, "
              f"NumPy {np.__version__})")
        print(f"{'method':<8} {'median ms':>10}  runs ms")
        result = {}
        for method in ("arenad", "shm", "pipe"):
            runs = [run_once(method, size, conn) for _ in range(args.repeat)]
            result[method] = statistics.median(runs)
            print(f"{method:<8} {result[method]:>10.2f}  "
                  f"{' '.join(f'{r:.2f}' for r in runs)}", flush=True)
    print(f"RESULT arenad_handoff_ms={result['arenad']:.2f} shm_handoff_ms={result['shm']:.2f} "
          f"pipe_handoff_ms={result['pipe']:.2f}")


if __name__ == "__main__":
    main()
