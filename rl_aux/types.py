"""Pytrees shared by envs, networks, heads and learners (flax.struct dataclasses)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

import chex
import jax
import jax.numpy as jnp
from flax import struct

Array = jax.Array  # inside jit every array is one (chex.Array also admits numpy scalars)
PRNGKey = chex.PRNGKey
Params = Any

if TYPE_CHECKING:

    class Struct:
        """What a type checker sees of a `flax.struct.dataclass`: the `replace` flax adds."""

        def replace(self, **updates: Any) -> Self:
            """A copy with `updates` (flax's `replace`, i.e. `dataclasses.replace`)."""
            ...

else:
    Struct = object  # at run time a struct's only base, as if it had none


@struct.dataclass
class TimeStep(Struct):
    """What an env returns after `reset` or `step`, batched over envs ([N, ...]).

    `obs` is the observation the agent acts on next (after an auto-reset it is the first
    observation of the new episode). `extras["next_obs"]` is the true successor of the step's
    action (the final observation when the episode ended), so truncated steps can bootstrap.
    `extras["episode_return"]`/`["episode_length"]` hold the finished episode's statistics
    where `done`, and are meaningless elsewhere.
    """

    obs: Array
    reward: Array
    terminated: Array
    truncated: Array
    extras: dict = struct.field(default_factory=dict)

    @property
    def done(self) -> Array:
        return jnp.logical_or(self.terminated, self.truncated)


@struct.dataclass
class EnvSpec(Struct):
    """Static description of an environment family instance (hashable, not traced)."""

    name: str = struct.field(pytree_node=False)
    obs_shape: tuple = struct.field(pytree_node=False)
    obs_dtype: Any = struct.field(pytree_node=False)
    num_actions: int = struct.field(pytree_node=False)
    max_episode_steps: int = struct.field(pytree_node=False)
    # Layout of a flat observation as concatenated parts, e.g. "cat:5,cat:3,mse:1" (one-hot
    # parts, real vectors); "" when the env declares none. Heads read it (heads/future.py), so
    # they never look an env up by name.
    obs_parts: str = struct.field(pytree_node=False, default="")


@struct.dataclass(kw_only=True)
class Transition(Struct):
    """One step of experience, batched: what learners and auxiliary heads consume.

    `next_obs` is the true successor (never an auto-reset observation); `terminated` cuts the
    bootstrap, `truncated` does not. Keyword-only: two bool fields side by side (`terminated`,
    `truncated`) would swap silently if passed by position.
    """

    obs: Array
    action: Array
    reward: Array
    terminated: Array
    truncated: Array
    next_obs: Array
    extras: dict = struct.field(default_factory=dict)

    @property
    def done(self) -> Array:
        return jnp.logical_or(self.terminated, self.truncated)


@struct.dataclass(kw_only=True)
class Rollout(Struct):
    """An on-policy rollout, time-major [T, N]: what `PPO.learn` consumes.

    `first[t]` marks obs[t] as the first of its episode (resets the recurrent core); `logp` and
    `value` are the acting policy's log-probability and value; `next_value` the value that
    bootstraps each step (V of the true successor, or of the next obs when truncation is
    treated as terminal). `ep_return`/`ep_length` hold finished episodes' statistics where
    `tr.done`. `carry_in` is the recurrent carry fed to each step (None for feed-forward
    networks) and `success` ([T, N] bool, optional) whether a finished episode reached its goal.
    """

    tr: Transition
    first: Array
    logp: Array
    value: Array
    ep_return: Array
    ep_length: Array
    next_value: Array | None = None
    carry_in: Any = None
    success: Array | None = None
