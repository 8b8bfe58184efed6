"""Any float field of the learner config, of its balancer (`grid.balancer.<opt>`) and of its
reward module (`grid.reward.<opt>`) on `grid.*`: its own hp/<name> column, each grid point
equal to the single run with that value, bad keys exit 2 naming the accepted ones, and every
accepted field is one the learner reads from `state.hparams` (else a grid would do nothing)."""

from __future__ import annotations

import sys

import jax
import numpy as np
import pandas as pd
import pytest

from agents.registry import agent_class
from experiments.cli import main
from experiments.compose import ConfigError, grid_fields, load_config
from experiments.train import build_agent, grid_points, run
from rl_aux import learner as learner_lib
from rl_aux.rewards import hook as hook_lib
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


TINY_BLEND = [
    "agent=ppo",
    "env=barfi/grid-centre",
    "reward=blend",
    "reward.hypergrad=lookahead",
    "agent.num_envs=4",
    "agent.num_steps=16",
    "agent.update_epochs=1",
    "agent.num_minibatches=1",
    "agent.lr=0.01",
    # 2 updates: a vmapped point's float noise (~1e-7, the same under grid.lr) grows through
    # the lookahead hypergradient, past atol 1e-6 within a few updates at meta_lr=0.05
    "total_timesteps=128",
    "logger.log_interval=64",
    "logger.progress=false",
]


def _blend_metrics(tmp_path, name, extra):
    cfg = load_config([*TINY_BLEND, *extra, f"run_dir={tmp_path / name}"])
    run(cfg, quiet=True)
    return deterministic(pd.read_csv(tmp_path / name / "metrics.csv"))


# (default, moved) per griddable blend option with hypergrad=lookahead: the moved values bite
# (meta_clip below the hypergradient's norm, the penalties on)
BLEND_AXES = {
    "meta_lr": (0.005, 0.05),
    "gamma_init": (0.99, 0.5),
    "reward_l2": (0.0, 1.0),
    "gamma_l2": (0.0, 1.0),
    "meta_clip": (1.0, 0.001),
    "critic_lr": (0.001, 0.01),
}


def test_grid_reward_options_are_columns_and_each_point_equals_its_single_run(tmp_path):
    """Every griddable blend option on one grid (2^6 points, one compile): the blend, its phi
    optimiser and V_p's are rebuilt inside the trace per point; each axis alone changes the
    run, and the point with every option moved equals its own single run."""
    grid = _blend_metrics(
        tmp_path, "grid", [f"grid.reward.{k}=[{a},{b}]" for k, (a, b) in BLEND_AXES.items()]
    )
    cols = [f"hp/reward.{k}" for k in BLEND_AXES]
    for col, values in zip(cols, BLEND_AXES.values(), strict=True):
        assert sorted(grid[col].unique()) == sorted(values)
    points = {k: d.drop(columns=["grid", *cols]) for k, d in grid.groupby(cols)}
    base = tuple(a for a, _ in BLEND_AXES.values())
    for i, name in enumerate(BLEND_AXES):  # each axis alone moves the run: the option is read
        moved = points[(*base[:i], BLEND_AXES[name][1], *base[i + 1 :])]
        assert not np.array_equal(points[base]["losses/grad_norm"], moved["losses/grad_norm"]), name
    single = _blend_metrics(
        tmp_path, "single", [f"reward.{k}={b}" for k, (_, b) in BLEND_AXES.items()]
    ).drop(columns=["grid"])
    point = points[tuple(b for _, b in BLEND_AXES.values())]
    assert list(point.columns) == list(single.columns)
    pd.testing.assert_frame_equal(
        point.reset_index(drop=True), single.reset_index(drop=True), rtol=1e-5, atol=1e-6
    )


def test_grid_neumann_alpha_reaches_the_implicit_hypergradient(monkeypatch):
    """grid.reward.neumann_alpha (accepted with hypergrad=neumann): init and one update trace
    with every accepted reward option traced, and the Neumann series gets the traced value."""
    cfg = load_config([*TINY_BLEND, "reward.hypergrad=neumann", "grid.reward.neumann_alpha=[1e-4]"])
    fields = grid_fields(agent_class("ppo"), "blend", None, cfg.reward)
    fields = [k for k in fields if k.startswith("reward.")]
    assert "reward.neumann_alpha" in fields
    _, learner = build_agent(cfg)
    hparams = grid_points(cfg, learner.default_hparams())[0]
    hparams.update({k: float(getattr(cfg.reward, k.removeprefix("reward."))) for k in fields})
    alphas, neumann = [], hook_lib.neumann_hypergrad

    def spy(*args):
        alphas.append(args[-2])  # (inner, outer, phi, theta, b_in, b_out, alpha, k)
        return neumann(*args)

    monkeypatch.setattr(hook_lib, "neumann_hypergrad", spy)
    state = jax.eval_shape(learner.init, jax.random.PRNGKey(0), hparams)
    _, m = jax.eval_shape(lambda s: learner.train_chunk(s, 1), state)
    assert "reward/hypergrad_norm" in m
    assert alphas and all(isinstance(a, jax.core.Tracer) for a in alphas)


@pytest.mark.parametrize(
    "overrides, expect",
    [
        (["grid.reward.learn_gamma=[0,1]"], ["grid.reward.learn_gamma=[0, 1]", "reward.meta_lr"]),
        (
            ["grid.reward.lookahead_steps=[1,2]"],
            ["grid.reward.lookahead_steps", "reward.critic_lr"],
        ),
        (["grid.reward.beta=[0.1]"], ["grid.reward.beta=[0.1]", "reward.gamma_init"]),
        (["grid.reward.gamma_init=[0.9,1.5]"], ["grid.reward.gamma_init=1.5", "< 1.0"]),
        (["grid.reward.meta_lr=[0.0]"], ["grid.reward.meta_lr=0.0", "> 0.0"]),
        (["grid.reward.neumann_alpha=[1e-3]"], ["reward.hypergrad=neumann", "reward.meta_lr"]),
        (
            ["reward.hypergrad=none", "grid.reward.meta_lr=[1e-3]"],
            ["grid.reward.meta_lr=[0.001]", "outer step", "reward.critic_lr"],
        ),
    ],
)
def test_bad_grid_reward_key_names_the_value_and_the_accepted_fields(overrides, expect):
    """Bool, int (shape-changing), unknown, out-of-range and never-read reward options."""
    with pytest.raises(ConfigError) as e:
        load_config([*TINY_BLEND, *overrides])
    for part in expect:
        assert part in str(e.value)


def test_grid_reward_without_a_reward_module_or_on_a_host_loop_exits_2(tmp_path, capsys):
    """reward=env has no reward option; a host-stepped env's loop runs one point. The CLI
    exits 2 before any compile."""
    with pytest.raises(ConfigError, match=r"grid.reward.meta_lr=\[0.001\]: no reward module"):
        load_config([*TINY_PPO, "grid.reward.meta_lr=[1e-3]"])
    host = ["env=minihack/KeyRoom-S5-v0", "reward=keyroom_oracle", "grid.reward.beta=[0.1,0.2]"]
    with pytest.raises(ConfigError, match=r"grid.reward.beta=\[0.1, 0.2\]: .*host loop"):
        load_config(host)
    assert main(["train", *host, f"run_dir={tmp_path / 'host'}"]) == 2
    assert "host loop" in capsys.readouterr().err
