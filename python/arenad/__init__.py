"""arenad: shared memory leased from the arenad daemon, as zero-copy buffers.

A lease is a block of shared memory the daemon grants within a budget; this
process maps it and uses it through the buffer protocol, without a copy::

    import arenad, numpy as np

    with arenad.connect() as conn:           # $ARENAD_SOCKET, else the defaults
        lease = conn.lease(64 << 20, wait=5)   # 64 MiB; queue up to 5 s if short
        a = np.frombuffer(lease, dtype=np.float64)
        a[:] = 1.0
        token = lease.share(readonly=True)     # hand it to another process

    # in the other process (same user):
    with arenad.connect() as conn:
        b = np.frombuffer(conn.attach(token), dtype=np.float64)  # same pages

Memory comes back when a process dies: the daemon holds every lease of a
connection and takes back what no holder holds any more, even after SIGKILL
(an attacher keeps the pages it attached).

Rules:

* Lease.release() (or leaving its ``with``) refuses with BufferError while a
  buffer of the lease (memoryview, NumPy array) is alive; delete those first.
  Using a released lease raises ValueError.
* A read-only attach gives read-only buffers; asking for a writable one
  raises TypeError.
* Calls that may wait on the daemon release the GIL; a Connection may be used
  from several threads. After os.fork() the child's first call on an
  inherited Connection connects anew; the parent's leases are not usable in
  the child (share them and attach the token).

Errors: arenad.Error (an OSError with errno and the library's and the
daemon's text), arenad.NoMemory (also a MemoryError: the daemon refused),
arenad.DaemonUnavailable (also a ConnectionError: no daemon, or it went
away); bad arguments raise TypeError or ValueError.
"""

import os as _os

from ._arenad import (
    Connection,
    DaemonUnavailable,
    Error,
    Lease,
    NoMemory,
    TOKEN_SIZE,
    trim,
)

__all__ = [
    "Connection",
    "DaemonUnavailable",
    "Error",
    "Lease",
    "NoMemory",
    "TOKEN_SIZE",
    "connect",
    "trim",
]

__version__ = "0.1.0"


def connect(socket=None):
    """Connects to arenad and returns a Connection (a context manager).

    socket: the daemon's socket path (str, bytes or os.PathLike); None uses
    $ARENAD_SOCKET, else /run/arenad/arenad.sock as root, else
    $XDG_RUNTIME_DIR/arenad.sock. Raises DaemonUnavailable when no daemon
    answers there.
    """
    if socket is not None and not isinstance(socket, (str, bytes, _os.PathLike)):
        raise TypeError("socket must be a path (str, bytes, os.PathLike) or None")
    return Connection(socket)
