"""Hand-coded subgoal shaping on MiniHack KeyRoom (`reward=keyroom_oracle`): the upper-bound arm.

The same payment rule as the LLM subgoal reward (beta per subgoal, first completion per
episode, `rl_aux.llm.table.rollout_aux_rewards`), but the subgoals are read exactly from the
observations: a key entered the inventory, a closed door opened, the agent stepped onto the
down staircase. Comparing `reward=subgoal|ellm` against it separates label quality from the
value of shaping itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from rl_aux.llm.caption import (
    BL_X,
    BL_Y,
    CLOSED_DOORS,
    DOWN_STAIRS,
    changed_cells,
    env_net_change,
    move_step,
    rows_differ,
)
from rl_aux.rewards.base import RewardModule, aux_rewards, register_reward
from rl_aux.typed_config import spec

SOURCE = "oracle"
LABELS = ("key", "door", "stairs")
NEEDS = ("glyphs", "blstats", "inv_strs")  # host arrays the labeller reads


def keys_held(inv_strs: np.ndarray) -> np.ndarray:
    """[E] number of inventory rows that name a key (NLE's inv_strs: [E, 55, 80] uint8)."""
    rows = np.asarray(inv_strs, np.uint8)
    e, n, w = rows.shape
    # NUL-padded byte strings
    text: np.ndarray[Any, np.dtype[np.bytes_]] = rows.reshape(e * n, w).view(f"S{w}").ravel()
    return np.char.find(np.char.lower(text), b"key").reshape(e, n).__ge__(0).sum(1)


def keyroom_labels(prev: Mapping, actions: Sequence[str], nxt: Mapping) -> np.ndarray:
    """[E, 3] bool (key, door, stairs) for a batch of transitions prev[e] --actions[e]--> nxt[e].

    Runs every vector step on the acting thread, so the work is on what changed: the inventory
    text of envs whose inventory changed, the map cells whose glyph changed.
    """
    g0 = np.asarray(prev["glyphs"])
    n, h, w = g0.shape
    inv0, inv1 = np.asarray(prev["inv_strs"]), np.asarray(nxt["inv_strs"])
    key = np.zeros(n, bool)
    changed = np.flatnonzero(rows_differ(inv0, inv1))
    if changed.size:
        key[changed] = keys_held(inv1[changed]) > keys_held(inv0[changed])
    game_over = ~np.asarray(nxt["blstats"]).any(axis=1)  # NLE's end screen, stats zero
    env, c0, c1 = changed_cells(g0, nxt["glyphs"])
    door = (env_net_change(env, c0, c1, CLOSED_DOORS, n) < 0) & ~game_over
    # stairs: the move's target cell held the down staircase (the agent hides what it stands
    # on, and the winning step shows NLE's end screen, so only `prev` knows)
    step = np.array([move_step(a) or (0, 0) for a in actions], np.int64).reshape(n, 2)
    bl = np.asarray(prev["blstats"])
    x, y = bl[:, BL_X] + step[:, 0], bl[:, BL_Y] + step[:, 1]
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h) & step.any(axis=1)
    target = g0.reshape(n, -1)[np.arange(n), np.where(inside, y * w + x, 0)]
    stairs = inside & (target == DOWN_STAIRS)
    return np.stack([key, door, stairs], -1)


class KeyRoomOracleSource:
    """Host reward source for `agents.host_loop.HostPPO`: ids = label bitmask, fixed table."""

    name = SOURCE
    host_keys = NEEDS

    def __init__(self, beta: float, num_envs: int, action_names: Sequence[str]):
        from rl_aux.llm.table import rollout_aux_rewards

        self._lookup = rollout_aux_rewards
        bits = np.arange(8)[:, None] >> np.arange(3)[None] & 1
        self.table = jnp.asarray(bits, jnp.float32)  # [8 masks, 3 subgoals]
        self.beta = jnp.asarray(beta, jnp.float32)
        self.num_envs, self.action_names = num_envs, list(action_names)
        self.reset()

    def reset(self) -> None:
        self.achieved = jnp.zeros((self.num_envs, len(LABELS)), bool)

    def current_table(self):
        """The fixed [8 label masks, 3 subgoals] table (DQN looks rewards up at sampling time)."""
        return self.table

    def step_ids(
        self, prev: Mapping, actions: Sequence[int] | np.ndarray, nxt: Mapping
    ) -> np.ndarray:
        lab = keyroom_labels(prev, [self.action_names[int(a)] for a in actions], nxt)
        return (lab * (1 << np.arange(3))).sum(-1).astype(np.int32)

    def rollout_rewards(self, ids: np.ndarray, dones: np.ndarray) -> np.ndarray:
        r, self.achieved = self._lookup(
            self.table, jnp.asarray(ids), jnp.asarray(dones), self.achieved, self.beta
        )
        return np.asarray(r)

    def metrics(self) -> dict:
        return {}

    def close(self) -> None:
        pass


@dataclasses.dataclass(frozen=True)
class KeyRoomOracleConfig:
    # bonus per subgoal, first completion per episode; read on the host (KeyRoomOracleSource)
    beta: float = spec(0.1, ge=0.0, grid=False)


@register_reward("keyroom_oracle")
class KeyRoomOracleReward(RewardModule):
    """r = r_ext + r_aux/oracle (naive shaping with exact labels; the bonus is beta-scaled)."""

    Config = KeyRoomOracleConfig

    def reward(self, params, tr):
        r_aux = aux_rewards(tr, (SOURCE,))[..., 0]
        return jnp.asarray(tr.reward, float) + r_aux, jnp.asarray(self.gamma, float)
