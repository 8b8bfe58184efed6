"""Frame-deduplicated replay for stacked-frame observations (Atari): each frame stored once.

An observation is a stack of the last `S` frames [H, W, S] (uint8; frames before the episode
start are zeros, as ale-py and gymnasium's `FrameStackObservation(padding_type="zero")` pad).
The buffer keeps only the newest frame of each step's observation, [rows, N, H, W], and
rebuilds stacks at sample time from the previous rows of the same env, masking every frame
from before the episode's first step, so two episodes never mix. The final frame of an
episode (the successor of its last action, never an observation the agent acts on) goes to a
small ring of `final_slots`; a transition whose final frame was overwritten there (more than
`final_slots` episode ends in the buffer) is sampled with its bootstrap cut (discount 0).

Same interface as rl_aux/replay.py: rows are vector steps, n-step returns stop at episode
ends, `pos` and `size` are equal across vmapped seeds. Bytes per transition:
H*W*(1 + 1/final_ratio) + ~15 (action, reward, flags, ring index).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
from flax import struct

from rl_aux.nstep import nstep_return
from rl_aux.types import Struct, Transition


@struct.dataclass
class FrameReplayState(Struct):
    frames: jax.Array  # [C, N, H, W] uint8: newest frame of the observation of each step
    first: jax.Array  # [C, N] the step's observation is its episode's first
    action: jax.Array  # [C, N]
    reward: jax.Array  # [C, N]
    terminated: jax.Array  # [C, N]
    truncated: jax.Array  # [C, N]
    final_slot: jax.Array  # [C, N] ring slot of the episode's final frame (done steps)
    row_id: jax.Array  # [C] absolute index of the row written there
    final: jax.Array  # [K, H, W] uint8 ring of final frames
    final_owner: jax.Array  # [K] absolute transition id (row_id * N + env) owning the slot
    final_pos: jax.Array  # next ring slot (per seed: episode ends differ)
    prev_done: jax.Array  # [N] the last added step ended its episode
    pos: jax.Array  # next row to write
    size: jax.Array  # rows filled
    count: jax.Array  # rows ever written
    num_frames: int = struct.field(pytree_node=False, default=4)  # frames per stack


def frame_replay_init(example: Transition, capacity_rows: int, final_ratio: int = 16):
    """Empty buffer for transitions like `example` (obs [N, H, W, S] uint8)."""
    n, h, w, s = example.obs.shape
    chex.assert_type(example.obs, jnp.uint8)
    if capacity_rows <= s:
        raise ValueError(f"frame replay needs more than {s} rows, got {capacity_rows}")
    c = capacity_rows
    k = max(1, (c * n) // final_ratio)
    z = lambda shape, dt: jnp.zeros(shape, dt)
    return FrameReplayState(
        frames=z((c, n, h, w), jnp.uint8),
        first=z((c, n), bool),
        action=z((c, n), example.action.dtype),
        reward=z((c, n), jnp.float32),
        terminated=z((c, n), bool),
        truncated=z((c, n), bool),
        final_slot=z((c, n), jnp.int32),
        row_id=jnp.full((c,), -1, jnp.int32),
        final=z((k, h, w), jnp.uint8),
        final_owner=jnp.full((k,), -1, jnp.int32),
        final_pos=z((), jnp.int32),
        prev_done=jnp.ones((n,), bool),
        pos=z((), jnp.int32),
        size=z((), jnp.int32),
        count=z((), jnp.int32),
        num_frames=s,
    )


def frame_replay_add(state: FrameReplayState, tr: Transition) -> FrameReplayState:
    """Write one vector step: the newest obs frame, and the final frame where it ended."""
    cap, n = state.first.shape
    k = state.final.shape[0]
    done = jnp.logical_or(tr.terminated, tr.truncated)
    slot = (state.final_pos + jnp.cumsum(done) - 1) % k
    write = jnp.where(done, slot, k)  # k: out of range, dropped
    ids = state.count * n + jnp.arange(n, dtype=jnp.int32)
    p = state.pos
    return state.replace(
        frames=state.frames.at[p].set(tr.obs[..., -1]),
        first=state.first.at[p].set(state.prev_done),
        action=state.action.at[p].set(tr.action),
        reward=state.reward.at[p].set(tr.reward.astype(jnp.float32)),
        terminated=state.terminated.at[p].set(tr.terminated),
        truncated=state.truncated.at[p].set(tr.truncated),
        final_slot=state.final_slot.at[p].set(slot.astype(jnp.int32)),
        row_id=state.row_id.at[p].set(state.count),
        final=state.final.at[write].set(tr.next_obs[..., -1], mode="drop"),
        final_owner=state.final_owner.at[write].set(ids, mode="drop"),
        final_pos=(state.final_pos + done.sum()) % k,
        prev_done=done,
        pos=(p + 1) % cap,
        size=jnp.minimum(state.size + 1, cap),
        count=state.count + 1,
    )


def stack_at(state: FrameReplayState, row: jax.Array, env: jax.Array, num_frames: int):
    """The observation of (row, env) [B, H, W, S]: frames of earlier rows of the same
    episode, zeros before its first step."""
    cap = state.first.shape[0]
    d = jnp.arange(num_frames - 1, -1, -1)  # offsets, oldest first
    rows = (row[:, None] - d[None, :]) % cap  # [B, S]
    first = state.first[rows, env[:, None]]  # [B, S]
    # frame at offset d is in the episode iff no first step lies at offsets < d
    starts_after = jnp.cumsum(first[:, ::-1], 1)[:, ::-1] - first  # firsts at offsets < d
    keep = starts_after == 0
    frames = state.frames[rows, env[:, None]]  # [B, S, H, W]
    frames = jnp.where(keep[:, :, None, None], frames, 0)
    return jnp.moveaxis(frames, 1, -1)


def frame_replay_sample(
    state: FrameReplayState, key: chex.PRNGKey, batch_size: int, n_step: int, gamma: float
) -> tuple[Transition, jax.Array]:
    """`batch_size` n-step transitions, uniform over (row, env), stacks rebuilt.

    As rl_aux.replay.replay_sample: (transition with the n-step return as reward and the
    bootstrap observation as next_obs, discount = gamma^m * (1 - terminated))."""
    cap, num_envs = state.first.shape
    s = state.num_frames
    k_t, k_e = jax.random.split(key)
    # rows need `s - 1` stored predecessors (older rows are overwritten or absent) and a
    # stored successor for the bootstrap stack
    lo = jnp.where(state.size == cap, s - 1, 0)
    hi = jnp.maximum(state.size - n_step, lo + 1)
    j = jax.random.randint(k_t, (batch_size,), lo, hi)
    env = jax.random.randint(k_e, (batch_size,), 0, num_envs)
    return frame_replay_gather(state, j, env, n_step, gamma)


def frame_replay_gather(state: FrameReplayState, j, env, n_step: int, gamma: float):
    """The n-step transitions starting `j` rows after the oldest stored row, of envs `env`."""
    cap, num_envs = state.first.shape
    s = state.num_frames
    start = (state.pos - state.size) % cap
    rows = (start + j[:, None] + jnp.arange(n_step)[None, :]) % cap  # [B, n]
    get = lambda x: x[rows, env[:, None]]
    ret, last, discount, term_last, trunc_last = nstep_return(
        get(state.reward), get(state.terminated), get(state.truncated), gamma
    )
    last_row = jnp.take_along_axis(rows, last[:, None], 1)[:, 0]
    obs = stack_at(state, rows[:, 0], env, s)
    # bootstrap observation: the next row's stack, or (episode end) the last stack shifted
    # by the final frame from the ring
    cont = stack_at(state, (last_row + 1) % cap, env, s)
    ended = stack_at(state, last_row, env, s)
    slot = state.final_slot[last_row, env]
    owner_ok = state.final_owner[slot] == state.row_id[last_row] * num_envs + env
    final = jnp.where(owner_ok[:, None, None], state.final[slot], 0)
    ended = jnp.concatenate([ended[..., 1:], final[..., None]], -1)
    done_last = jnp.logical_or(term_last, trunc_last)
    next_obs = jnp.where(done_last[:, None, None, None], ended, cont)
    discount = jnp.where(done_last & ~owner_ok, 0.0, discount)
    tr = Transition(
        obs=obs,
        action=state.action[rows[:, 0], env],
        reward=ret,
        terminated=term_last,
        truncated=trunc_last,
        next_obs=next_obs,
    )
    return tr, discount
