"""The examples in examples/python run and tell their story."""

import os
import subprocess
import sys

import pytest

from conftest import SOURCE_DIR, _binary

EXAMPLES = os.path.join(SOURCE_DIR, "examples", "python")


def _run(name, *args):
    env = dict(os.environ)
    env.pop("ARENAD_SOCKET", None)
    out = subprocess.run([sys.executable, os.path.join(EXAMPLES, name), "--arenad", _binary(),
                          *args], env=env, capture_output=True, text=True, timeout=120)
    print(out.stdout, out.stderr)
    assert out.returncode == 0, f"{name} exited {out.returncode}"
    return out.stdout


def test_seed_story():
    out = _run("seed_story.py", "--budget", "128M")
    assert "read in place (read-only, no copy), checksum ok" in out
    assert "pressure from the daemon: dropping 80 MiB of scratch" in out
    assert "simulator granted 96 MiB" in out
    assert "generator exited 0, simulator exited 0" in out


def test_shm_vs_arenad():
    out = _run("shm_vs_arenad.py")
    assert "the attacher keeps its pages (intact)" in out
    assert "after the attacher lets go: 0 MiB held" in out
    # What /dev/shm keeps depends on nothing but the kill: the segment stays.
    assert "RESULT shm_leaked=1 arenad_clean=1" in out
