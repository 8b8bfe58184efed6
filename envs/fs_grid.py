"""Fang & Stachenfeld's (ICLR 2024) 8x8 open gridworld: find a hidden goal, reward 1 there.

The observation is the one-hot agent cell (64), or with `obs="grid"` their 10x10x1 image (walls
-1 around the 8x8 room, agent +1); the goal is not shown. `shuffle=<seed>` is their `shuffle_obs`:
the image's 100 pixels go through one fixed random permutation, which keeps the information but
removes the spatial layout a conv encoder could exploit (their gridworld figures use it).
The agent starts on a random non-goal cell; actions up/down/left/right (walls block); the
episode terminates at the goal and is truncated after 150 steps. The goal sits at cell
(row, col) = `goal` (default (6, 5)).
Their mid-run goal move (transfer) is a second phase on an env with another `goal`
(experiments/studies/fs_grid_transfer.py), not a counter inside the env: fresh eval envs must
see it too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rl_aux.types import EnvSpec

SIZE = 8
MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], np.int32)  # numpy: no backend start


OBS_KINDS = ("onehot", "grid")


class FSGrid:
    def __init__(
        self,
        goal: tuple[int, int] = (6, 5),
        max_steps: int = 150,
        obs: str = "onehot",
        shuffle: int | None = None,
    ):
        if obs not in OBS_KINDS:
            raise ValueError(f"env.options.obs={obs!r}; accepted: {', '.join(OBS_KINDS)}")
        if shuffle is not None and obs != "grid":
            raise ValueError(
                f"env.options.shuffle={shuffle!r} needs env.options.obs=grid (a permuted one-hot "
                "is only a relabelling); accepted: shuffle=null, or an int seed with obs=grid"
            )
        n_pix = (SIZE + 2) ** 2
        self.perm = None if shuffle is None else np.random.RandomState(shuffle).permutation(n_pix)
        self.goal = jnp.asarray(goal)
        self.max_steps = max_steps
        self.obs_kind = obs
        shape = (SIZE * SIZE,) if obs == "onehot" else (SIZE + 2, SIZE + 2, 1)
        self.spec = EnvSpec("fsgrid/Open8x8", shape, jnp.float32, 4, max_steps)

    def _obs(self, pos):
        if self.obs_kind == "onehot":
            return jax.nn.one_hot(pos[0] * SIZE + pos[1], SIZE * SIZE)
        walls = jnp.pad(jnp.zeros((SIZE, SIZE)), 1, constant_values=-1.0)
        img = walls.at[pos[0] + 1, pos[1] + 1].set(1.0)
        if self.perm is not None:  # their shuffle_obs: permute the flat image, same shape
            img = img.reshape(-1)[self.perm].reshape(img.shape)
        return img[..., None]

    def cell_obs(self) -> jax.Array:
        """The observation of every cell, row-major: [64, *obs_shape] (exact evaluation)."""
        cells = jnp.arange(SIZE * SIZE)
        return jax.vmap(self._obs)(jnp.stack([cells // SIZE, cells % SIZE], -1))

    def reset(self, key):
        goal_cell = self.goal[0] * SIZE + self.goal[1]
        cell = jax.random.randint(key, (), 0, SIZE * SIZE - 1)
        cell = jnp.where(cell >= goal_cell, cell + 1, cell)  # never start on the goal
        pos = jnp.stack([cell // SIZE, cell % SIZE])
        return {"pos": pos, "t": jnp.zeros((), jnp.int32)}, self._obs(pos)

    def step(self, key, state, action):
        pos = jnp.clip(state["pos"] + jnp.asarray(MOVES)[action], 0, SIZE - 1)
        at_goal = jnp.all(pos == self.goal)
        t = state["t"] + 1
        truncated = jnp.logical_and(t >= self.max_steps, ~at_goal)
        return {"pos": pos, "t": t}, self._obs(pos), at_goal.astype(jnp.float32), at_goal, truncated
