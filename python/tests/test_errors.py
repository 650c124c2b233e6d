"""Errors: a missing daemon, refusals with the daemon's reason, a daemon
that goes away, the exception hierarchy."""

import errno
import os
import tempfile

import pytest

import arenad

from conftest import MiB


def test_hierarchy():
    assert issubclass(arenad.Error, OSError)
    assert issubclass(arenad.NoMemory, arenad.Error)
    assert issubclass(arenad.NoMemory, MemoryError)
    assert issubclass(arenad.DaemonUnavailable, arenad.Error)
    assert issubclass(arenad.DaemonUnavailable, ConnectionError)


def test_missing_daemon(monkeypatch):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "nobody.sock")
        with pytest.raises(arenad.DaemonUnavailable) as e:
            arenad.connect(path)
        assert isinstance(e.value, ConnectionError)
        assert e.value.errno == errno.ECONNREFUSED
        assert e.value.code < 0
        assert "connect" in str(e.value)
        # The default socket from the environment, too.
        monkeypatch.setenv("ARENAD_SOCKET", path)
        with pytest.raises(arenad.DaemonUnavailable):
            arenad.connect()
    with pytest.raises(ValueError):
        arenad.connect("")
    with pytest.raises(ValueError):
        arenad.connect("/tmp/a\0b")


def test_refusal_is_no_memory_with_daemons_message(make_daemon):
    d = make_daemon("16M")
    with arenad.connect(d.socket) as c:
        held = c.lease(12 * MiB)
        with pytest.raises(arenad.NoMemory) as e:
            c.lease(8 * MiB)
        assert isinstance(e.value, MemoryError)
        assert e.value.errno == errno.ENOMEM
        assert e.value.daemon_message, "the daemon said why"
        assert e.value.daemon_message in str(e.value)
        # More than the daemon could ever grant.
        with pytest.raises(arenad.NoMemory) as e:
            c.lease(1 << 40)
        assert e.value.errno in (errno.E2BIG, errno.ENOMEM)
        # Waiting, in vain: a time-out is a refusal too.
        with pytest.raises(arenad.NoMemory) as e:
            c.lease(8 * MiB, wait=0.2)
        assert e.value.errno in (errno.ETIMEDOUT, errno.ENOMEM)
        held.release()
        # Now it fits.
        c.lease(8 * MiB).release()


def test_daemon_gone(make_daemon):
    d = make_daemon("16M")
    c = arenad.connect(d.socket)
    lease = c.lease(4096)
    memoryview(lease)[0] = 1
    assert d.stop() == 0
    with pytest.raises(arenad.DaemonUnavailable):
        c.lease(4096)
    # The mapping of a lease we still hold stays valid meanwhile.
    assert memoryview(lease)[0] == 1
    lease.release()  # no daemon to tell: not an error
    c.close()


def test_error_attributes(conn):
    lease = conn.lease(4096)
    token = lease.share()
    lease.release()  # the token is void now
    with pytest.raises(arenad.Error) as e:
        conn.unshare(token)
    err = e.value
    assert isinstance(err, OSError) and not isinstance(err, arenad.NoMemory)
    assert err.errno == errno.ENOENT and err.strerror
    assert isinstance(err.code, int) and err.code < 0
    assert err.daemon_message is None or isinstance(err.daemon_message, str)
