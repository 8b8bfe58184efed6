"""DQN's loss columns average over the updates that took a gradient step: empty (NaN) before
`learning_starts`, never diluted by the warm-up's placeholder zeros."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from experiments.compose import load_config
from experiments.train import absent_metrics, build_agent, grid_points, learned_updates, run
from rl_aux.learner import learned_mean
from rl_aux.vectorize import vmapped_chunk, vmapped_init

NUM_ENVS = 10
UPDATES = 60  # 600 env steps
PER_ROW = 20  # updates per metrics row
OVERRIDES = [
    "agent=dqn",
    f"agent.num_envs={NUM_ENVS}",
    "agent.learning_starts=250",  # first gradient step at update 26 (even, >= 25)
    "agent.train_interval=2",
    "agent.buffer_size=1000",
    "agent.batch_size=16",
    f"total_timesteps={UPDATES * NUM_ENVS}",
    f"logger.log_interval={PER_ROW * NUM_ENVS}",
    "num_seeds=1",
    "head=next_latent",
    "logger.progress=false",
]


def test_learned_mean() -> None:
    v = np.array([0.0, 0.0, 2.0, 4.0], np.float32)
    assert learned_mean(v, None) == float(v.mean())
    assert learned_mean(v, np.array([True] * 4)) == float(v.mean())
    assert learned_mean(v, np.array([False, False, True, True])) == 3.0
    assert math.isnan(learned_mean(v, np.zeros(4, bool)))
    # divergence at an update that learned stays visible; a warm-up placeholder does not count
    assert math.isnan(learned_mean(np.array([0.0, np.nan, 1.0]), np.array([False, True, True])))
    assert learned_mean(np.array([np.nan, 1.0]), np.array([False, True])) == 1.0


def test_loss_rows_average_only_updates_that_learned(tmp_path) -> None:
    cfg = load_config([*OVERRIDES, f"run_dir={tmp_path / 'run'}"])
    run(cfg, quiet=True)  # completes: the warm-up's empty losses are not divergence
    df = pd.read_csv(tmp_path / "run" / "metrics.csv")

    # the same runs' per-update metrics, straight from the learner (one 60-update chunk)
    _, agent = build_agent(cfg)
    hps = grid_points(cfg, agent.default_hparams())
    keys = jnp.stack([jax.random.PRNGKey(0)])
    hp = jax.tree.map(lambda x: jnp.full((1,), x, jnp.float32), hps[0])
    init_fn, axes = vmapped_init(agent, keys[0], hps[0])
    _, m = vmapped_chunk(agent, axes, UPDATES)(init_fn(keys, hp))
    m = jax.tree.map(np.asarray, m)
    learned = learned_updates(agent, 1, UPDATES)
    assert learned.sum() == 18 and learned.tolist().index(True) == 25  # update 26
    assert absent_metrics(agent, m, learned[:PER_ROW]) >= {"losses/td", "aux/next_latent/loss"}
    assert absent_metrics(agent, m, learned[PER_ROW:]) == frozenset()

    for c in range(UPDATES // PER_ROW):
        rows = df[df["global_step"] == (c + 1) * PER_ROW * NUM_ENVS]
        part = slice(c * PER_ROW, (c + 1) * PER_ROW)
        for col in ("losses/td", "losses/q_mean", "losses/grad_norm", "aux/next_latent/loss"):
            want = [learned_mean(m[col][0, part], learned[part])]
            if c == 0:  # no gradient step yet: empty, not 0.0
                assert rows[col].isna().all() and all(math.isnan(w) for w in want)
            else:
                mask = learned[part]
                diluted = m[col][0, part].mean()  # what a plain mean of the chunk would give
                np.testing.assert_allclose(rows[col], want, rtol=1e-5)
                assert not np.isclose(rows[col].iloc[0], diluted, rtol=1e-3) or mask.all()
        # metrics every update writes keep their plain chunk mean
        np.testing.assert_allclose(
            rows["charts/epsilon"], m["epsilon"][:, part].mean(-1), rtol=1e-6
        )
