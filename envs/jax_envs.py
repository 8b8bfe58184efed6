"""gymnax adapter: CartPole-v1, Acrobot-v1, the MinAtar games... as `SingleEnv`s."""

from __future__ import annotations

import jax.numpy as jnp

from rl_aux.types import EnvSpec

GYMNAX_DISCRETE = (
    "CartPole-v1",
    "Acrobot-v1",
    "MountainCar-v0",
    "Asterix-MinAtar",
    "Breakout-MinAtar",
    "Freeway-MinAtar",
    "SpaceInvaders-MinAtar",
    "Catch-bsuite",
    "DeepSea-bsuite",
    "MemoryChain-bsuite",
    "UmbrellaChain-bsuite",
)


class GymnaxEnv:
    """One gymnax environment with natural termination and time-limit truncation kept apart."""

    def __init__(self, name: str, **param_overrides):
        import gymnax

        self.name = name
        self._env, params = gymnax.make(name)
        self.params = params.replace(**param_overrides) if param_overrides else params
        space = self._env.observation_space(self.params)
        self.spec = EnvSpec(
            name=f"gymnax/{name}",
            obs_shape=tuple(space.shape),
            obs_dtype=jnp.float32,
            num_actions=int(self._env.action_space(self.params).n),
            max_episode_steps=int(self.params.max_steps_in_episode),
        )

    def reset(self, key):
        obs, state = self._env.reset_env(key, self.params)
        return state, obs.astype(jnp.float32)

    def step(self, key, state, action):
        obs, state, reward, terminated, _ = self._env.step_env(key, state, action, self.params)
        truncated = self._env.is_truncated(state, self.params)
        return state, obs.astype(jnp.float32), reward, terminated, truncated
