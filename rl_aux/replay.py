"""Device-resident uniform replay for vectorised envs, with n-step sampling.

Rows are vector steps: every array is [capacity_rows, num_envs, ...], so consecutive rows of
one env are consecutive time steps and n-step returns need no extra bookkeeping. Episode ends
inside the n-step window stop the return: a termination drops the bootstrap, a truncation
bootstraps from the true final observation.
"""

from __future__ import annotations

from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp
from flax import struct

from rl_aux.nstep import nstep_return
from rl_aux.types import Transition


@struct.dataclass
class ReplayState:
    data: Transition  # leaves [C, N, ...]
    pos: jax.Array  # next row to write
    size: jax.Array  # rows filled


def replay_init(example: Transition, capacity_rows: int) -> ReplayState:
    """Empty buffer shaped like `example` (leaves [N, ...]); host int64/float64 leaves (NLE's
    numpy observations) get JAX's canonical 32-bit dtype, as they will when written."""
    data = jax.tree.map(
        lambda x: jnp.zeros((capacity_rows,) + x.shape, jax.dtypes.canonicalize_dtype(x.dtype)),
        example,
    )
    return ReplayState(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def replay_add(state: ReplayState, tr: Transition) -> ReplayState:
    cap = jax.tree.leaves(state.data)[0].shape[0]
    data = jax.tree.map(lambda buf, x: buf.at[state.pos].set(x), state.data, tr)
    return ReplayState(data, (state.pos + 1) % cap, jnp.minimum(state.size + 1, cap))


def replay_sample(
    state: ReplayState,
    key: chex.PRNGKey,
    batch_size: int,
    n_step: int,
    gamma: float,
    aux_reward: Callable[[dict], jax.Array] | None = None,
) -> tuple[Transition, jax.Array]:
    """Sample `batch_size` n-step transitions uniformly over (row, env).

    Returns (transition, discount): transition.reward is the n-step return,
    transition.next_obs the bootstrap observation, and `discount` = gamma^m * (1 - terminated)
    for the m <= n steps actually taken, so the target is reward + discount * V(next_obs).
    `aux_reward(extras) -> r` (extras leaves [B, ...] or [B, n, ...]) adds a reward looked up
    at sampling time to each step's before the return is formed (LLM subgoal labels, DQN).
    """
    cap, num_envs = state.data.reward.shape[:2]
    k_t, k_e = jax.random.split(key)
    start = (state.pos - state.size) % cap
    j = jax.random.randint(k_t, (batch_size,), 0, jnp.maximum(state.size - n_step + 1, 1))
    env = jax.random.randint(k_e, (batch_size,), 0, num_envs)
    if n_step == 1:  # one-step transitions: a plain gather (the common DQN case)
        row = (start + j) % cap
        tr = jax.tree.map(lambda x: x[row, env], state.data)
        if aux_reward is not None:
            tr = tr.replace(reward=tr.reward + aux_reward(tr.extras))
        return tr, gamma * (1.0 - tr.terminated.astype(jnp.float32))
    rows = (start + j[:, None] + jnp.arange(n_step)[None, :]) % cap  # [B, n]
    get = lambda x: x[rows, env[:, None]]  # [B, n, ...]
    reward = get(state.data.reward)
    if aux_reward is not None:
        reward = reward + aux_reward(jax.tree.map(get, state.data.extras))
    ret, last, discount, term_last, trunc_last = nstep_return(
        reward, get(state.data.terminated), get(state.data.truncated), gamma
    )
    last_row = jnp.take_along_axis(rows, last[:, None], 1)[:, 0]
    first = lambda x: x[rows[:, 0], env]
    tr = Transition(
        obs=first(state.data.obs),
        action=first(state.data.action),
        reward=ret,
        terminated=term_last,
        truncated=trunc_last,
        next_obs=state.data.next_obs[last_row, env],
    )
    return tr, discount


def replay_functions(kind: str):
    """(init, add, sample) of a replay kind: 'uniform' (this module) or 'frames'
    (rl_aux/frame_replay.py: stacked uint8 frames stored once, for Atari)."""
    if kind == "uniform":
        return replay_init, replay_add, replay_sample
    if kind == "frames":
        from rl_aux.frame_replay import frame_replay_add, frame_replay_init, frame_replay_sample

        return frame_replay_init, frame_replay_add, frame_replay_sample
    raise ValueError(f"replay={kind!r}; accepted: uniform, frames")
