"""A real single-node SLURM (scripts/slurm_local.sh): `rl-aux sweep hydra/launcher=slurm_local`.

Marked `cluster` (not in the default run): `make test-cluster` starts the local cluster,
runs these, and stops it. Run alone, the `slurm` fixture starts its own cluster in a temp dir
and stops it (by its pid files) when the session ends, also after a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "slurm_local.sh"
TINY = ["logger.progress=false", "eval.episodes=2"]


def _sinfo_ok(env: dict[str, str]) -> bool:
    """True when the cluster named by env's SLURM_CONF answers and its node is idle."""
    if not shutil.which("sinfo") or not env.get("SLURM_CONF"):
        return False
    out = subprocess.run(
        ["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True, check=False
    )
    return out.returncode == 0 and out.stdout.strip() in ("idle", "mixed", "allocated")


@pytest.fixture(scope="session")
def slurm(tmp_path_factory) -> dict[str, str]:
    """The environment of a running local SLURM: the one SLURM_CONF names, or our own."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if _sinfo_ok(env):
        yield env
        return
    run_dir = tmp_path_factory.mktemp("slurm")
    env = dict(env, SLURM_LOCAL_DIR=str(run_dir), SLURM_LOCAL_PORT="16837")
    env["SLURM_CONF"] = str(run_dir / "slurm.conf")
    try:
        subprocess.run([str(SCRIPT), "start"], env=env, check=True, timeout=600)
        yield env
    finally:
        subprocess.run([str(SCRIPT), "stop"], env=env, check=False, timeout=120)


def _sweep(env: dict[str, str], cwd: Path, args: list[str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "experiments.cli", "sweep", "hydra/launcher=slurm_local", *args]
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)


def _wait_queue_empty(env: dict[str, str], timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = subprocess.run(["squeue", "-h"], env=env, capture_output=True, text=True)
        if out.returncode == 0 and not out.stdout.strip():
            return
        time.sleep(1)
    raise AssertionError(f"squeue still busy after {timeout} s")


def test_slurm_sweep_2x2_writes_run_stores_and_rebuilds_the_figure(slurm, tmp_path):
    out = _sweep(
        slurm,
        tmp_path,
        [
            "head=reward_pred,next_latent",
            "seed=0,1",
            "total_timesteps=4096",
            *TINY,
            "run_dir=runs/slurm_cartpole",
        ],
    )
    assert out.returncode == 0, out.stderr[-3000:]
    root = tmp_path / "runs" / "slurm_cartpole"
    names = sorted(p.name for p in root.iterdir() if (p / "metrics.csv").exists())
    assert names == [f"head={h},seed={s}" for h in ("next_latent", "reward_pred") for s in (0, 1)]
    for name in names:
        assert json.loads((root / name / "status.json").read_text())["status"] == "finished"
        df = pd.read_csv(root / name / "metrics.csv")
        assert df["global_step"].max() == 4096 and df["seed"].nunique() == 1
    jobs = sorted(p.name for p in (root / ".hydra" / ".submitit").glob("*_*") if p.is_dir())
    assert len(jobs) == 4  # four array tasks of one sbatch array job
    for job in jobs:  # every job ran under SLURM on this host and returned a result
        assert (root / ".hydra" / ".submitit" / job / f"{job}_0_result.pkl").exists()

    from experiments.plot import main as plot_main

    spec = ROOT / "experiments" / "figures" / "slurm_cartpole.yaml"
    figs = tmp_path / "figs"
    assert plot_main(["--figure", str(spec), "--base", str(tmp_path), "--out", str(figs)]) == 0
    scores = pd.read_csv(figs / "scores.csv")
    assert sorted(scores["algorithm"].unique()) == ["ppo+next_latent", "ppo+reward_pred"]
    assert scores.groupby("algorithm")["seed"].apply(sorted).tolist() == [[0, 1], [0, 1]]
    for name in ("curves", "aggregates", "profile", "improvement"):
        assert (figs / f"{name}.png").stat().st_size > 0


def test_slurm_preempted_job_checkpoints_and_relaunch_resumes_it(slurm, tmp_path):
    args = [
        "seed=0,1",
        "total_timesteps=40960",
        "logger.log_interval=1024",
        "checkpoint.every=8192",
        *TINY,
        "run_dir=runs/pre",
    ]
    cmd = [sys.executable, "-m", "experiments.cli", "sweep", "hydra/launcher=slurm_local", *args]
    proc = subprocess.Popen(
        cmd, env=slurm, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    root = tmp_path / "runs" / "pre"
    first = root / "seed=0" / "metrics.csv"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if first.exists() and len(pd.read_csv(first)) >= 2:  # seed 0 is training
            break
        time.sleep(0.2)
    job = next((root / ".hydra" / ".submitit").glob("*_0")).name  # array task of seed=0
    subprocess.run(["scancel", "--signal=TERM", job], env=slurm, check=True)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode != 0
    assert "exited with code 143" in err, err[-3000:]
    status = json.loads((root / "seed=0" / "status.json").read_text())
    assert status["status"] == "preempted" and status["signal"] == 15
    assert status["global_step"] < 40960
    _wait_queue_empty(slurm)
    other = root / "seed=1" / "metrics.csv"
    assert json.loads((root / "seed=1" / "status.json").read_text())["status"] == "finished"
    before = (other.stat().st_mtime_ns, other.read_bytes())

    out = _sweep(slurm, tmp_path, args)
    assert out.returncode == 0, out.stderr[-3000:]
    logs = "".join(p.read_text() for p in root.glob(".hydra/.submitit/*/*_log.err"))
    assert "resuming" in logs and "already finished" in logs
    assert (other.stat().st_mtime_ns, other.read_bytes()) == before  # finished: not re-run
    for seed in (0, 1):
        df = pd.read_csv(root / f"seed={seed}" / "metrics.csv")
        assert list(df["global_step"]) == list(range(1024, 40961, 1024))  # none lost or twice
        assert json.loads((root / f"seed={seed}" / "status.json").read_text())["status"] == (
            "finished"
        )
