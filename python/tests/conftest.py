"""pytest fixtures: a real arenad from the build tree on a temporary socket.

Started as tests/lib/daemon.c starts one: in the foreground, unsupervised,
--log-level warn, on DIR/arenad.sock in a fresh /tmp/arenad-py-XXXX, with
PR_SET_PDEATHSIG so it dies with the test process; ready once it catches
SIGTERM and its socket accepts a connection. Always stopped (SIGTERM, then
SIGKILL after 5 s) and its directory removed, also when a test fails.

The daemon binary: $ARENAD_BINARY (CTest sets it), else build/bin/arenad.
"""

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("ARENA_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
MiB = 1 << 20


def _binary():
    b = os.environ.get("ARENAD_BINARY") or os.path.join(SOURCE_DIR, "build", "bin", "arenad")
    if not os.access(b, os.X_OK):
        pytest.fail(f"no arenad binary at {b} (set ARENAD_BINARY)")
    return b


def _pdeathsig():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _catches_sigterm(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    except OSError:
        pass
    return False


class Daemon:
    """One arenad: .socket, .pid, .env (os.environ with ARENAD_SOCKET), stop()."""

    def __init__(self, budget="256M", extra=()):
        self.dir = tempfile.mkdtemp(prefix="arenad-py-")
        self.socket = os.path.join(self.dir, "arenad.sock")
        argv = [_binary(), "--foreground", "--socket", self.socket, "--log-level", "warn",
                "--no-supervise", "--budget", budget, *extra]
        self.proc = subprocess.Popen(argv, preexec_fn=_pdeathsig, stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                self._cleanup()
                pytest.fail(f"arenad exited with {self.proc.returncode} at start-up")
            if _catches_sigterm(self.pid):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(self.socket)
                    break
                except OSError:
                    pass
                finally:
                    s.close()
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                self._cleanup()
                pytest.fail("arenad did not start within 10 s")
            time.sleep(0.01)
        self.env = dict(os.environ, ARENAD_SOCKET=self.socket)

    def _cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def stop(self):
        """Stops it; returns its exit status (negative: killed by a signal)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._cleanup()
        return self.proc.returncode


@pytest.fixture(scope="module")
def daemon():
    """A daemon shared by the tests of a module (budget 256 MiB)."""
    d = Daemon()
    old = os.environ.get("ARENAD_SOCKET")
    os.environ["ARENAD_SOCKET"] = d.socket
    try:
        yield d
    finally:
        if old is None:
            os.environ.pop("ARENAD_SOCKET", None)
        else:
            os.environ["ARENAD_SOCKET"] = old
        rc = d.stop()
        assert rc == 0, f"arenad ended with {rc}"


@pytest.fixture
def make_daemon():
    """make_daemon(budget="64M") -> Daemon; every one made is stopped after the test."""
    made = []

    def make(budget="64M", extra=()):
        d = Daemon(budget, extra)
        made.append(d)
        return d

    try:
        yield make
    finally:
        for d in made:
            d.stop()


@pytest.fixture
def conn(daemon):
    """A Connection to the module's daemon, closed after the test."""
    import arenad

    c = arenad.connect(daemon.socket)
    try:
        yield c
    finally:
        try:
            c.close()
        except BufferError:
            pass


def run_python(code, env, timeout=60):
    """Runs code in a fresh interpreter (this one's executable); returns stdout."""
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, f"child failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
    return out.stdout
