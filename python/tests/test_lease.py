"""Leases as buffers: NumPy round trips without a copy, the released-lease
rules (BufferError while a buffer lives, ValueError after), argument types."""

import math
import os

import numpy as np
import pytest

import arenad

from conftest import MiB


def test_lease_basics(conn):
    lease = conn.lease(1 * MiB)
    assert isinstance(lease, arenad.Lease)
    assert lease.size >= 1 * MiB and len(lease) == lease.size
    assert lease.id > 0
    assert isinstance(lease.zeroed, bool)
    assert not lease.readonly and not lease.attached and not lease.released
    assert "Lease" in repr(lease)
    lease.release()
    assert lease.released
    lease.release()  # idempotent


def test_rounds_up_to_granule(conn):
    lease = conn.lease(1)
    granule = conn.stats()["granule"]
    assert lease.size == granule
    lease.release()


def test_numpy_round_trip_zero_copy(conn):
    with conn.lease(8 * MiB) as lease:
        a = np.frombuffer(lease, dtype=np.float64)
        assert a.size == lease.size // 8
        # Zero copy: the array's data pointer is inside the lease.
        ptr = a.__array_interface__["data"][0]
        assert lease.address <= ptr < lease.address + lease.size
        assert a.flags.writeable
        a[:] = np.arange(a.size, dtype=np.float64)
        m = memoryview(lease)
        assert m.nbytes == lease.size and not m.readonly
        b = np.frombuffer(m, dtype=np.float64)
        assert b[12345] == 12345.0
        b[7] = -1.0
        assert a[7] == -1.0  # the same pages
        del a, b
        m.release()


def test_bytes_round_trip(conn):
    with conn.lease(4096) as lease:
        m = memoryview(lease)
        m[:5] = b"hello"
        assert bytes(m[:5]) == b"hello"
        assert bytes(lease)[:5] == b"hello"
        m.release()


def test_release_refused_while_buffer_alive(conn):
    lease = conn.lease(1 * MiB)
    a = np.frombuffer(lease, dtype=np.uint8)
    with pytest.raises(BufferError, match="still alive"):
        lease.release()
    assert not lease.released
    a[0] = 1  # still mapped, still usable
    del a
    lease.release()
    assert lease.released


def test_with_block_refuses_while_view_alive(conn):
    keep = None
    with pytest.raises(BufferError):
        with conn.lease(4096) as lease:
            keep = memoryview(lease)
    keep[0] = 7  # the lease was not released: the view is valid
    keep.release()
    lease.release()


def test_released_lease_raises_value_error(conn):
    lease = conn.lease(4096)
    lease.release()
    for use in (lambda: memoryview(lease), lambda: np.frombuffer(lease, np.uint8),
                lambda: len(lease), lambda: lease.size, lambda: lease.id,
                lambda: lease.zeroed, lambda: lease.share(), lambda: lease.__enter__()):
        with pytest.raises(ValueError):
            use()
    assert "released" in repr(lease)


def test_closed_connection(daemon):
    c = arenad.connect(daemon.socket)
    lease = c.lease(4096)
    view = memoryview(lease)
    with pytest.raises(BufferError):
        c.close()
    view.release()
    c.close()
    assert c.closed
    c.close()  # idempotent
    with pytest.raises(ValueError):
        memoryview(lease)
    with pytest.raises(ValueError):
        c.lease(4096)
    with pytest.raises(ValueError):
        c.stats()
    with pytest.raises(ValueError):
        c.__enter__()
    lease.release()  # nothing left to do: no error


def test_connection_context_manager(daemon):
    with arenad.connect(daemon.socket) as c:
        assert not c.closed
        lease = c.lease(4096)
    assert c.closed
    with pytest.raises(ValueError):
        lease.size


def test_default_socket_from_environment(daemon):
    with arenad.connect() as c:  # $ARENAD_SOCKET, set by the fixture
        assert c.stats()["socket"] == daemon.socket


