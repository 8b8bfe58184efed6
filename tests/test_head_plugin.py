"""A head defined only in this file trains with PPO and DQN: no library file is edited.

The block between the markers is, verbatim, the example of docs/add-an-auxiliary-head.md.
"""

# --- begin example head ---
import dataclasses

import flax.linen as nn
import jax.numpy as jnp
import optax

from rl_aux.configs import spec
from rl_aux.heads import AuxHead, HeadConfig, HeadInputs, register_head
from rl_aux.heads.base import masked_mean


@dataclasses.dataclass(frozen=True)
class InverseDynamicsConfig(HeadConfig):
    hidden: int = spec(64, ge=1)


class InverseDynamicsModule(nn.Module):
    hidden: int
    num_actions: int

    @nn.compact
    def __call__(self, z, z_next):
        x = jnp.concatenate([z, z_next], axis=-1)
        return nn.Dense(self.num_actions)(nn.relu(nn.Dense(self.hidden)(x)))


@register_head("inverse_dynamics")
class InverseDynamics(AuxHead):
    """Predicts a_t from features of (o_t, o_{t+1}) (Pathak et al. 2017, Sec. 2.2)."""

    Config = InverseDynamicsConfig
    requires = frozenset({"next_feats"})  # the learner also computes features of next_obs

    def module(self) -> nn.Module:
        return InverseDynamicsModule(self.cfg.hidden, self.spec.num_actions)

    def init(self, key, inputs: HeadInputs):
        z = self.features(inputs.feats)
        return self.module().init(key, z, z)

    def loss(self, params, inputs: HeadInputs, key):
        """Inverse model, Pathak et al. 2017 Eq. 2: cross-entropy of the taken action."""
        z, z_next = self.features(inputs.feats), self.features(inputs.next_feats)
        logits = self.module().apply(params, z, z_next)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, inputs.action)
        acc = (jnp.argmax(logits, -1) == inputs.action).astype(jnp.float32)
        return masked_mean(ce, inputs.mask), {"accuracy": masked_mean(acc, inputs.mask)}


# --- end example head ---

import os  # noqa: E402  (the test's own imports come after the example)

import pandas as pd  # noqa: E402
import pytest  # noqa: E402


def _example_source() -> str:
    text = open(__file__).read()
    return text.split("# --- begin example head ---\n")[1].split("# --- end example head ---")[0]


def test_docs_show_exactly_this_head():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    doc = open(os.path.join(root, "docs", "add-an-auxiliary-head.md")).read()
    assert _example_source().strip() in doc


@pytest.mark.parametrize("agent,steps", [("ppo", 40_000), ("dqn", 30_000)])
def test_new_head_trains_with_each_learner(tmp_path, agent, steps):
    from experiments.config import load_config
    from experiments.train import run

    run_dir = str(tmp_path / agent)
    cfg = load_config(
        [
            f"agent={agent}",
            "head=inverse_dynamics",
            "num_seeds=2",
            f"total_timesteps={steps}",
            f"run_dir={run_dir}",
            "agent.num_envs=8",
            "heads.inverse_dynamics.weight=0.5",
            "logger.progress=false",
            *(["agent.learning_starts=2000"] if agent == "dqn" else []),
        ]
    )
    run(cfg, quiet=True)
    df = pd.read_csv(os.path.join(run_dir, "metrics.csv"))
    loss = df["aux/inverse_dynamics/loss"].dropna()
    acc = df["aux/inverse_dynamics/accuracy"].dropna()
    assert len(df["seed"].unique()) == 2
    # CartPole has 2 actions; a learned inverse model beats chance (loss < ln 2 = 0.693).
    assert loss.iloc[-4:].mean() < 0.6, loss.tail()
    assert acc.iloc[-4:].mean() > 0.6, acc.tail()
