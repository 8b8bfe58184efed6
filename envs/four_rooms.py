"""Four rooms (Sutton, Precup & Singh 1999): a deterministic 11x11 gridworld of 104 free cells.

A JAX `SingleEnv` for exact checks of successor-measure learners (PVN). Observation: an
[11, 11, 2] float image (walls, agent). Actions: up, right, down, left (a move into a wall
stays). With `goal` >= 0, entering the goal cell gives reward 1 and terminates; with goal -1
(reward-free) episodes only end by the time limit. Starts are uniform over free non-goal cells.
`FourRooms.next_cell` [104, 4] and `cell_obs()` give the exact dynamics for closed-form checks.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rl_aux.types import EnvSpec

LAYOUT = (
    "wwwwwwwwwwwww",
    "w     w     w",
    "w     w     w",
    "w           w",
    "w     w     w",
    "w     w     w",
    "ww wwww     w",
    "w     www www",
    "w     w     w",
    "w     w     w",
    "w           w",
    "w     w     w",
    "wwwwwwwwwwwww",
)
MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))  # up, right, down, left


def _tables():
    grid = np.array([[c == "w" for c in row] for row in LAYOUT])
    inner = grid[1:-1, 1:-1]
    cells = [(r, c) for r in range(1, 12) for c in range(1, 12) if not grid[r, c]]
    index = {rc: i for i, rc in enumerate(cells)}
    nxt = np.zeros((len(cells), 4), np.int32)
    for i, (r, c) in enumerate(cells):
        for a, (dr, dc) in enumerate(MOVES):
            nxt[i, a] = index.get((r + dr, c + dc), i)
    return inner.astype(np.float32), np.array(cells, np.int32) - 1, nxt


WALLS, CELLS, NEXT = _tables()
NUM_CELLS = len(CELLS)  # 104


class FourRooms:
    """One four-rooms env; `goal` is a cell index (may be a traced int) or -1 for none."""

    next_cell = NEXT

    def __init__(self, goal=-1, max_steps: int = 100, obs_table=None):
        self.goal = goal
        self.max_steps = max_steps
        # obs_table [104, ...]: observe table[cell] instead of the image (e.g. frozen features
        # phi(x) computed once per cell, like the paper code's EncoderWrapper)
        self.obs_table = obs_table
        shape = (11, 11, 2) if obs_table is None else tuple(obs_table.shape[1:])
        self.spec = EnvSpec(
            name="four_rooms" if isinstance(goal, int) and goal < 0 else "four_rooms/goal",
            obs_shape=shape,
            obs_dtype=jnp.float32,
            num_actions=4,
            max_episode_steps=max_steps,
        )

    @staticmethod
    def obs_of(cell):
        """[..., 11, 11, 2] observation(s) of cell index(es)."""
        rc = jnp.asarray(CELLS)[cell]
        agent = (
            jax.nn.one_hot(rc[..., 0], 11)[..., :, None]
            * jax.nn.one_hot(rc[..., 1], 11)[..., None, :]
        )
        walls = jnp.broadcast_to(jnp.asarray(WALLS), agent.shape)
        return jnp.stack([walls, agent], -1)

    @staticmethod
    def cell_obs():
        return FourRooms.obs_of(jnp.arange(NUM_CELLS))

    def _obs(self, cell):
        return self.obs_of(cell) if self.obs_table is None else self.obs_table[cell]

    def reset(self, key):
        # uniform over free cells other than the goal
        logits = jnp.where(jnp.arange(NUM_CELLS) == self.goal, -jnp.inf, 0.0)
        cell = jax.random.categorical(key, logits)
        return {"cell": cell, "t": jnp.zeros((), jnp.int32)}, self._obs(cell)

    def step(self, key, state, action):
        cell = jnp.asarray(NEXT)[state["cell"], action]
        t = state["t"] + 1
        hit = cell == self.goal
        state = {"cell": cell, "t": t}
        return state, self._obs(cell), hit.astype(jnp.float32), hit, t >= self.max_steps


def uniform_transition_matrix() -> np.ndarray:
    """P[x, x'] under the uniform-random policy, [104, 104]."""
    P = np.zeros((NUM_CELLS, NUM_CELLS))
    for a in range(4):
        P[np.arange(NUM_CELLS), NEXT[:, a]] += 0.25
    return P


def make_four_rooms(task: str) -> FourRooms:
    """'reward_free' or 'goal<k>' (k = cell index 0..103)."""
    if task == "reward_free":
        return FourRooms(-1)
    if task.startswith("goal") and task[4:].isdigit() and int(task[4:]) < NUM_CELLS:
        return FourRooms(int(task[4:]))
    raise ValueError(f"four_rooms/{task}: accepted tasks are reward_free, goal0..goal103")


FOUR_ROOMS_TASKS = ("reward_free", *(f"goal{k}" for k in range(NUM_CELLS)))
