"""PPO's entropy coefficient: constant by default, or linear to `agent.ent_coef_end`."""

import jax.numpy as jnp
import pandas as pd
import pytest

from experiments.compose import load_config
from experiments.train import build_agent, run
from rl_aux.typed_config import ConfigError


def _agent(*overrides):
    return build_agent(load_config(["total_timesteps=10240", *overrides]))[1]


def test_constant_by_default():
    agent = _agent("agent.ent_coef=0.02")
    assert agent.cfg.ent_coef_end is None
    for u in (0, 5, agent.total_updates - 1):
        assert float(agent.ent_coef_at(jnp.asarray(u))) == pytest.approx(0.02)


def test_linear_from_start_to_end_over_the_run():
    agent = _agent("agent.ent_coef=0.01", "agent.ent_coef_end=0.0")
    n = agent.total_updates
    assert n > 2
    got = [float(agent.ent_coef_at(jnp.asarray(u))) for u in range(n)]
    assert got[0] == pytest.approx(0.01)
    assert got[-1] == pytest.approx(0.0, abs=1e-9)
    assert got[n // 2] == pytest.approx(0.01 * (1 - (n // 2) / (n - 1)), rel=1e-5)
    assert all(a > b for a, b in zip(got[:-1], got[1:], strict=True))


def test_the_trainer_logs_the_schedule(tmp_path):
    cfg = load_config(
        [
            "total_timesteps=4096",
            "agent.ent_coef_end=0.0",
            "logger.log_interval=512",
            "logger.progress=false",
            f"run_dir={tmp_path}",
        ]
    )
    run(cfg, quiet=True)
    ent = pd.read_csv(tmp_path / "metrics.csv")["charts/ent_coef"].to_numpy()
    assert ent[0] < cfg.agent.ent_coef and ent[-1] < ent[0]


def test_negative_end_names_the_field():
    with pytest.raises(ConfigError, match="agent.ent_coef_end=-0.1"):
        load_config(["agent.ent_coef_end=-0.1"])
