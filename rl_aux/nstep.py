"""n-step returns over sampled windows, shared by the uniform (replay.py) and frame
(frame_replay.py) replays; its own module so replay.py can pick a replay kind without a cycle."""

from __future__ import annotations

import jax.numpy as jnp


def nstep_return(reward, terminated, truncated, gamma: float):
    """n-step return over windows [B, n] that stop at the first episode end.

    Returns (return, index of the last step taken, discount = gamma^m * (1 - terminated) for
    the m steps taken, terminated and truncated of that last step)."""
    batch_size, n_step = reward.shape
    term = terminated.astype(jnp.float32)
    done = jnp.logical_or(terminated, truncated).astype(jnp.float32)
    # alive[k] = no episode end strictly before step k of the window
    alive = jnp.cumprod(jnp.concatenate([jnp.ones((batch_size, 1)), 1.0 - done[:, :-1]], 1), 1)
    disc = gamma ** jnp.arange(n_step, dtype=jnp.float32)
    ret = jnp.sum(alive * disc * reward, 1)
    # the last step taken: first episode end in the window, else n - 1
    last = jnp.where(done.any(1), jnp.argmax(done, 1), n_step - 1)
    m = last + 1
    term_last = jnp.take_along_axis(term, last[:, None], 1)[:, 0]
    discount = (gamma ** m.astype(jnp.float32)) * (1.0 - term_last)
    trunc_last = jnp.take_along_axis(truncated, last[:, None], 1)[:, 0]
    return ret, last, discount, term_last.astype(bool), trunc_last
