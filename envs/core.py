"""The Env contract: batched, functional, auto-resetting, with episode statistics.

A `VecEnv` steps `num_envs` environments at once:
    reset(key) -> (state, TimeStep)          step(state, action, key) -> (state, TimeStep)
Every array in the TimeStep has a leading [num_envs] axis. JAX-native single envs (gymnax,
our own) are lifted to this contract by `JaxVecEnv`; host-stepped families (NLE) and XLA
families (Atari) implement it directly.
"""

from __future__ import annotations

from typing import Any, Protocol

import chex
import jax
import jax.numpy as jnp
from flax import struct

from rl_aux.types import EnvSpec, PRNGKey, TimeStep


class VecEnv(Protocol):
    spec: EnvSpec
    num_envs: int

    def reset(self, key: PRNGKey) -> tuple[Any, TimeStep]: ...

    def step(self, state: Any, action: chex.Array, key: PRNGKey) -> tuple[Any, TimeStep]: ...


class SingleEnv(Protocol):
    """A single JAX environment; `JaxVecEnv` vmaps it and adds auto-reset and statistics.

    `step` returns (state, obs, reward, terminated, truncated): `terminated` is a natural end,
    `truncated` a time limit. Neither is merged into the other. Truncation comes only at
    `spec.max_episode_steps` steps: PPO bounds a rollout's truncations by it
    (rl_aux/rl_math.truncations_per_env), so an env that truncates earlier must say so there.
    """

    spec: EnvSpec

    def reset(self, key: PRNGKey) -> tuple[Any, chex.Array]: ...

    def step(self, key: PRNGKey, state: Any, action: chex.Array) -> tuple: ...


@struct.dataclass
class VecState:
    env_state: Any
    obs: chex.Array
    episode_return: chex.Array  # running return of the current episode, [N]
    episode_length: chex.Array  # running length of the current episode, [N]


class JaxVecEnv:
    """`num_envs` copies of a JAX single env, vmapped, with auto-reset and episode stats."""

    def __init__(self, env: SingleEnv, num_envs: int):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.env = env
        self.spec = env.spec
        self.num_envs = num_envs

    def reset(self, key: PRNGKey) -> tuple[VecState, TimeStep]:
        keys = jax.random.split(key, self.num_envs)
        env_state, obs = jax.vmap(self.env.reset)(keys)
        n = self.num_envs
        state = VecState(env_state, obs, jnp.zeros(n, jnp.float32), jnp.zeros(n, jnp.int32))
        ts = TimeStep(
            obs=obs,
            reward=jnp.zeros(n, jnp.float32),
            terminated=jnp.zeros(n, bool),
            truncated=jnp.zeros(n, bool),
            extras=_stats_extras(obs, jnp.zeros(n), jnp.zeros(n, jnp.int32)),
        )
        return state, ts

    def step(self, state: VecState, action: chex.Array, key: PRNGKey) -> tuple[VecState, TimeStep]:
        chex.assert_shape(action, (self.num_envs,))
        k_step, k_reset = jax.random.split(key)
        step_keys = jax.random.split(k_step, self.num_envs)
        reset_keys = jax.random.split(k_reset, self.num_envs)
        env_state, next_obs, reward, term, trunc = jax.vmap(self.env.step)(
            step_keys, state.env_state, action
        )
        reward = reward.astype(jnp.float32)
        trunc = jnp.logical_and(trunc, jnp.logical_not(term))
        done = jnp.logical_or(term, trunc)
        ep_ret = state.episode_return + reward
        ep_len = state.episode_length + 1
        reset_state, reset_obs = jax.vmap(self.env.reset)(reset_keys)
        env_state = _select(done, reset_state, env_state)
        obs = _select(done, reset_obs, next_obs)
        new_state = VecState(
            env_state,
            obs,
            jnp.where(done, 0.0, ep_ret),
            jnp.where(done, 0, ep_len),
        )
        ts = TimeStep(obs, reward, term, trunc, _stats_extras(next_obs, ep_ret, ep_len))
        return new_state, ts


def _stats_extras(next_obs, ep_ret, ep_len) -> dict:
    return {"next_obs": next_obs, "episode_return": ep_ret, "episode_length": ep_len}


def _select(mask: chex.Array, on_true: Any, on_false: Any) -> Any:
    """Per-env `where` over two pytrees whose leaves have a leading [N] axis."""

    def sel(a, b):
        m = mask.reshape(mask.shape + (1,) * (a.ndim - 1))
        return jnp.where(m, a, b)

    return jax.tree.map(sel, on_true, on_false)
