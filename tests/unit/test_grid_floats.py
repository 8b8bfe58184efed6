"""Any float field of the learner config on `grid.*`: its own hp/<name> column, each grid point
equal to the single run with that value, bad keys exit 2 naming the accepted ones, and every
accepted field is one the learner reads from `state.hparams` (else a grid would do nothing)."""

from __future__ import annotations

import sys

import jax
import numpy as np
import pandas as pd
import pytest

from agents.registry import agent_class
from experiments.compose import ConfigError, grid_fields, load_config
from experiments.train import build_agent, grid_points, run
from rl_aux import learner as learner_lib
from tests.golden.runner import deterministic

TINY_PPO = [
    "env=gymnax/CartPole-v1",
    "agent.num_envs=2",
    "agent.num_steps=16",
    "agent.update_epochs=1",
    "agent.num_minibatches=1",
    "total_timesteps=512",
    "agent.lr=0.01",  # the policy leaves uniform within a few updates: the entropy term bites
    "logger.log_interval=256",
    "logger.progress=false",
]


def _metrics(tmp_path, name, extra):
    cfg = load_config([*TINY_PPO, *extra, f"run_dir={tmp_path / name}"])
    run(cfg, quiet=True)
    return deterministic(pd.read_csv(tmp_path / name / "metrics.csv"))  # no wall-clock columns


def test_grid_ent_coef_is_a_column_and_each_point_equals_its_single_run(tmp_path):
    grid = _metrics(tmp_path, "grid", ["grid.ent_coef=[0.0,0.5]"])
    assert sorted(grid["hp/ent_coef"].unique()) == [0.0, 0.5]
    a, b = (d.drop(columns=["grid", "hp/ent_coef"]) for _, d in grid.groupby("grid"))
    assert not np.array_equal(a["losses/entropy"], b["losses/entropy"])  # the points differ
    single = _metrics(tmp_path, "single", ["agent.ent_coef=0.5"])
    point = grid[grid["hp/ent_coef"] == 0.5].drop(columns=["grid", "hp/ent_coef"])
    single = single.drop(columns=["grid"])
    assert list(point.columns) == list(single.columns)
    pd.testing.assert_frame_equal(
        point.reset_index(drop=True), single.reset_index(drop=True), rtol=1e-5, atol=1e-7
    )


def test_bad_grid_key_names_the_accepted_float_fields():
    with pytest.raises(ConfigError) as e:
        load_config([*TINY_PPO, "grid.update_epochs=[1,2]"])
    msg = str(e.value)
    assert "grid.update_epochs" in msg
    for name in ("lr", "ent_coef", "clip_eps", "gamma", "gae_lambda", "vf_coef"):
        assert name in msg
    with pytest.raises(ConfigError, match=r"grid.max_grad_norm.*Accepted"):
        load_config([*TINY_PPO, "grid.max_grad_norm=[0.5,1.0]"])  # static in the optimiser
    with pytest.raises(ConfigError, match=r"grid.gamma=.*1.5.*<= 1.0"):
        load_config([*TINY_PPO, "grid.gamma=[0.9,1.5]"])  # the field's own bounds


@pytest.mark.parametrize(
    "agent, extra",
    [("ppo", []), ("ppo", ["agent.network.core=gru"]), ("dqn", ["agent.learning_starts=0"])],
)
def test_every_accepted_float_is_read_from_hparams(agent, extra, monkeypatch):
    """Trace one chunk with every accepted field on the grid; the learner must look each up
    in `state.hparams` (rl_aux/learner.hp), or a grid over it would change nothing."""
    cfg = load_config([f"agent={agent}", "env=gymnax/CartPole-v1", *extra])
    fields = [k for k in grid_fields(agent_class(agent), cfg.reward_name) if k != "lr"]
    assert fields  # the config has floats besides lr
    _, learner = build_agent(cfg)
    hparams = grid_points(cfg, learner.default_hparams())[0]
    hparams.update({k: float(getattr(cfg.agent, k)) for k in fields})
    read = set()

    def recording(h, name, static):
        if name in h:
            read.add(name)
        return learner_lib.hp(h, name, static)

    monkeypatch.setattr(sys.modules[type(learner).__module__], "hp", recording)
    state = jax.eval_shape(learner.init, jax.random.PRNGKey(0), hparams)
    jax.eval_shape(lambda s: learner.train_chunk(s, 1), state)
    assert sorted(set(fields) - read) == []


BLOOP = ["head=reward_pred", "agent.balancer.name=bloop"]


def test_grid_balancer_option_is_a_column_and_each_point_equals_its_single_run(tmp_path):
    """grid.balancer.ema rebuilds Bloop inside the trace per point: each equals its own run."""
    grid = _metrics(tmp_path, "grid", [*BLOOP, "grid.balancer.ema=[0.05,1.0]"])
    col = "hp/balancer.ema"
    assert sorted(grid[col].unique()) == [0.05, 1.0]
    a, b = (d.drop(columns=["grid", col]) for _, d in grid.groupby("grid"))
    assert not np.array_equal(a["losses/entropy"], b["losses/entropy"])  # points differ
    single = _metrics(tmp_path, "single", [*BLOOP, "agent.balancer.ema=1.0"])
    point = grid[grid[col] == 1.0].drop(columns=["grid", col])
    single = single.drop(columns=["grid"])
    assert list(point.columns) == list(single.columns)
    pd.testing.assert_frame_equal(
        point.reset_index(drop=True), single.reset_index(drop=True), rtol=1e-5, atol=1e-6
    )


def test_bad_grid_balancer_key_names_the_value_and_the_accepted_fields():
    with pytest.raises(ConfigError) as e:  # a bool option: not a float a trace can carry
        load_config(
            [
                *TINY_PPO,
                "head=reward_pred",
                "agent.balancer.name=gradnorm",
                "grid.balancer.learn_main=[0,1]",
            ]
        )
    msg = str(e.value)
    assert "grid.balancer.learn_main=[0, 1]" in msg
    assert "balancer.alpha" in msg and "balancer.lr" in msg
    with pytest.raises(ConfigError, match=r"grid.balancer.ema.*Accepted: (?!.*balancer\.ema)"):
        load_config([*TINY_PPO, "grid.balancer.ema=[0.1]"])  # weighted_sum has no options
    with pytest.raises(ConfigError, match=r"grid.balancer.ema=.*1.5"):
        load_config([*TINY_PPO, *BLOOP, "grid.balancer.ema=[0.1,1.5]"])  # the option's bounds
