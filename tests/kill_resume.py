"""The kill -9 + resume check every runner path shares (jitted, host-stepped)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd

from rl_aux.run_loop import WALL_CLOCK_COLUMNS


def metrics(run_dir: str) -> pd.DataFrame:
    """metrics.csv without the wall-clock columns."""
    df = pd.read_csv(os.path.join(run_dir, "metrics.csv"))
    return df.drop(columns=[c for c in WALL_CLOCK_COLUMNS if c in df.columns])


def kill_once_checkpointed(args: list[str], run_dir: str, min_chunk: int, timeout: float = 240):
    """`rl-aux train *args run_dir=...` in a real process, SIGKILLed as soon as a checkpoint
    of chunk >= min_chunk exists; returns the rows it had written."""
    cmd = [sys.executable, "-m", "experiments.cli", "train", *args, f"run_dir={run_dir}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt_dir = os.path.join(run_dir, "checkpoints")
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        steps = [d for d in os.listdir(ckpt_dir) if d.isdigit()] if os.path.isdir(ckpt_dir) else []
        if any(int(s) >= min_chunk for s in steps):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return pd.read_csv(os.path.join(run_dir, "metrics.csv"))


def assert_same_rows(full: str, resumed: str) -> None:
    """The resumed run's rows equal the uninterrupted run's, none lost or duplicated."""
    a, b = metrics(full), metrics(resumed)
    assert not b.duplicated(["global_step", "seed", "grid"]).any()
    pd.testing.assert_frame_equal(a, b)
