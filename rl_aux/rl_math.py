"""Return estimators shared by learners: GAE and n-step targets, termination != truncation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp

from rl_aux.types import Array


def gae(
    reward: Array,
    value: Array,
    next_value: Array,
    terminated: Array,
    done: Array,
    gamma: float | Array,
    lam: float,
) -> tuple[Array, Array]:
    """GAE over time-major [T, N] arrays (Schulman et al. 2016, Eq. 16).

    `next_value[t]` is V of the true successor of step t; `terminated` zeroes the bootstrap,
    `done` (terminated or truncated) stops the advantage from flowing across an episode end.
    Written with `lax.scan` so it stays differentiable in reward and gamma.
    """
    not_term = 1.0 - terminated.astype(jnp.float32)
    not_done = 1.0 - done.astype(jnp.float32)
    delta = reward + gamma * not_term * next_value - value

    def body(carry, x):
        d, nd = x
        adv = d + gamma * lam * nd * carry
        return adv, adv

    _, adv = jax.lax.scan(body, jnp.zeros_like(value[0]), (delta, not_done), reverse=True)
    return adv, adv + value


def truncations_per_env(num_steps: int, max_episode_steps: int | None) -> int:
    """At most how many of `num_steps` consecutive steps of one env can end by the time limit:
    episodes truncate only at `max_episode_steps` (the Env contract), so consecutive truncations
    are that many steps apart. Unknown limit: every step."""
    if not max_episode_steps:
        return num_steps
    return min(num_steps, (num_steps - 1) // max_episode_steps + 1)


def successor_values(
    value: Array,
    last_value: Array,
    truncated: Array,
    successors: Any,
    value_fn: Callable[[Any], Array],
    max_truncations: int,
) -> Array:
    """[T, N] V of each step's true successor for GAE, from the rollout's own values.

    Where step t did not end, its successor is the next step's input, whose value the rollout
    already computed (`value[t + 1]`, `last_value` after the last step); only a time-limit end
    needs V of its final observation, so `value_fn` runs on at most `max_truncations` gathered
    entries per env instead of on all T x N (an ended episode's terminal value is cut by
    `terminated` in `gae`). `successors` is a pytree of [T, N, ...] leaves (the final
    observations, and for a recurrent core the carry after each step); `value_fn` gets it
    gathered, with leaves [K * N, ...].
    """
    chex.assert_equal_shape([value, truncated])
    t, n = value.shape
    following = jnp.concatenate([value[1:], last_value[None]], 0)
    k = max_truncations
    rows = jax.vmap(lambda c: jnp.nonzero(c, size=k, fill_value=0)[0], 1, 1)(truncated)  # [K, N]
    cols = jnp.broadcast_to(jnp.arange(n), (k, n))
    finals = jax.tree.map(lambda x: x[rows, cols].reshape(k * n, *x.shape[2:]), successors)
    v = value_fn(finals).reshape(k, n)
    hit = truncated[rows, cols]  # False where `rows` is only padding
    return following.at[rows, cols].set(jnp.where(hit, v, following[rows, cols]))
