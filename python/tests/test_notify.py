"""Notifications: the daemon's Pressure notice reaches on_pressure callbacks
through fileno()/process_notifications(), from a select loop and from an
asyncio loop, while another client waits for the memory."""

import asyncio
import select
import threading
import time

import pytest

import arenad

from conftest import MiB


def _hog(conn, n=14):
    return [conn.lease(4 * MiB) for _ in range(n)]  # 56 MiB of a 64 MiB budget


def _starving_client(socket, size, result):
    try:
        with arenad.connect(socket) as c:
            t0 = time.monotonic()
            lease = c.lease(size, wait=20)
            result["ms"] = (time.monotonic() - t0) * 1000
            result["size"] = lease.size
            lease.release()
    except Exception as e:  # reported by the test
        result["error"] = e


def test_pressure_callback_from_select_loop(make_daemon):
    d = make_daemon("64M")
    conn = arenad.connect(d.socket)
    held = _hog(conn)
    fired = []

    @conn.on_pressure
    def give_back():
        fired.append(len(held))
        while len(held) > 4:
            held.pop().release()

    result = {}
    t = threading.Thread(target=_starving_client, args=(d.socket, 24 * MiB, result))
    t.start()
    deadline = time.monotonic() + 20
    while t.is_alive() and time.monotonic() < deadline:
        r, _, _ = select.select([conn.fileno()], [], [], 0.1)
        if r:
            assert conn.process_notifications() >= 0
    t.join(20)
    assert "error" not in result, result.get("error")
    assert result.get("size", 0) >= 24 * MiB
    assert fired and fired[0] == 14
    assert conn.stats()["pressure_notices"] >= 1
    for l in held:
        l.release()
    conn.close()


def test_pressure_callback_from_asyncio(make_daemon):
    d = make_daemon("64M")
    conn = arenad.connect(d.socket)
    held = _hog(conn)
    calls = []
    conn.on_pressure(lambda: (calls.append(1), [held.pop().release() for _ in range(8)]))

    async def main():
        loop = asyncio.get_running_loop()
        loop.add_reader(conn.fileno(), conn.process_notifications)
        try:
            result = {}
            await loop.run_in_executor(None, _starving_client, d.socket, 24 * MiB, result)
            return result
        finally:
            loop.remove_reader(conn.fileno())

    result = asyncio.run(main())
    assert "error" not in result, result.get("error")
    assert calls
    for l in held:
        l.release()
    conn.close()


def test_callback_exception_propagates_from_process_notifications(make_daemon):
    d = make_daemon("64M")
    conn = arenad.connect(d.socket)
    held = _hog(conn)

    class Boom(Exception):
        pass

    def bad():
        while held:
            held.pop().release()
        raise Boom()

    conn.on_pressure(bad)
    result = {}
    t = threading.Thread(target=_starving_client, args=(d.socket, 24 * MiB, result))
    t.start()
    raised = False
    deadline = time.monotonic() + 20
    while t.is_alive() and time.monotonic() < deadline:
        if select.select([conn.fileno()], [], [], 0.1)[0]:
            try:
                conn.process_notifications()
            except Boom:
                raised = True
    t.join(20)
    assert raised and "error" not in result
    conn.close()


def test_process_notifications_when_idle(conn):
    assert conn.process_notifications() == 0
    assert isinstance(conn.fileno(), int) and conn.fileno() >= 0
