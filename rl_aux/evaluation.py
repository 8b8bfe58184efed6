"""Greedy evaluation on fresh envs with an explicit epsilon, jittable and vmappable over seeds."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rl_aux.networks.network import network_initial_carry


def evaluate(agent, env, params, key, epsilon: float, max_steps: int):
    """Return of the first episode of each of env.num_envs fresh envs, acting greedily.

    The agent acts on argmax of its outputs, with probability `epsilon` of a uniform action.
    An episode still running after `max_steps` counts with its partial return. Envs whose
    learning reward differs from the score (Atari's clipped rewards, life-loss terminals)
    report `extras["score"]` and `extras["game_over"]`; the return sums the score until then.
    """
    k_reset, k_run = jax.random.split(key)
    env_state, ts = env.reset(k_reset)
    n = env.num_envs
    carry = network_initial_carry(agent.cfg.network, n)

    def step(c, k):
        env_state, obs, carry, first, ret, alive = c
        k_act, k_env = jax.random.split(k)
        a, carry, _ = agent.act(params, obs, carry, first, k_act, greedy=True, epsilon=epsilon)
        env_state, ts = env.step(env_state, a, k_env)
        score = ts.extras.get("score", ts.reward)
        over = ts.extras.get("game_over", ts.done)
        ret = ret + score * alive
        alive = alive * (1.0 - over.astype(jnp.float32))
        return (env_state, ts.obs, carry, ts.done, ret, alive), None

    init = (env_state, ts.obs, carry, jnp.ones(n, bool), jnp.zeros(n), jnp.ones(n))
    (_, _, _, _, ret, _), _ = jax.lax.scan(step, init, jax.random.split(k_run, max_steps))
    return ret
