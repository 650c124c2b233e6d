"""fork() and threads: a fork child's connection is its own; several threads
share one Connection; a call waiting on the daemon does not hold the GIL."""

import os
import threading
import time

import numpy as np
import pytest

import arenad

from conftest import MiB


def _wait_child(pid):
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_fork_child_gets_a_fresh_connection(conn):
    parent_id = conn.stats()["client_id"]
    lease = conn.lease(1 * MiB)
    view = memoryview(lease)
    view[0] = 5
    token = lease.share()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            # Buffers made before the fork stay readable in the child.
            assert view[0] == 5
            # The parent's lease is the parent's.
            try:
                lease.share()
                code = 2
            except ValueError:
                pass
            s = conn.stats()  # connects anew
            assert s["client_id"] != parent_id
            assert s["leases"] == 0
            mine = conn.lease(1 * MiB)
            att = conn.attach(token)
            memoryview(att)[1] = 6
            att.release()
            mine.release()
            lease.release()  # forgets it; the parent keeps it
            os.write(w, str(s["client_id"]).encode())
            code = 0 if code == 1 else code
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    os.close(w)
    child_id = int(os.read(r, 64) or b"0")
    os.close(r)
    assert _wait_child(pid) == 0
    assert child_id not in (0, parent_id)
    # The parent's connection and lease are untouched.
    assert conn.stats()["client_id"] == parent_id
    assert view[1] == 6 and not lease.released
    view.release()
    lease.release()


def test_fork_child_exit_gives_its_leases_back(conn):
    before = conn.stats()["daemon_leased_bytes"]
    pid = os.fork()
    if pid == 0:
        try:
            conn.lease(8 * MiB)  # held at exit
        finally:
            os._exit(0)
    assert _wait_child(pid) == 0
    deadline = time.monotonic() + 10
    while conn.stats()["daemon_leased_bytes"] > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert conn.stats()["daemon_leased_bytes"] == before


def test_threads_share_one_connection(conn):
    errors = []

    def work(seed):
        try:
            rng = np.random.default_rng(seed)
            for _ in range(200):
                size = int(rng.integers(1, 256)) * 4096
                with conn.lease(size) as l:
                    a = np.frombuffer(l, dtype=np.uint8)
                    a[:] = seed
                    t = l.share()
                    with conn.attach(t) as b:
                        bb = np.frombuffer(b, dtype=np.uint8)
                        assert (bb == seed).all()
                        del bb
                    del a
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert conn.stats()["leases"] == 0


def test_waiting_lease_releases_the_gil(make_daemon):
    d = make_daemon("16M")
    c = arenad.connect(d.socket)
    held = c.lease(12 * MiB)
    done = {}

    def waiter():
        t0 = time.monotonic()
        try:
            c.lease(8 * MiB, wait=1.0)
        except arenad.NoMemory:
            done["ms"] = (time.monotonic() - t0) * 1000

    t = threading.Thread(target=waiter)
    t.start()
    # While it waits (a second), this thread keeps running Python code.
    ticks = 0
    t0 = time.monotonic()
    while t.is_alive():
        ticks += 1
        time.sleep(0.001)
    t.join()
    assert done.get("ms", 0) >= 900
    # Holding the GIL would leave ~1 tick; a sleeping thread's 1 ms naps give
    # hundreds even on a loaded machine.
    assert ticks > 10, "the main thread was starved: the GIL was held"
    held.release()
    c.close()


def test_close_from_another_thread_while_one_waits(make_daemon):
    d = make_daemon("16M")
    c = arenad.connect(d.socket)
    held = c.lease(12 * MiB)
    out = {}

    def waiter():
        try:
            c.lease(8 * MiB, wait=0.5)
        except Exception as e:
            out["e"] = e

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.1)
    c.close()  # deferred to the end of the waiting call
    t.join()
    assert isinstance(out.get("e"), arenad.NoMemory)
    assert c.closed and held.released
