"""Sweeps: one compiled program per head set, clean stops (SIGTERM, NaN), relaunch skips."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import yaml

from experiments.cli import plot_main
from experiments.compose import load_config
from experiments.train import run, run_experiment
from rl_aux.heads import AuxHead, HeadConfig, HeadInputs, register_head
from rl_aux.run_loop import NonFiniteLoss
from rl_aux.run_store import run_status
from rl_aux.typed_config import spec

TINY = ["logger.progress=false", "eval.episodes=2"]


class _CompileLog(logging.Handler):
    """Collects jax's 'Finished XLA compilation of jit(<name>)' log lines."""

    def __init__(self):
        super().__init__()
        self.names: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith("Finished XLA compilation of "):
            self.names.append(msg.split(" of ", 1)[1].split(" in ", 1)[0])


@pytest.mark.slow  # 2 compiles of a 12-way vmapped PPO + 24 wandb runs: ~1.5-4 min on 2 cores
def test_sweep_of_2_head_sets_x_4_seeds_x_3_lrs_compiles_2_programs(tmp_path):
    root = tmp_path / "runs" / "sweep_cartpole"  # where experiments/figures/sweep_cartpole looks
    overrides = [
        "experiment=sweep_cartpole",
        "total_timesteps=2048",  # 4 updates of 4 envs x 128 steps, in 2 chunks of 2
        "logger.log_interval=1024",
        "plot=false",
        "logger.wandb.mode=offline",
        f"run_dir={root}",
        *TINY,
    ]
    handler = _CompileLog()
    logger = logging.getLogger("jax")
    logger.addHandler(handler)
    jax.config.update("jax_log_compiles", True)
    try:
        run_experiment(load_config(overrides), overrides, quiet=True)
    finally:
        jax.config.update("jax_log_compiles", False)
        logger.removeHandler(handler)
    programs = [n for n in handler.names if "train_chunk_program" in n]
    assert len(programs) == 2, handler.names
    rows = []
    for variant in ("reward_pred", "next_latent"):
        df = pd.read_csv(root / variant / "metrics.csv")
        rows.append(df.assign(variant=variant))
    df = pd.concat(rows)
    runs = df.groupby(["variant", "grid", "seed"]).size()
    assert len(runs) == 24 and (runs == 2).all()  # log rows at steps 1024 and 2048
    lrs = df.groupby(["variant", "grid"])["hp/lr"].unique()
    assert sorted(float(v[0]) for v in lrs) == sorted([0.0001, 0.00025, 0.001] * 2)
    wandb_runs = list(root.glob("*/wandb/offline-run-*"))
    assert len(wandb_runs) == 24  # one wandb run per seed/grid point

    # The shipped figure spec on these runs: numbers equal a hand computation from
    # metrics.csv, and the offline wandb copies of the same runs give the same CSVs.
    from tests.unit.test_figures import hand_iqm_ci

    spec = yaml.safe_load(open("experiments/figures/sweep_cartpole.yaml"))
    spec["reps"] = 200
    (tmp_path / "store.yaml").write_text(yaml.safe_dump(spec))
    spec["sources"] = [{"wandb_offline": "runs/sweep_cartpole"}]
    (tmp_path / "wandb.yaml").write_text(yaml.safe_dump(spec))
    for src in ("store", "wandb"):
        args = ["--figure", str(tmp_path / f"{src}.yaml"), "--out", str(tmp_path / src)]
        assert plot_main([*args, "--base", str(tmp_path)]) == 0
    for name in ("scores", "curves", "aggregates", "profile", "improvement"):
        a, b = (tmp_path / src / f"{name}.csv" for src in ("store", "wandb"))
        assert a.read_bytes() == b.read_bytes(), name
    agg = pd.read_csv(tmp_path / "store" / "aggregates.csv").set_index(["algorithm", "aggregate"])
    for (variant, _, lr), d in df.groupby(["variant", "grid", "hp/lr"]):
        # final score: mean return over the last 10% of the logged steps (here: step 2048)
        last = d[d["global_step"] == 2048].sort_values("seed")
        m = last["charts/episodic_return"].to_numpy()[:, None] / 500.0  # normalise: max 500
        algo = next(a for a, _ in agg.index if a.startswith(f"{variant} lr={lr:g} "))
        got = agg.loc[(algo, "iqm"), ["value", "ci_low", "ci_high"]].to_numpy(float)
        np.testing.assert_allclose(got, hand_iqm_ci(m), rtol=1e-9)


