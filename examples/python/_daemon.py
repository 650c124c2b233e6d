"""Shared by the examples: the daemon to use.

$ARENAD_SOCKET when set (a running arenad); else, with --arenad BINARY (or
build/bin/arenad of this source tree when it exists), a private arenad on a
temporary socket with the given budget, stopped at exit."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BINARY = os.path.join(HERE, "..", "..", "build", "bin", "arenad")


@contextlib.contextmanager
def daemon(budget, binary=None):
    """Yields the socket path of a daemon (see the module's doc)."""
    if os.environ.get("ARENAD_SOCKET") and not binary:
        yield os.environ["ARENAD_SOCKET"]
        return
    binary = binary or DEFAULT_BINARY
    tmp = tempfile.mkdtemp(prefix="arenad-example-")
    path = os.path.join(tmp, "arenad.sock")
    proc = subprocess.Popen([binary, "--foreground", "--no-supervise", "--log-level", "warn",
                             "--socket", path, "--budget", budget])
    try:
        deadline = time.monotonic() + 10
        while True:
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(path)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"arenad ({binary}) did not start")
                time.sleep(0.02)
            finally:
                s.close()
        time.sleep(0.05)  # let it install its signal handlers
        os.environ["ARENAD_SOCKET"] = path
        yield path
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
