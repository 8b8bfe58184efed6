"""Every plugin kind is added from one file outside the library and loaded by `plugins=[path]`:
an env family with options, a learner with its config, a balancer with an option (the head
case is tests/integration/test_head_plugin.py). No library file names them."""

import os

import numpy as np
import pandas as pd
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGINS = os.path.join(ROOT, "examples", "plugins")
CHAIN = os.path.join(PLUGINS, "chain_env.py")
A2C = os.path.join(PLUGINS, "a2c.py")
CAPPED = os.path.join(PLUGINS, "capped_aux.py")


def _train(tmp_path, overrides: list[str]) -> pd.DataFrame:
    from experiments.compose import load_config
    from experiments.train import run

    run_dir = str(tmp_path / "run")
    fast = ["logger.progress=false", "eval.episodes=2", "eval.max_steps=40"]
    cfg = load_config([*overrides, f"run_dir={run_dir}", *fast])
    run(cfg, quiet=True)
    return pd.read_csv(os.path.join(run_dir, "metrics.csv"))


def test_env_family_plugin_trains_and_takes_its_options(tmp_path):
    from envs.registry import env_family

    df = _train(
        tmp_path,
        [
            f"plugins=[{CHAIN}]",
            "env=chain/Chain5",
            "env.options.slip=0.05",
            "agent.num_steps=32",
            "total_timesteps=6400",
            "logger.log_interval=640",
        ],
    )
    fam = env_family("chain/Chain5")
    assert not fam.host_stepped and not fam.text_observations and fam.takes_options
    ret = df["charts/episodic_return"].dropna()
    # optimal: 4 steps right, 0.97; a random walk on 5 states mostly times out (about -0.1)
    assert ret.iloc[-3:].mean() > 0.8, ret.tolist()


def test_env_family_plugin_options_are_validated():
    from experiments.compose import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"env.options.slip=2.0 is out of range.*<= 1.0"):
        load_config([f"plugins=[{CHAIN}]", "env=chain/Chain5", "env.options.slip=2"])
    with pytest.raises(ConfigError, match=r"env.options.nope is not a known key.*slip"):
        load_config([f"plugins=[{CHAIN}]", "env=chain/Chain5", "+env.options.nope=1"])


def test_learner_plugin_trains_with_its_config(tmp_path):
    df = _train(
        tmp_path,
        [
            f"plugins=[{A2C},{CHAIN}]",
            "agent=a2c",
            "env=chain/Chain8",
            "agent.num_envs=16",
            "agent.lr=0.003",
            "num_seeds=2",
            "total_timesteps=12800",
            "logger.log_interval=1280",
        ],
    )
    assert sorted(df["seed"].unique()) == [0, 1]
    assert {"losses/policy", "losses/value", "losses/entropy"} <= set(df.columns)
    ret = df["charts/episodic_return"].dropna()
    assert ret.iloc[-4:].mean() > 0.8, ret.tolist()  # optimal 0.94 (7 steps right)


def test_learner_plugin_config_is_validated():
    from experiments.compose import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"agent.num_steps=0 is out of range"):
        load_config([f"plugins=[{A2C}]", "agent=a2c", "agent.num_steps=0"])


def test_balancer_plugin_caps_the_aux_gradient():
    import jax.numpy as jnp

    from experiments.compose import import_plugin
    from rl_aux.balancers import balancer_config, make_balancer

    import_plugin(CAPPED)
    bal = make_balancer(balancer_config("capped_aux", max_ratio=0.5))
    g_main = {"w": jnp.array([3.0, 4.0])}  # norm 5
    g_aux = {"w": jnp.array([0.0, 100.0])}
    d, _ = bal.tx.update(g_main, bal.tx.init(g_main), g_aux=g_aux)
    np.testing.assert_allclose(np.asarray(d["w"]), [3.0, 4.0 + 2.5], rtol=1e-6)


def test_balancer_plugin_trains_with_its_option(tmp_path):
    df = _train(
        tmp_path,
        [
            f"plugins=[{CAPPED},{CHAIN}]",
            "env=chain/Chain5",
            "head=reward_pred",
            "agent.balancer.name=capped_aux",
            "agent.balancer.max_ratio=0.5",
            "agent.num_steps=32",
            "total_timesteps=6400",
            "logger.log_interval=640",
        ],
    )
    loss = df["aux/reward_pred/loss"].dropna()
    assert np.isfinite(loss).all() and loss.iloc[-3:].mean() < loss.iloc[:3].mean()
    assert df["charts/episodic_return"].dropna().iloc[-3:].mean() > 0.8


def test_balancer_plugin_options_are_validated():
    from experiments.compose import ConfigError, load_config

    base = [f"plugins=[{CAPPED}]", "head=reward_pred", "agent.balancer=capped_aux"]
    with pytest.raises(ConfigError, match=r"agent.balancer.max_ratio=0.0 is out of range"):
        load_config([*base, "agent.balancer.max_ratio=0"])
    with pytest.raises(ConfigError, match=r"agent.balancer.ema is not an option.*max_ratio"):
        load_config([*base, "agent.balancer.ema=0.1"])
    cfg = load_config([*base, "agent.balancer.max_ratio=0.25"])
    assert cfg.to_yaml_dict()["agent"]["balancer"] == {"name": "capped_aux", "max_ratio": 0.25}


def test_describe_shows_plugin_options():
    from experiments.describe import describe

    text = describe([f"plugins=[{CAPPED},{CHAIN},{A2C}]", "balancer=capped_aux"])
    assert "agent.balancer.max_ratio" in text and "max_ratio * |g_main|" in text
    assert "env.options.slip" in describe([f"plugins=[{CHAIN}]", "env=chain/Chain5"])
    assert "agent.num_steps" in describe([f"plugins=[{A2C}]", "agent=a2c"])
