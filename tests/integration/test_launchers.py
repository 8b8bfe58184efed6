"""`rl-aux sweep` on hydra launchers: 4 jobs through the Ray launcher on a local cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd

TINY = ["total_timesteps=512", "logger.progress=false", "eval.episodes=2"]


def test_ray_launcher_sweep_of_4_jobs_lands_in_the_run_store(tmp_path):
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=os.getcwd())
    env.pop("RAY_ADDRESS", None)
    cmd = [
        sys.executable,
        "-m",
        "experiments.cli",
        "sweep",
        "hydra/launcher=ray_local",
        "hydra.launcher.ray.init.num_cpus=2",  # a local cluster on 127.0.0.1
        "hydra.launcher.ray.init._node_ip_address=127.0.0.1",
        "seed=0,1,2,3",
        *TINY,
        f"run_dir={tmp_path}",
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    runs = sorted(p.name for p in tmp_path.iterdir() if (p / "metrics.csv").exists())
    assert runs == [f"seed={s}" for s in range(4)]
    for s in range(4):
        status = json.loads((tmp_path / f"seed={s}" / "status.json").read_text())
        assert status["status"] == "finished"
        df = pd.read_csv(tmp_path / f"seed={s}" / "metrics.csv")
        assert set(df["seed"]) == {s} and df["global_step"].max() == 512
