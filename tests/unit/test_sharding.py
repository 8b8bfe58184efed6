"""One run on 2 (forced CPU) devices: the seed axis is split, the metrics equal 1 device's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd

from experiments.train import WALL_CLOCK_COLUMNS

ARGS = [
    "total_timesteps=1024",
    "num_seeds=2",
    "grid.lr=[0.00025,0.001]",
    "logger.log_interval=512",
    "logger.progress=false",
    "eval.episodes=2",
]


def _train(run_dir, devices: int) -> pd.DataFrame:
    # The device count is fixed when jax starts: a fresh process per setting (rl_aux still
    # appends its own XLA flag after ours).
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    cmd = [sys.executable, "-m", "experiments.cli", "train", *ARGS, f"run_dir={run_dir}"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    meta = json.loads(open(os.path.join(run_dir, "meta.json")).read())
    assert len(meta["devices"]) == devices and meta["run_devices"] == devices
    return pd.read_csv(os.path.join(run_dir, "metrics.csv")).drop(columns=list(WALL_CLOCK_COLUMNS))


def test_two_device_run_equals_single_device_run(tmp_path):
    one = _train(tmp_path / "one", 1)
    two = _train(tmp_path / "two", 2)
    assert len(one) == 2 * 2 * 2  # 2 log steps x 2 seeds x 2 grid points
    pd.testing.assert_frame_equal(one, two, check_exact=False, rtol=1e-5, atol=1e-6)
