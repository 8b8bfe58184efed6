"""An example plugin env family: `chain/<N>`, a walk along N states to a rewarding end.

Not a built-in family: it shows that one file outside the library adds an env family, with its
options. Load it with `rl-aux train plugins=[examples/plugins/chain_env.py] env=chain/Chain8`
(and e.g. `env.options.slip=0.2`); docs/development.md lists what else a family can declare.
"""

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from envs.core import JaxVecEnv
from envs.family import EnvFamily, register_env_family
from rl_aux.typed_config import from_dict, spec, to_dict
from rl_aux.types import EnvSpec

LENGTHS = (5, 8, 16)


@dataclasses.dataclass(frozen=True)
class ChainOptions:
    """`env.options` of chain/* envs."""

    slip: float = spec(0.0, ge=0.0, le=1.0)  # probability the move goes the other way


@struct.dataclass
class ChainState:
    pos: jax.Array  # current state, 0 .. n-1
    t: jax.Array  # steps so far


class Chain:
    """A `SingleEnv`: start at 0; action 1 moves right, 0 left; +1 and the end at state n-1,
    -0.01 per step otherwise; observations are one-hot states; horizon 4n steps."""

    def __init__(self, n: int, slip: float = 0.0):
        self.n, self.slip, self.horizon = n, slip, 4 * n
        self.spec = EnvSpec(
            name=f"chain/Chain{n}",
            obs_shape=(n,),
            obs_dtype=jnp.float32,
            num_actions=2,
            max_episode_steps=self.horizon,
            obs_parts=f"cat:{n}",
        )

    def reset(self, key):
        pos = jnp.zeros((), jnp.int32)
        return ChainState(pos, jnp.zeros((), jnp.int32)), jax.nn.one_hot(pos, self.n)

    def step(self, key, state: ChainState, action):
        move = jnp.where(action == 1, 1, -1)
        move = jnp.where(jax.random.uniform(key) < self.slip, -move, move)
        pos = jnp.clip(state.pos + move, 0, self.n - 1)
        at_end = pos == self.n - 1
        reward = jnp.where(at_end, 1.0, -0.01)
        t = state.t + 1
        truncated = jnp.logical_and(t >= self.horizon, jnp.logical_not(at_end))
        return ChainState(pos, t), jax.nn.one_hot(pos, self.n), reward, at_end, truncated


@register_env_family("chain")
class ChainFamily(EnvFamily):
    note = "n-state chain walk (example plugin)"
    takes_options = True

    def tasks(self) -> list[str]:
        return [f"Chain{n}" for n in LENGTHS]

    def make(self, task, num_envs, options, seed):
        opts = from_dict(ChainOptions, dict(options or {}), "env.options")
        return JaxVecEnv(Chain(int(task.removeprefix("Chain")), opts.slip), num_envs)

    def default_options(self, task: str) -> dict:
        return to_dict(ChainOptions())

    def options_class(self) -> type:
        return ChainOptions

    def check_options(self, task: str, options: dict | None) -> None:
        from_dict(ChainOptions, dict(options or {}), "env.options")  # ConfigError naming it
