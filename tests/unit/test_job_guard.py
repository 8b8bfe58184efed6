"""The sweep job guard (experiments/job_guard.py): the trainer behind it gets exactly one
SIGTERM when the guard dies, however it dies, and the guard passes the trainer's exit on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments.job_guard import guarded_command

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG")

TRAINER = """
import os, signal, sys, time
out = sys.argv[1]
def on_term(signum, frame):
    with open(out, "a") as f:
        f.write(f"{signum} pgid={os.getpgid(0)} pid={os.getpid()}\\n")
signal.signal(signal.SIGTERM, on_term)
open(out + ".ready", "w").close()
t0 = time.time()
while time.time() - t0 < 3:  # outlives the guard: counts every SIGTERM it gets meanwhile
    time.sleep(0.05)
sys.exit(143)
"""


def _start(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    out = tmp_path / "signals"
    guard = subprocess.Popen(
        guarded_command([sys.executable, "-c", TRAINER, str(out)]), start_new_session=True
    )
    deadline = time.time() + 30
    while not Path(f"{out}.ready").exists():
        assert time.time() < deadline and guard.poll() is None
        time.sleep(0.02)
    return guard, out


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM to its group"])
def test_trainer_gets_one_sigterm_when_the_guard_dies(tmp_path, how):
    guard, out = _start(tmp_path)
    if how == "SIGKILL":  # a Ray worker killing its direct children
        guard.kill()
    else:  # Ray's reaper: SIGTERM, then SIGKILL, to the launcher's process group
        os.killpg(guard.pid, signal.SIGTERM)
        time.sleep(0.3)
        os.killpg(guard.pid, signal.SIGKILL)
    guard.wait(timeout=10)
    time.sleep(3.5)  # the trainer finishes its 3 s
    lines = out.read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith("15 "), lines
    pgid, pid = (int(f.split("=")[1]) for f in lines[0].split()[1:])
    assert pgid == pid != guard.pid  # a process group of its own


def test_guard_passes_the_trainer_exit_code_on():
    code = subprocess.run(guarded_command([sys.executable, "-c", "import sys; sys.exit(3)"]))
    assert code.returncode == 3
    killed = subprocess.run(
        guarded_command([sys.executable, "-c", "import os; os.kill(os.getpid(), 15)"])
    )
    assert killed.returncode == 128 + 15
