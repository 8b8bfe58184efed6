"""BARFI's gridworld, discretised: 7x7, start and goal in opposite corners (Gupta et al. 2023).

+100 on reaching the goal (terminal), -0.1 per step, 50-step horizon, 10% random actions.
Two auxiliary rewards, functions of the state the action is taken in:
- "centre" (misaligned): +5 per step inside the central 3x3;
- "distance" (helpful): -0.1 x Manhattan distance to the goal.
Observations are one-hot cells, so linear features of them are tabular.
`barfi/grid-centre` and `barfi/grid-distance` (`BarfiVecEnv`) publish the auxiliary reward as
`extras["r_aux/<kind>"]` for the learners' reward modules (`reward=blend`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import JaxVecEnv, VecState
from rl_aux.types import EnvSpec, TimeStep

MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], np.int32)  # up, down, left, right
AUX_KINDS = ("centre", "distance")


@struct.dataclass
class GridState:
    pos: jax.Array  # [2] row, col
    t: jax.Array


class BarfiGrid:
    """A `SingleEnv`; `aux_reward(kind, pos)` gives the auxiliary rewards for wrappers/learners."""

    def __init__(
        self,
        size: int = 7,
        horizon: int = 50,
        slip: float = 0.1,
        goal_reward: float = 100.0,
        step_cost: float = 0.1,
    ):
        self.size, self.horizon, self.slip = size, horizon, slip
        self.goal_reward, self.step_cost = goal_reward, step_cost
        self.goal = jnp.array([size - 1, size - 1])
        self.spec = EnvSpec(
            name=f"barfi/Grid{size}x{size}",
            obs_shape=(size * size,),
            obs_dtype=jnp.float32,
            num_actions=4,
            max_episode_steps=horizon,
        )

    def cell(self, pos: jax.Array) -> jax.Array:
        return pos[..., 0] * self.size + pos[..., 1]

    def obs(self, pos: jax.Array) -> jax.Array:
        return jax.nn.one_hot(self.cell(pos), self.size * self.size)

    def reset(self, key):
        pos = jnp.zeros(2, jnp.int32)
        return GridState(pos, jnp.zeros((), jnp.int32)), self.obs(pos)

    def step(self, key, state: GridState, action):
        k_slip, k_act = jax.random.split(key)
        rand = jax.random.randint(k_act, (), 0, 4)
        a = jnp.where(jax.random.uniform(k_slip) < self.slip, rand, action)
        pos = jnp.clip(state.pos + jnp.asarray(MOVES)[a], 0, self.size - 1)
        at_goal = jnp.all(pos == self.goal)
        reward = jnp.where(at_goal, self.goal_reward, 0.0) - self.step_cost
        t = state.t + 1
        truncated = jnp.logical_and(t >= self.horizon, jnp.logical_not(at_goal))
        return GridState(pos, t), self.obs(pos), reward, at_goal, truncated

    def aux_reward(self, kind: str, pos: jax.Array) -> jax.Array:
        """The auxiliary reward `kind` for acting in cell `pos` ([..., 2])."""
        if kind == "centre":
            lo, hi = self.size // 2 - 1, self.size // 2 + 1
            inside = jnp.all((pos >= lo) & (pos <= hi), axis=-1)
            return jnp.where(inside, 5.0, 0.0)
        if kind == "distance":
            return -0.1 * jnp.sum(jnp.abs(self.goal - pos), axis=-1).astype(jnp.float32)
        raise ValueError(f"aux reward kind={kind!r}; accepted: {', '.join(AUX_KINDS)}")


class BarfiVecEnv(JaxVecEnv):
    """`num_envs` BARFI grids that publish their auxiliary reward and goal success.

    `TimeStep.extras["r_aux/<aux>"]` is the auxiliary reward of the cell the action was taken
    in (what reward modules read, rl_aux/rewards/base.py); `extras["success"]` is 1 where the
    step reached the goal (an episode's success is its `terminated`).
    """

    def __init__(self, aux: str, num_envs: int):
        if aux not in AUX_KINDS:
            raise ValueError(f"aux reward kind={aux!r}; accepted: {', '.join(AUX_KINDS)}")
        grid = BarfiGrid()
        grid.spec = grid.spec.replace(name=f"barfi/grid-{aux}")
        super().__init__(grid, num_envs)
        self.aux = aux

    def step(self, state: VecState, action, key) -> tuple[VecState, TimeStep]:
        r_aux = self.env.aux_reward(self.aux, state.env_state.pos)  # state acted in
        state, ts = super().step(state, action, key)
        extras = {**ts.extras, f"r_aux/{self.aux}": r_aux, "success": ts.terminated}
        return state, ts.replace(extras=extras)

    def reset(self, key) -> tuple[VecState, TimeStep]:
        state, ts = super().reset(key)
        n = self.num_envs
        extras = {**ts.extras, f"r_aux/{self.aux}": jnp.zeros(n), "success": jnp.zeros(n, bool)}
        return state, ts.replace(extras=extras)
