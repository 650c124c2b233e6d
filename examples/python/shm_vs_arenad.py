#!/usr/bin/env python3
"""What a SIGKILL leaves behind: multiprocessing.shared_memory next to arenad.

An owner process creates 64 MiB of shared memory, fills it, hands its name
(or token) to an attacher, and is killed with SIGKILL together with its
process group -- as the OOM killer, a cgroup kill, a container stop or a
`kill -9 -PGID` do. multiprocessing's resource tracker is in that group, so
nothing unlinks the segment: it stays in /dev/shm, charged to RAM, until
someone unlinks it by name or the machine reboots. (When only the owner is
killed, the tracker unlinks it -- also under an attacher that still wanted to
open it.) With arenad the daemon sees the owner's connection close: the
attacher keeps its pages, and once it lets go the memory is free again;
nothing is left anywhere.

    python3 examples/python/shm_vs_arenad.py [--arenad BINARY]

Cleans up the leaked segment at the end (it prints what it removed).
"""

import argparse
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np

import arenad
from _daemon import daemon

MiB = 1 << 20
SIZE = 64 * MiB

SHM_OWNER = textwrap.dedent(f"""
    import sys, time
    import numpy as np
    from multiprocessing import shared_memory
    shm = shared_memory.SharedMemory(create=True, size={SIZE})
    np.frombuffer(shm.buf, dtype=np.uint8)[:] = 0xAB
    print(shm.name, flush=True)
    time.sleep(600)
""")

ARENAD_OWNER = textwrap.dedent(f"""
    import time
    import numpy as np
    import arenad
    c = arenad.connect()
    l = c.lease({SIZE})
    np.frombuffer(l, dtype=np.uint8)[:] = 0xAB
    print(l.share(), flush=True)
    time.sleep(600)
""")


def run_owner(code):
    """Starts an owner in a process group of its own; returns (proc, first line)."""
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                         start_new_session=True)
    return p, p.stdout.readline().strip()


def kill_group(p):
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    time.sleep(0.2)  # anything left to clean up would have done it by now


def shm_side():
    from multiprocessing import resource_tracker, shared_memory

    print("== multiprocessing.shared_memory")
    owner, name = run_owner(SHM_OWNER)
    att = shared_memory.SharedMemory(name=name)
    # This process only attaches: keep its tracker from unlinking at our exit.
    resource_tracker.unregister(att._name, "shared_memory")
    ok = bool((np.frombuffer(att.buf, dtype=np.uint8)[:16] == 0xAB).all())
    print(f"attacher: opened /dev/shm/{name}, data {'ok' if ok else 'WRONG'}")
    att.close()
    kill_group(owner)
    path = f"/dev/shm/{name}"
    left = os.path.exists(path)
    if left:
        st = os.stat(path)
        print(f"after SIGKILL of the owner's group: {path} is still there, "
              f"{st.st_size // MiB} MiB, {st.st_blocks * 512 // MiB} MiB resident in RAM: "
              "leaked until unlinked by hand or a reboot")
        os.unlink(path)
        print(f"(this script removed {path})")
    else:
        print(f"after SIGKILL of the owner's group: {path} is gone")
    return left


def arenad_side():
    print("== arenad")
    with arenad.connect() as c:
        before = c.stats()["daemon_leased_bytes"]
        owner, token = run_owner(ARENAD_OWNER)
        lease = c.attach(token)
        a = np.frombuffer(lease, dtype=np.uint8)
        print(f"attacher: attached {lease.size // MiB} MiB by token, data "
              f"{'ok' if (a[:16] == 0xAB).all() else 'WRONG'}")
        kill_group(owner)
        kept = bool((a == 0xAB).all())
        print(f"after SIGKILL of the owner's group: the attacher keeps its pages "
              f"({'intact' if kept else 'DAMAGED'}); the daemon holds "
              f"{(c.stats()['daemon_leased_bytes'] - before) // MiB} MiB for it")
        del a
        lease.release()
        # The owner's end is the daemon's to notice (on its socket): allow it a moment.
        deadline = time.monotonic() + 5
        while (after := c.stats()["daemon_leased_bytes"]) != before:
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        print(f"after the attacher lets go: {(after - before) // MiB} MiB held, "
              "nothing in /dev/shm, nothing to clean up")
        return kept and after == before


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arenad", help="start a private arenad from this binary")
    args = ap.parse_args()
    leaked = shm_side()
    with daemon("256M", args.arenad):
        clean = arenad_side()
    print(f"RESULT shm_leaked={int(leaked)} arenad_clean={int(clean)}")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
