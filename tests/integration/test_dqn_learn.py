"""DQN._learn draws every gradient step's batch before its loop (no replay copy through the
loop) and returns only the fields it changes: same numbers as the plain per-step loop."""

import jax
import numpy as np
import optax

from experiments.compose import load_config
from experiments.train import build_agent
from rl_aux.balancers import balanced_grads
from rl_aux.types import Transition


def _reference_learn(agent, state):
    """The straightforward loop: split the key, sample, gradient, Adam; one step at a time."""
    cfg = agent.cfg
    key = jax.random.split(state.key)[1]
    params, opt_state, bal_state = state.params, state.opt_state, state.bal_state
    for _ in range(cfg.gradient_steps):
        key, k_s, k_l = jax.random.split(key, 3)
        tr, discount = agent._replay_sample(state.replay, k_s, cfg.batch_size, cfg.n_step, 0.99)
        fn = lambda p: agent._losses(p, state.target_params, None, tr, discount, state.hparams, k_l)
        grads, bal_state, _ = balanced_grads(fn, params, agent.balancer, bal_state)
        updates, opt_state = agent.tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
    return params


def _fill(replay, obs, add, rows=60):
    """`rows` vector steps of random transitions, some of them episode ends."""

    def step(r, k):
        k1, k2, k3 = jax.random.split(k, 3)
        o = jax.random.normal(k1, obs.shape)
        a = jax.random.randint(k2, obs.shape[:1], 0, 2)
        done = jax.random.uniform(k3, obs.shape[:1]) < 0.1
        return add(
            r,
            Transition(
                obs=o,
                action=a,
                reward=o[:, 0],
                terminated=done,
                truncated=done & False,
                next_obs=-o,
            ),
        ), None

    return jax.lax.scan(step, replay, jax.random.split(jax.random.PRNGKey(1), rows))[0]


def test_dqn_learn_matches_plain_loop():
    over = ["agent=dqn", "env=gymnax/CartPole-v1", "agent.num_envs=4", "agent.gradient_steps=2",
            "agent.learning_starts=0", "agent.buffer_size=400", "agent.batch_size=16",
            "agent.n_step=2", "agent.double_q=true"]  # fmt: skip
    _, agent = build_agent(load_config(over))
    state = agent.init(jax.random.PRNGKey(0), agent.default_hparams())
    state = state.replace(
        replay=jax.jit(_fill, static_argnums=2)(state.replay, state.obs, agent._replay_add)
    )
    new, _ = jax.jit(agent._learn)(state)
    ref = jax.jit(lambda s: _reference_learn(agent, s))(state)
    for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    moved = jax.tree.leaves(jax.tree.map(lambda a, b: np.abs(a - b).max(), ref, state.params))
    assert max(moved) > 0  # the reference really learned
    assert int(new.grad_steps) == int(state.grad_steps) + 2
