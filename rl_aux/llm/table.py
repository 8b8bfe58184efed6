"""The reward table lookup inside jit: r_aux = beta * sum_g table[id, g] * first_completion_g.

`table` is a fixed-shape [N_max, G] float array (an argument, so refills never retrace); the
per-episode `achieved` mask pays each subgoal once per episode (no farming; CALM's bonus on
option termination, Pignatelli et al. 2024, Sec. 3: r~ = r + beta * sum_g tau_g(s, a, s')).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from rl_aux.types import Array


@jax.jit
def rollout_aux_rewards(
    table: Array, caption_ids: Array, dones: Array, achieved: Array, beta: Array
) -> tuple[Array, Array]:
    """[T, E] ids and dones, [E, G] achieved-so-far -> ([T, E] r_aux, [E, G] achieved after).

    A step's subgoals count towards its own episode; `dones[t]` resets the mask after step t.
    """
    chex.assert_rank([table, caption_ids, dones, achieved], [2, 2, 2, 2])
    chex.assert_equal_shape([caption_ids, dones])

    def step(ach, xs):
        ids, done = xs
        vals = table[ids]  # [E, G]
        hit = vals > 0
        new = hit & ~ach
        r = beta * jnp.sum(jnp.where(new, vals, 0.0), -1)
        ach = (ach | hit) & ~done[:, None]
        return ach, r

    achieved, r = jax.lax.scan(step, achieved.astype(bool), (caption_ids, dones.astype(bool)))
    return r, achieved


def sample_aux_rewards(table: Array, ids: Array, prior: Array, beta: Array) -> Array:
    """r_aux of replayed transitions from the table as it is now (late labels count; DQN).

    ids [...] caption ids; prior [..., K] the distinct caption ids seen earlier in the same
    episode (0 = none: row 0 pays 0). A subgoal pays only if no earlier caption of its episode
    achieves it under the current table: the first completion per episode, as in
    `rollout_aux_rewards`.
    """
    chex.assert_rank(table, 2)
    chex.assert_equal_shape_prefix([ids, prior], ids.ndim)
    vals = table[ids]  # [..., G]
    before = (table[prior] > 0).any(-2)  # [..., G]
    new = (vals > 0) & ~before
    return beta * jnp.sum(jnp.where(new, vals, 0.0), -1)
