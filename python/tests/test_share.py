"""Sharing by token: across multiprocessing processes and subprocess
interpreters, read-only attaches, once-tokens, unshare, and the pages
surviving the SIGKILL of their owner."""

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import arenad

from conftest import MiB, run_python


def _attach_and_sum(socket, token, q):
    with arenad.connect(socket) as c:
        lease = c.attach(token)
        a = np.frombuffer(lease, dtype=np.int64)
        q.put((int(a.sum()), lease.readonly, a.__array_interface__["data"][0] - lease.address))
        a[0] += 1 if not lease.readonly else 0
        del a
        lease.release()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_share_across_multiprocessing(conn, daemon, method):
    lease = conn.lease(4 * MiB)
    a = np.frombuffer(lease, dtype=np.int64)
    a[:] = np.arange(a.size)
    token = lease.share()
    assert isinstance(token, str) and 0 < len(token) < arenad.TOKEN_SIZE
    ctx = mp.get_context(method)
    q = ctx.Queue()
    p = ctx.Process(target=_attach_and_sum, args=(daemon.socket, token, q))
    p.start()
    total, readonly, offset = q.get(timeout=60)
    p.join(60)
    assert p.exitcode == 0
    assert total == int(a.sum()) - 1 or total == a.size * (a.size - 1) // 2
    assert not readonly and offset == 0
    assert a[0] == 1  # the child's write is in our pages
    del a
    lease.release()


def test_share_across_subprocess_interpreters(conn, daemon):
    lease = conn.lease(1 * MiB)
    m = memoryview(lease)
    m[:11] = b"hello arena"
    token = lease.share()
    out = run_python(textwrap.dedent(f"""
        import arenad
        with arenad.connect() as c:
            l = c.attach({token!r})
            v = memoryview(l)
            print(bytes(v[:11]).decode())
            v[:5] = b"HELLO"
            v.release()
            l.release()
    """), daemon.env)
    assert out.strip() == "hello arena"
    assert bytes(m[:11]) == b"HELLO arena"
    m.release()
    lease.release()


def test_readonly_attach_refuses_writes(conn, daemon):
    lease = conn.lease(1 * MiB)
    memoryview(lease)[:3] = b"abc"
    token = lease.share(readonly=True)
    out = run_python(textwrap.dedent(f"""
        import arenad, numpy as np
        c = arenad.connect()
        l = c.attach({token!r})
        assert l.readonly and l.attached
        v = memoryview(l)
        assert v.readonly and bytes(v[:3]) == b"abc"
        try:
            v[0] = 1
        except TypeError as e:
            print("memoryview", type(e).__name__)
        a = np.frombuffer(l, dtype=np.uint8)
        assert not a.flags.writeable and a[1] == ord("b")
        try:
            a[0] = 1
        except ValueError:
            print("numpy refused")
        import ctypes
        try:
            ctypes.c_char.from_buffer(l)
        except TypeError as e:
            print("writable buffer", type(e).__name__)
        # A read-only attacher cannot hand out a writable share.
        try:
            l.share()
        except arenad.Error as e:
            print("share", e.errno)
        t2 = l.share(readonly=True)
        print("reshare ok", len(t2) > 0)
        del a
        v.release()
        l.release()
    """), daemon.env)
    assert "memoryview TypeError" in out
    assert "numpy refused" in out
    assert "writable buffer TypeError" in out
    assert "share 1" in out  # EPERM
    assert "reshare ok True" in out
    lease.release()


def test_owner_sigkill_keeps_attachers_data(daemon):
    # The owner: leases, fills, shares, prints the token, then waits to be killed.
    owner = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import arenad, numpy as np, sys, time
        c = arenad.connect()
        l = c.lease(16 << 20)
        a = np.frombuffer(l, dtype=np.uint32)
        a[:] = 0xC0FFEE
        print(l.share(), flush=True)
        time.sleep(600)
    """)], env=daemon.env, stdout=subprocess.PIPE, text=True)
    try:
        token = owner.stdout.readline().strip()
        assert token
        with arenad.connect(daemon.socket) as c:
            lease = c.attach(token)
            owner.send_signal(signal.SIGKILL)
            owner.wait(30)
            assert owner.returncode == -signal.SIGKILL
            # The daemon saw the owner die; our pages stay, intact.
            a = np.frombuffer(lease, dtype=np.uint32)
            assert a.size == (16 << 20) // 4
            assert (a == 0xC0FFEE).all()
            a[:] = 1  # and writable
            # The token died with its sharer: no new attach, once the daemon
            # has seen the owner's connection close (its socket, not ours).
            deadline = time.monotonic() + 10
            while True:
                try:
                    c.attach(token).release()
                except arenad.Error as e:
                    assert e.errno == 2  # ENOENT
                    break
                assert time.monotonic() < deadline, "the token outlived its sharer"
                time.sleep(0.01)
            # Still accounted for until we let go.
            assert c.stats()["daemon_leased_bytes"] >= 16 << 20
            del a
            lease.release()
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


def test_once_token_and_unshare(conn):
    lease = conn.lease(4096)
    once = lease.share(once=True)
    a1 = conn.attach(once)
    with pytest.raises(arenad.Error) as e:
        conn.attach(once)
    assert e.value.errno == 2 and e.value.code < 0
    a1.release()
    t = lease.share()
    a2 = conn.attach(t)
    conn.unshare(t)
    with pytest.raises(arenad.Error):
        conn.attach(t)
    memoryview(a2)[0] = 9  # attached before the unshare: kept
    assert memoryview(lease)[0] == 9
    a2.release()
    with pytest.raises(arenad.Error):
        conn.unshare(t)
    lease.release()


def test_owner_release_keeps_attach(conn):
    lease = conn.lease(4096)
    memoryview(lease)[0] = 42
    t = lease.share()
    other = arenad.connect(conn.stats()["socket"])
    att = other.attach(t)
    lease.release()
    assert memoryview(att)[0] == 42
    with pytest.raises(arenad.Error):
        conn.attach(t)  # void once its lease is released
    att.release()
    other.close()
