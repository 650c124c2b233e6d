#!/usr/bin/env python3
"""The seed story in Python: a generator starving a simulator, and arenad
settling it.

The generator builds a scenario as a NumPy array in a lease, with scratch
arrays beside it (in leases too), shares the scenario by token, hands the
token to the simulator over a pipe and blocks -- in select() on the pipe and
on its connection's notification fd. The simulator attaches the scenario and
reads it without a copy, then needs most of the budget. The daemon tells the
generator that memory is short (Pressure); the generator's on_pressure
callback drops its scratch, and the simulator's waiting lease is granted
while the generator sleeps. Without that, the simulator would be refused
(NoMemory) after its wait.

    python3 examples/python/seed_story.py [--budget 256M] [--arenad BINARY]

Uses $ARENAD_SOCKET when set, else starts a private arenad (build/bin/arenad
by default) with the budget.
"""

import argparse
import os
import select
import sys
import time

import numpy as np

import arenad
from _daemon import daemon

MiB = 1 << 20
T0 = time.monotonic()


def say(who, text):
    print(f"{time.monotonic() - T0:7.3f}s  {who:<9} {text}", flush=True)


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1].upper() in units else int(text)


def generator(budget, to_sim, from_sim):
    conn = arenad.connect()
    piece = budget // 8
    # The scenario: a NumPy array in a lease (1/8 of the budget).
    scenario = conn.lease(piece)
    world = np.frombuffer(scenario, dtype=np.float32).reshape(-1, 4)
    rng = np.random.default_rng(7)
    world[:] = rng.standard_normal(world.shape, dtype=np.float32)
    checksum = float(world.sum(dtype=np.float64))
    # Scratch used while building (5/8 of the budget), kept "for later".
    scratch = [conn.lease(piece) for _ in range(5)]
    for s in scratch:
        np.frombuffer(s, dtype=np.uint8)[::4096] = 1  # touched: resident
    del world  # the buffer export: the scenario lease itself lives on
    say("generator", f"scenario {scenario.size // MiB} MiB built; holding "
        f"{(len(scratch) + 1) * piece // MiB} MiB of a {budget // MiB} MiB budget")

    @conn.on_pressure
    def drop_scratch():
        say("generator", "pressure from the daemon: dropping "
            f"{sum(s.size for s in scratch) // MiB} MiB of scratch")
        for s in scratch:
            s.release()
        scratch.clear()

    token = scenario.share(readonly=True, once=True)
    os.write(to_sim, f"{token} {checksum!r}\n".encode())
    say("generator", "token handed to the simulator; blocking until it is done")
    # Blocked in select(): on the simulator's pipe and on our notification fd.
    while True:
        ready, _, _ = select.select([from_sim, conn.fileno()], [], [])
        if conn.fileno() in ready:
            conn.process_notifications()
        if from_sim in ready:
            break
    say("generator", "simulator done; exiting (the daemon takes the rest back)")
    return 0


def simulator(budget, from_gen, to_gen):
    conn = arenad.connect()
    line = b""
    while not line.endswith(b"\n"):
        line += os.read(from_gen, 256)
    token, checksum = line.decode().split()
    scenario = conn.attach(token)
    world = np.frombuffer(scenario, dtype=np.float32).reshape(-1, 4)
    ptr = world.__array_interface__["data"][0]
    assert scenario.address <= ptr < scenario.address + scenario.size, "a copy"
    assert not world.flags.writeable
    ok = float(world.sum(dtype=np.float64)) == float(checksum)
    say("simulator", f"attached the scenario: {world.shape[0]} x 4 float32, read in place "
        f"(read-only, no copy), checksum {'ok' if ok else 'WRONG'}")
    want = budget * 3 // 4
    say("simulator", f"needs {want // MiB} MiB of the {budget // MiB} MiB budget; "
        "waiting up to 20 s")
    t = time.monotonic()
    try:
        work = conn.lease(want, wait=20)
    except arenad.NoMemory as e:
        say("simulator", f"refused: {e}")
        return 1
    say("simulator", f"granted {work.size // MiB} MiB after "
        f"{(time.monotonic() - t) * 1000:.0f} ms, while the generator slept")
    grid = np.frombuffer(work, dtype=np.float32)
    grid[:] = 0.5  # all of it resident: really ours
    say("simulator", f"simulated over {grid.nbytes // MiB} MiB; daemon holds "
        f"{conn.stats()['daemon_leased_bytes'] // MiB} MiB in all")
    del grid, world
    work.release()
    scenario.release()
    os.write(to_gen, b"done\n")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", default="256M", help="the daemon's budget (default 256M)")
    ap.add_argument("--arenad", help="start a private arenad from this binary")
    args = ap.parse_args()
    budget = parse_size(args.budget)
    with daemon(args.budget, args.arenad):
        g2s_r, g2s_w = os.pipe()
        s2g_r, s2g_w = os.pipe()
        gen = os.fork()
        if gen == 0:
            os._exit(generator(budget, g2s_w, s2g_r))
        sim = os.fork()
        if sim == 0:
            os._exit(simulator(budget, g2s_r, s2g_w))
        codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in (gen, sim)]
        say("story", f"generator exited {codes[0]}, simulator exited {codes[1]}")
        return 0 if codes == [0, 0] else 1


if __name__ == "__main__":
    sys.exit(main())
