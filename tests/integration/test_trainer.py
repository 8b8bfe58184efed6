"""Run store and trainer: determinism, kill + resume, no silent overwrite, grid in one program."""

import os

import pandas as pd
import pytest

from experiments.compose import load_config
from experiments.train import WALL_CLOCK_COLUMNS, run
from tests.kill_resume import assert_same_rows, kill_once_checkpointed

COMMON = [
    "total_timesteps=30720",
    "num_seeds=2",
    "logger.log_interval=2048",
    "checkpoint.every=4096",
    "logger.progress=false",
    "head=next_latent",
]


def _metrics(run_dir: str) -> pd.DataFrame:
    df = pd.read_csv(os.path.join(run_dir, "metrics.csv"))
    return df.drop(columns=list(WALL_CLOCK_COLUMNS))


def test_same_seed_gives_identical_metrics(tmp_path):
    for name in ("a", "b"):
        run(load_config([*COMMON, f"run_dir={tmp_path / name}"]), quiet=True)
    a, b = _metrics(str(tmp_path / "a")), _metrics(str(tmp_path / "b"))
    assert len(a) == 2 * 15
    pd.testing.assert_frame_equal(a, b)  # every column but wall-clock, bit for bit
    for f in ("config.yaml", "meta.json"):
        assert os.path.exists(tmp_path / "a" / f)
    c = run(load_config([*COMMON, f"run_dir={tmp_path / 'c'}", "seed=5"]), quiet=True)
    assert not _metrics(str(tmp_path / "c"))["losses/value"].equals(a["losses/value"])
    assert set(c["per_seed"]) == {(0, 5), (0, 6)}


def test_killed_run_resumes_to_the_same_metrics(tmp_path):
    full, killed = str(tmp_path / "full"), str(tmp_path / "killed")
    run(load_config([*COMMON, f"run_dir={full}"]), quiet=True)
    # a real process, killed with SIGKILL once a checkpoint past the start exists
    partial = kill_once_checkpointed([*COMMON, "logger.log_interval=2048"], killed, 3)
    assert partial["global_step"].max() < 30720, "the run finished before it was killed"
    run(load_config([*COMMON, f"run_dir={killed}", "resume=true"]), quiet=True)
    assert_same_rows(full, killed)


def test_existing_run_is_never_overwritten(tmp_path):
    from experiments.cli import main

    args = ["total_timesteps=2048", "logger.progress=false", f"run_dir={tmp_path}"]
    assert main(["train", *args]) == 0
    before = open(tmp_path / "metrics.csv").read()
    assert main(["train", *args]) == 2
    assert open(tmp_path / "metrics.csv").read() == before


def test_resume_with_a_changed_config_exits_2(tmp_path):
    from experiments.cli import main

    args = ["total_timesteps=2048", "logger.progress=false", f"run_dir={tmp_path}"]
    assert main(["train", *args]) == 0
    assert main(["train", *args, "resume=true", "num_seeds=3"]) == 2
    assert main(["train", *args, "resume=true"]) == 0  # same config: resumes (already done)


def test_grid_runs_in_one_program(tmp_path):
    cfg = load_config(
        [
            "total_timesteps=4096",
            "num_seeds=2",
            "grid.lr=[0.001,0.0003]",
            "head=reward_pred",
            "grid.reward_pred.weight=[0.0,1.0]",
            "logger.progress=false",
            f"run_dir={tmp_path}",
        ]
    )
    run(cfg, quiet=True)
    df = pd.read_csv(tmp_path / "metrics.csv")
    combos = df.groupby(["grid", "seed"]).first()
    assert len(combos) == 8
    assert sorted(set(zip(df["hp/lr"], df["hp/reward_pred.weight"], strict=True))) == [
        (0.0003, 0.0),
        (0.0003, 1.0),
        (0.001, 0.0),
        (0.001, 1.0),
    ]
    # weight 0 leaves the head untrained... but its loss is still measured
    assert df["aux/reward_pred/loss"].notna().all()


@pytest.mark.parametrize("mode", ["offline"])
def test_wandb_offline_mirror_gets_one_run_per_seed(tmp_path, mode, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", mode)
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-should-not-leak")
    cfg = load_config(
        [
            "total_timesteps=2048",
            "num_seeds=2",
            "logger.progress=false",
            f"logger.wandb.mode={mode}",
            f"run_dir={tmp_path}",
        ]
    )
    run(cfg, quiet=True)
    runs = [d for d in os.listdir(tmp_path / "wandb") if d.startswith("offline-run-")]
    assert len(runs) == 2
    for root, _, files in os.walk(tmp_path):
        for f in files:
            data = open(os.path.join(root, f), "rb").read()
            assert b"sk-secret-should-not-leak" not in data, os.path.join(root, f)


@pytest.mark.parametrize("agent", [pytest.param("ppo", marks=pytest.mark.slow), "dqn"])
def test_mapped_runs_match_vmapped_runs(tmp_path, agent):
    """run_batching=map (seeds one after another) computes what vmap does, shared lock-step
    fields (DQN's replay position and size) included."""
    base = [
        f"agent={agent}",
        "total_timesteps=2048",
        "num_seeds=2",
        "logger.log_interval=512",
        "logger.progress=false",
    ]
    if agent == "dqn":
        base += ["agent.learning_starts=256", "agent.buffer_size=1024"]
    for mode in ("vmap", "map"):
        run(load_config([*base, f"run_batching={mode}", f"run_dir={tmp_path / mode}"]), quiet=True)
    a, b = _metrics(str(tmp_path / "vmap")), _metrics(str(tmp_path / "map"))
    assert len(a) >= 2 * 4 and set(a["seed"]) == {0, 1}
    pd.testing.assert_frame_equal(a, b, rtol=1e-4, atol=1e-5)
    assert not a.loc[a["seed"] == 0, "charts/episodic_return"].equals(
        a.loc[a["seed"] == 1, "charts/episodic_return"].reset_index(drop=True)
    )


def test_bad_run_batching_names_the_choices():
    with pytest.raises(Exception, match=r"run_batching.*vmap.*map"):
        load_config(["run_batching=pmap"])
