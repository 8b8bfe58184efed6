"""Long-memory POMDPs in JAX: passive T-maze, RepeatPrevious, a Concentration-like card game.

Each observation is [task part, one-hot a_{t-1} (+1 slot for "no action yet"), r_{t-1}]
(RepeatPrevious can drop r_{t-1}: the negative control of the future-prediction issue), so a
predictor of the next observation must model the outcome of the action. `spec.obs_parts`
describes the concatenated parts for the `future` head ("cat:n" one-hot, "mse:n" real vector).
The `-noisy` variants add N(0, 0.1^2) noise to every observation entry.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
from flax import struct

from rl_aux.types import EnvSpec

NOISE_STD = 0.1


@struct.dataclass
class MemState:
    inner: dict  # task-specific arrays
    t: jnp.ndarray
    prev_action: jnp.ndarray  # num_actions means "none yet"
    prev_reward: jnp.ndarray


class _MemoryEnv:
    """Shared plumbing: appends a_{t-1}, r_{t-1} and optional noise to the task observation."""

    task_dim: int = 0
    task_part: str = ""
    num_actions: int = 0
    max_steps: int = 0

    def __init__(self, name: str, noisy: bool = False, reward_in_obs: bool = True):
        self.noisy = noisy
        self.reward_in_obs = reward_in_obs
        dim = self.task_dim + self.num_actions + 1 + int(reward_in_obs)
        parts = [self.task_part, f"cat:{self.num_actions + 1}"]
        if reward_in_obs:
            parts.append("mse:1")
        self.obs_parts = ",".join(parts)
        self.spec = EnvSpec(
            name=name,
            obs_shape=(dim,),
            obs_dtype=jnp.float32,
            num_actions=self.num_actions,
            max_episode_steps=self.max_steps,
            obs_parts=self.obs_parts,
        )

    def _obs(self, task_obs, prev_action, prev_reward, key):
        parts = [task_obs, jax.nn.one_hot(prev_action, self.num_actions + 1)]
        if self.reward_in_obs:
            parts.append(prev_reward[None])
        obs = jnp.concatenate(parts).astype(jnp.float32)
        if self.noisy:
            obs = obs + NOISE_STD * jax.random.normal(key, obs.shape)
        return obs

    def reset(self, key):
        k_task, k_noise = jax.random.split(key)
        inner, task_obs = self._task_reset(k_task)
        na = jnp.asarray(self.num_actions, jnp.int32)
        state = MemState(inner, jnp.zeros((), jnp.int32), na, jnp.zeros((), jnp.float32))
        return state, self._obs(task_obs, na, state.prev_reward, k_noise)

    def step(self, key, state: MemState, action):
        k_task, k_noise = jax.random.split(key)
        action = jnp.asarray(action, jnp.int32)
        inner, task_obs, reward, terminated = self._task_step(k_task, state.inner, state.t, action)
        t = state.t + 1
        truncated = jnp.logical_and(t >= self.max_steps, jnp.logical_not(terminated))
        reward = jnp.asarray(reward, jnp.float32)
        obs = self._obs(task_obs, action, reward, k_noise)
        return MemState(inner, t, action, reward), obs, reward, terminated, truncated


class PassiveTMaze(_MemoryEnv):
    """Passive T-maze (Ni et al. 2023, "When do transformers shine in RL?", Example 1).

    The cue (up/down) is shown only at t=0; the agent is carried along a corridor of length L
    (actions there do nothing) and at the junction (t=L) picks up (0) or down (1): reward 1 if
    it matches the cue, else 0; the episode then terminates. Success rate = mean return.
    Task part (cat:5): cue-up, cue-down, corridor, junction, end.
    """

    num_actions = 2
    task_dim = 5
    task_part = "cat:5"

    def __init__(self, corridor: int, **kw):
        if corridor < 1:
            raise ValueError(f"T-maze corridor length must be >= 1, got {corridor}")
        self.corridor = corridor
        self.max_steps = corridor + 1
        super().__init__(f"memory/PassiveTMaze-L{corridor}", **kw)

    def _task_reset(self, key):
        cue = jax.random.bernoulli(key).astype(jnp.int32)
        return {"cue": cue}, jax.nn.one_hot(cue, 5)

    def _task_step(self, key, inner, t, action):
        pos = t + 1  # position after this step's move
        at_junction = t == self.corridor
        reward = jnp.where(at_junction, (action == inner["cue"]).astype(jnp.float32), 0.0)
        kind = jnp.where(at_junction, 4, jnp.where(pos == self.corridor, 3, 2))
        return inner, jax.nn.one_hot(kind, 5), reward, at_junction


class RepeatPrevious(_MemoryEnv):
    """POPGym RepeatPrevious (Morad et al. 2023), Easy: output the suit seen `k` steps ago.

    Each step shows a random suit of 4 (cat:4); from step k on, reward +1/(T-k) if the action
    equals the suit shown k steps before, else -1/(T-k); T = 52 steps.
    """

    num_actions = 4
    task_dim = 4
    task_part = "cat:4"
    max_steps = 52

    def __init__(self, k: int = 4, **kw):
        self.k = k
        suffix = "" if kw.get("reward_in_obs", True) else "-noreward"
        super().__init__(f"memory/RepeatPrevious{suffix}", **kw)

    def _task_reset(self, key):
        cards = jax.random.randint(key, (self.max_steps + 1,), 0, 4)
        return {"cards": cards}, jax.nn.one_hot(cards[0], 4)

    def _task_step(self, key, inner, t, action):
        cards = inner["cards"]
        target = cards[jnp.maximum(t - self.k, 0)]
        scale = 1.0 / (self.max_steps - self.k)
        reward = jnp.where(t >= self.k, jnp.where(action == target, scale, -scale), 0.0)
        return inner, jax.nn.one_hot(cards[t + 1], 4), reward, jnp.asarray(False)


class Concentration(_MemoryEnv):
    """A small Concentration game (after POPGym's): 8 face-down cards, 4 pairs.

    Each action flips one card and shows its value (cat:5, the 5th class: "already matched");
    every second flip closes a turn: reward +1 if the two flipped cards form a new pair (they
    are removed), else 0. Terminates when all pairs are found; 40-step limit.
    """

    num_actions = 8
    task_dim = 5
    task_part = "cat:5"
    max_steps = 40

    def __init__(self, **kw):
        super().__init__("memory/Concentration", **kw)

    def _task_reset(self, key):
        cards = jax.random.permutation(key, jnp.arange(8) // 2)
        inner = {"cards": cards, "matched": jnp.zeros(8, bool), "first": jnp.asarray(-1)}
        return inner, jnp.zeros(5)

    def _task_step(self, key, inner, t, action):
        cards, matched, first = inner["cards"], inner["matched"], inner["first"]
        shown = jnp.where(matched[action], 4, cards[action])
        second = first >= 0
        pair = (
            second
            & (first != action)
            & ~matched[action]
            & ~matched[jnp.maximum(first, 0)]
            & (cards[jnp.maximum(first, 0)] == cards[action])
        )
        matched = jnp.where(pair, matched.at[action].set(True).at[first].set(True), matched)
        inner = {"cards": cards, "matched": matched, "first": jnp.where(second, -1, action)}
        return inner, jax.nn.one_hot(shown, 5), pair.astype(jnp.float32), matched.all()


TMAZE_LENGTHS = (10, 30, 100)
NAMES = (
    [f"PassiveTMaze-L{n}" for n in TMAZE_LENGTHS]
    + [f"PassiveTMaze-L{n}-noisy" for n in TMAZE_LENGTHS]
    + ["RepeatPrevious", "RepeatPrevious-noreward", "RepeatPrevious-noisy"]
    + ["Concentration", "Concentration-noisy"]
)


def make_memory_env(task: str) -> _MemoryEnv:
    """`task` is one of NAMES (the part after 'memory/')."""
    noisy = task.endswith("-noisy")
    base = task.removesuffix("-noisy")
    if m := re.fullmatch(r"PassiveTMaze-L(\d+)", base):
        return PassiveTMaze(int(m.group(1)), noisy=noisy)
    if base == "RepeatPrevious":
        return RepeatPrevious(noisy=noisy)
    if base == "RepeatPrevious-noreward":
        return RepeatPrevious(noisy=noisy, reward_in_obs=False)
    if base == "Concentration":
        return Concentration(noisy=noisy)
    raise ValueError(f"memory env {task!r} unknown; accepted: {', '.join(NAMES)}")
