"""Host-stepped runs (MiniHack) keep the run store of every path and resume after kill -9."""

import json
import os

import pytest

from experiments.compose import load_config
from experiments.train import run
from tests.kill_resume import assert_same_rows, kill_once_checkpointed, metrics

pytest.importorskip("minihack")

# 1 env, 1 worker, 16 chunks of one 32-step update; a checkpoint after every chunk
ROOM = [
    "experiment=minihack_ppo",
    "total_timesteps=512",
    "agent.num_envs=1",
    "env.options.num_workers=1",
    "agent.num_steps=32",
    "agent.num_minibatches=1",
    "agent.update_epochs=1",
    "agent.network.features=16",
    "agent.network.core_hidden=16",
    "logger.log_interval=32",
    "checkpoint.every=32",
    "logger.progress=false",
]


@pytest.mark.slow  # three processes each compile the LSTM learner: ~1-3 min on 2 cores
def test_killed_host_run_resumes_to_the_same_rows(tmp_path):
    full, killed = str(tmp_path / "full"), str(tmp_path / "killed")
    run(load_config([*ROOM, f"run_dir={full}"]), quiet=True)
    for f in ("config.yaml", "meta.json", "metrics.csv", "status.json", "checkpoints"):
        assert os.path.exists(os.path.join(full, f)), f
    with open(os.path.join(full, "status.json")) as f:
        assert json.load(f)["global_step"] == 512
    assert "charts/success" in metrics(full).columns
    partial = kill_once_checkpointed(ROOM, killed, 4)
    assert partial["global_step"].max() < 512, "the run finished before it was killed"
    with open(os.path.join(killed, "status.json")) as f:
        status = json.load(f)
    assert status["status"] == "running" and status["global_step"] > 0  # the real step
    run(load_config([*ROOM, f"run_dir={killed}", "resume=true"]), quiet=True)
    assert_same_rows(full, killed)