def test_wrong_types(conn):
    for bad in ("1", 1.5, None, b"x", [1]):
        with pytest.raises(TypeError):
            conn.lease(bad)
    with pytest.raises(TypeError):
        conn.lease(True)
    for bad in (0, -1, -4096, 1 << 70):
        with pytest.raises(ValueError):
            conn.lease(bad)
    with pytest.raises(TypeError):
        conn.lease(4096, wait="1")
    with pytest.raises(ValueError):
        conn.lease(4096, wait=-1)
    with pytest.raises(ValueError):
        conn.lease(4096, wait=math.nan)
    with pytest.raises(TypeError):
        conn.attach(12)
    with pytest.raises(TypeError):
        conn.attach(b"token")
    for bad in ("", "x" * 200, "a\0b", "not-a-token"):
        with pytest.raises(ValueError):
            conn.attach(bad)
    with pytest.raises(TypeError):
        conn.unshare(None)
    with pytest.raises(TypeError):
        conn.on_pressure(42)
    with pytest.raises(TypeError):
        arenad.connect(42)
    with pytest.raises(TypeError):
        arenad.Lease()
    with conn.lease(4096) as lease:
        with pytest.raises(TypeError):
            lease.share(True)  # keyword-only


def test_numpy_integer_size_and_wait(conn):
    lease = conn.lease(np.int64(8192), wait=0.5)
    assert lease.size >= 8192
    lease.release()
    lease = conn.lease(4096, wait=math.inf)
    lease.release()


def test_stats(conn):
    before = conn.stats()
    for key in ("client_id", "socket", "daemon_version", "budget", "granule", "heap_size",
                "leases", "pressure_notices", "daemon_leased_bytes", "daemon_budget"):
        assert key in before
    with conn.lease(4 * MiB):
        s = conn.stats()
        assert s["leases"] == before["leases"] + 1
        assert s["daemon_leased_bytes"] >= before["daemon_leased_bytes"] + 4 * MiB
    assert conn.stats()["leases"] == before["leases"]


def test_trim():
    assert arenad.trim() >= 0


def test_garbage_collected_lease_is_released(conn):
    before = conn.stats()["leases"]
    conn.lease(1 * MiB)  # dropped at once
    assert conn.stats()["leases"] == before


def test_help_reads_well():
    import pydoc

    text = pydoc.render_doc(arenad, renderer=pydoc.plaintext)
    for word in ("connect", "Lease", "share", "attach", "NoMemory", "DaemonUnavailable",
                 "BufferError"):
        assert word in text


def test_under_the_preload_library(daemon):
    """The module keeps its copy of the library to itself: an interpreter whose
    malloc is libarena-preload.so uses it as well."""
    from conftest import _binary, run_python

    preload = os.path.join(os.path.dirname(_binary()), "..", "lib", "libarena-preload.so")
    if not os.path.exists(preload):
        pytest.skip("no libarena-preload.so next to the daemon binary")
    out = run_python(
        "import arenad, numpy as np\n"
        "c = arenad.connect()\n"
        "l = c.lease(1 << 20)\n"
        "a = np.frombuffer(l, np.uint8); a[:] = 3\n"
        "b = c.attach(l.share())\n"
        "print(int(np.frombuffer(b, np.uint8).sum()))\n"
        "junk = [bytearray(1000) for _ in range(10000)]\n",
        dict(daemon.env, LD_PRELOAD=os.path.abspath(preload)))
    assert out.split() == [str(3 << 20)]


def test_stub_matches_the_module(conn):
    """The type stub names every public name, and stats()'s keys exactly."""
    import ast

    stub = os.path.join(os.path.dirname(arenad.__file__), "__init__.pyi")
    tree = ast.parse(open(stub).read())
    names = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    names |= {t.id for n in tree.body if isinstance(n, ast.AnnAssign) for t in [n.target]}
    assert set(arenad.__all__) <= names, set(arenad.__all__) - names
    stats = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Stats")
    keys = {n.target.id for n in stats.body if isinstance(n, ast.AnnAssign)}
    assert keys == set(conn.stats())
    for cls, methods in ((arenad.Connection, "Connection"), (arenad.Lease, "Lease")):
        node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == methods)
        stubbed = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
        public = {m for m in dir(cls) if not m.startswith("_")}
        assert public <= stubbed, public - stubbed