# ------------------------------------------------------------------ NaN guard
@dataclasses.dataclass(frozen=True)
class _ProbeConfig(HeadConfig):
    start: float = spec(0.005, gt=0.0)


class _Scalar(nn.Module):
    start: float

    @nn.compact
    def __call__(self, z, action):
        return self.param("p", lambda _: jnp.asarray(self.start))


@register_head("test_log_barrier")
class _LogBarrier(AuxHead):
    """loss = log(p): descent drives p through 0 in ~start/lr Adam steps, then NaN."""

    Config = _ProbeConfig
    requires = frozenset()

    def module(self) -> nn.Module:
        return _Scalar(self.cfg.start)

    def loss(self, params, inputs: HeadInputs, key):
        p = self.module().apply(params, self.features(inputs.feats), inputs.action)
        return jnp.log(p), {}


def test_nonfinite_loss_stops_naming_the_loss_and_keeps_last_good_checkpoint(tmp_path):
    # Adam moves p by ~lr per minibatch step: 16 steps of update 1 leave p ~ 0.001 > 0; it
    # crosses 0 in update 2, so chunk 0 is good and chunk 1 has a NaN loss.
    cfg = load_config(
        [
            "head=test_log_barrier",
            "total_timesteps=2048",
            "logger.log_interval=512",
            "checkpoint.every=512",
            f"run_dir={tmp_path}",
            *TINY,
        ]
    )
    with pytest.raises(NonFiniteLoss, match="aux/test_log_barrier/loss") as e:
        run(cfg, quiet=True)
    assert "global_step 1024" in str(e.value) and "chunk 0" in str(e.value)
    df = pd.read_csv(tmp_path / "metrics.csv")
    assert list(df["global_step"]) == [512]  # the bad chunk's rows were not logged
    assert df.filter(like="loss").notna().all(axis=None)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["0"]
    assert run_status(str(tmp_path))["status"] == "diverged"


# ------------------------------------------------------------------ SIGTERM + relaunch
@pytest.mark.slow  # two processes x two variants: ~2 min on a quiet 2-core machine
def test_sigterm_checkpoints_and_relaunched_sweep_skips_finished_runs(tmp_path):
    args = [
        "experiment=sweep_cartpole",
        "num_seeds=2",
        "grid.lr=[0.00025]",
        "total_timesteps=40960",
        "logger.log_interval=1024",
        "checkpoint.every=8192",
        "plot=false",
        f"run_dir={tmp_path}",
        *TINY,
    ]
    cmd = [sys.executable, "-m", "experiments.cli", "train", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    second = tmp_path / "next_latent" / "metrics.csv"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if second.exists() and len(pd.read_csv(second)) >= 2:  # mid-way through variant 2
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "resume=true" in err
    assert run_status(str(tmp_path / "reward_pred"))["status"] == "finished"
    assert run_status(str(tmp_path / "next_latent"))["status"] == "preempted"
    first = tmp_path / "reward_pred" / "metrics.csv"
    before = (first.stat().st_mtime_ns, first.read_bytes())
    partial = pd.read_csv(second)
    assert partial["global_step"].max() < 40960

    out = subprocess.run(
        [*cmd, "resume=true"], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "already finished" in out.stderr and "resuming" in out.stderr
    assert (first.stat().st_mtime_ns, first.read_bytes()) == before  # not re-run
    for variant in ("reward_pred", "next_latent"):
        df = pd.read_csv(tmp_path / variant / "metrics.csv")
        assert not df.duplicated(["global_step", "seed", "grid"]).any()
        for _, d in df.groupby(["seed", "grid"]):
            assert list(d["global_step"]) == list(range(1024, 40961, 1024))  # none lost
        assert run_status(str(tmp_path / variant))["status"] == "finished"
    meta = json.loads((tmp_path / "next_latent" / "meta.json").read_text())
    assert len(meta["previous_starts"]) == 1


def test_sweep_keys_override_is_one_value_not_a_sweep():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from experiments.sweep import sweep_keys_override

    (override,) = OverridesParser.create().parse_overrides([sweep_keys_override(["head", "seed"])])
    assert not override.is_sweep_override()  # unquoted, a 2x2 sweep launched 8 jobs
    assert override.value() == "head,seed"
