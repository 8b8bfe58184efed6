"""Detached means detached: a part a stop-gradient cuts off trains exactly as if its loss had
weight 0, on PPO and DQN, feed-forward and recurrent (rl_aux/clipping.py).

Under one global clip norm it did not: the head's own gradient enlarged the norm and so shrank
the torso's step (docs/results/detached-heads.md)."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import pytest

from experiments.compose import load_config
from experiments.train import build_agent
from rl_aux.heads.base import registered_heads

PPO = ["agent=ppo", "total_timesteps=4096", "agent.num_envs=4", "agent.num_steps=32"]
DQN = [
    "agent=dqn",
    "total_timesteps=4096",
    "agent.num_envs=4",
    "agent.learning_starts=32",
    "agent.buffer_size=256",
    "agent.batch_size=16",
    "agent.max_grad_norm=0.5",  # the default 10 never binds on CartPole; 0.5 does
]
LEARNERS = {
    "ppo_ff": (PPO, 3),
    "ppo_lstm": ([*PPO, "agent.network.core=lstm"], 3),
    "dqn_ff": (DQN, 24),
}
HEAD_OPTIONS = {"pvn": ["heads.pvn.num_tasks=8", "heads.pvn.tasks_per_module=4"]}


def _pair(overrides: list[str], updates: int, head: str, warn: bool = False):
    """States after `updates` updates from seed 0 with the head's loss weight 1 and 0 (one
    compiled program: the weights are traced hyperparameters), and the agent."""
    cfg = load_config([*overrides, "logger.progress=false"])
    _, agent = build_agent(cfg)
    run = jax.jit(lambda k, h: agent.train_chunk(agent.init(k, h), updates)[0])
    hp = agent.default_hparams()
    states = [
        run(jax.random.PRNGKey(0), {**hp, "aux_weights": {**hp["aux_weights"], head: w}})
        for w in (1.0, 0.0)
    ]
    return (*states, agent)


def _equal(a, b) -> bool:
    return all(
        bool(jnp.array_equal(x, y))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def _matrix() -> list:
    """Every head on every learner; the default suite runs each head once, the learners in
    turn (so every head and every learner is covered), the full cross product under -m slow."""
    out = []
    for i, head in enumerate(registered_heads()):
        for j, learner in enumerate(LEARNERS):
            slow = j != i % len(LEARNERS)
            out.append(pytest.param(learner, head, marks=[pytest.mark.slow] if slow else []))
    return out


@pytest.mark.parametrize("learner,head", _matrix())
def test_detached_head_equals_weight_zero(learner, head):
    base, updates = LEARNERS[learner]
    over = [
        *base,
        f"head={head}",
        f"heads.{head}.stop_gradient_to_torso=true",
        *HEAD_OPTIONS.get(head, []),
    ]
    on, off, _ = _pair(over, updates, head)
    assert _equal(on.params["net"], off.params["net"]), "the head changed the network's update"
    assert not _equal(on.params["heads"], off.params["heads"]), "the head did not train itself"


def test_global_clip_still_couples_a_detached_head_and_warns():
    """The control: the same comparison under agent.clip_scope=global differs (and warns)."""
    over = [
        *PPO,
        "head=next_latent",
        "heads.next_latent.stop_gradient_to_torso=true",
        "agent.clip_scope=global",
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        on, off, _ = _pair(over, 3, "next_latent")
    assert any("detached part still scales" in str(w.message) for w in caught)
    assert not _equal(on.params["net"], off.params["net"])


RL_OUTPUTS = ("head_layers_", "policy", "value", "q")


@pytest.mark.parametrize("learner", list(LEARNERS))
def test_rl_outputs_reading_sg_features_step_as_without_the_head(learner):
    """`rl_reads_sg_features` (DRL2's decoupled mode): the RL layers' first gradient step is the
    same whatever the head's weight (later steps see a torso the head trained, as they should),
    and the torso is trained by the head alone."""
    base, updates = LEARNERS[learner]
    one_step = ["agent.update_epochs=1", "agent.num_minibatches=1"] if "ppo" in learner else []
    steps = 1 if "ppo" in learner else 8  # DQN: 32 learning_starts / 4 envs: one gradient step
    over = [
        *base,
        *one_step,
        "head=reward_pred",
        "agent.network.rl_reads_sg_features=true",
        "agent.network.separate_critic=false",
    ]
    on, off, agent = _pair(over, steps, "reward_pred")
    net_on, net_off = on.params["net"]["params"], off.params["net"]["params"]
    rl = [m for m in net_on if m.startswith(RL_OUTPUTS)]
    assert rl and _equal({m: net_on[m] for m in rl}, {m: net_off[m] for m in rl})
    assert not _equal(net_on["torso"], net_off["torso"]), "the head did not train the torso"
    assert agent.clip_groups.rl_outputs_detached
    assert "ppo" in learner or int(on.grad_steps) == 1
