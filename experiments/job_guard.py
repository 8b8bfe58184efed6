"""The process between a launcher's worker and its `rl-aux train` run, so the run survives the
worker's death long enough to checkpoint.

A sweep job's trainer must get exactly one SIGTERM when the process that launched it dies (a
lost Ray node, a killed submitit worker), then checkpoint and exit 143. Ray gets in the way
twice: a Ray worker that notices its raylet died SIGKILLs its direct children before it exits
(`RAY_kill_child_processes_on_worker_exit`, on by default, not recursive), and Ray's process
reaper SIGTERMs, then SIGKILLs, the node's process group. So under Ray the trainer runs as a
grandchild of the worker, in a process group of its own, behind this guard:

    Ray worker -> python -m experiments.job_guard CMD... -> CMD (the trainer)

The guard dies with the default action on any signal (SIGKILL from the worker, SIGTERM from
its own parent-death signal or the reaper), and the trainer's parent-death signal then
delivers the one SIGTERM. Otherwise the guard exits with the trainer's exit code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def term_with_parent() -> None:
    """In a child (preexec_fn): SIGTERM when its parent process dies (Linux; a no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def own_group_with_parent_term() -> None:
    """In a child (preexec_fn): its parent-death SIGTERM, and a process group of its own, so a
    signal to the launcher's group never reaches it (a second SIGTERM would stop the run at
    once, mid-checkpoint)."""
    term_with_parent()
    os.setpgid(0, 0)


def guarded_command(cmd: list[str]) -> list[str]:
    """`cmd` run behind the guard, with this interpreter."""
    return [sys.executable, "-m", "experiments.job_guard", *cmd]


def main(cmd: list[str]) -> int:
    """Run `cmd` as the trainer; its exit code, or 128 + the signal that ended it."""
    if not cmd:
        print("usage: python -m experiments.job_guard CMD [ARGS...]", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # die on it; never kill the trainer ourselves
    child = subprocess.Popen(cmd, preexec_fn=own_group_with_parent_term)
    code = child.wait()
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
