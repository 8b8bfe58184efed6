"""Return estimators shared by learners: GAE and n-step targets, termination != truncation."""

from __future__ import annotations

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
