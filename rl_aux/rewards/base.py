"""The reward-module plugin contract and its registry.

A reward module turns the environment's (primary) reward plus auxiliary signals into the
reward and discount a learner optimises, and may own parameters with their own outer update:

    @register_reward("my_reward")
    class MyReward(RewardModule):
        Config = MyRewardConfig                      # frozen dataclass
        def init(self, key, spec, feat_dim) -> params
        def reward(self, params, transition) -> (r, gamma)

Auxiliary rewards arrive in `Transition.extras["r_aux/<source>"]` ([B] floats; an env wrapper or
a host-side judge such as an LLM subgoal reward fills them), and the learner's stop-gradient
torso features in `extras["features"]` ([B, F]).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar, cast

import jax
import jax.numpy as jnp

from rl_aux.registry import Registry
from rl_aux.typed_config import REWARD_GRID
from rl_aux.types import Array, EnvSpec, Params, PRNGKey, Transition

AUX_PREFIX = "r_aux/"


def aux_rewards(tr: Transition, sources: tuple[str, ...]) -> Array:
    """[B, S] auxiliary rewards of the named sources, from `extras["r_aux/<source>"]`."""
    missing = [s for s in sources if AUX_PREFIX + s not in tr.extras]
    if missing:
        have = [k for k in tr.extras if k.startswith(AUX_PREFIX)]
        raise KeyError(
            f"reward sources {missing} not in transition extras; present: {have or 'none'}"
        )
    return jnp.stack([jnp.asarray(tr.extras[AUX_PREFIX + s], float) for s in sources], -1)


class RewardModule:
    """Base class: `init` the params, `reward(params, tr) -> (r [B], gamma scalar)`."""

    Config: ClassVar[type]
    name: ClassVar[str] = ""

    def __init__(self, cfg: Any, gamma: float):
        self.cfg = cfg
        self.gamma = gamma  # the learner's own discount (the primary objective's)

    def init(self, key: PRNGKey, spec: EnvSpec, feat_dim: int) -> Params:
        return {}

    def reward(self, params: Params, tr: Transition) -> tuple[Array, Array]:
        raise NotImplementedError

    def penalty(self, params: Params) -> Array:
        """Regulariser added to the outer loss (0 for modules without outer parameters)."""
        return jnp.zeros(())

    @classmethod
    def unread_options(cls, cfg: Any) -> dict[str, str]:
        """{option: why} of the float options `cfg` never reads (e.g. a hypergradient's step
        size when another hypergradient is selected): a grid over them would change nothing,
        so `grid.reward.<option>` refuses them."""
        return {}


REWARDS: Registry[type[RewardModule]] = Registry(
    "reward module",
    "reward",
    "rl-aux describe reward",
    "A reward module in your own file registers when imported: plugins=[path/to/my_reward.py]",
)


R = TypeVar("R", bound=RewardModule)  # a reward class; the decorator returns it as it is


def register_reward(name: str):
    """Class decorator: make a reward module available as `reward=<name>`."""

    def deco(cls: type[R]) -> type[R]:
        if not dataclasses.is_dataclass(getattr(cls, "Config", None)):
            raise TypeError(f"{cls.__name__}.Config must be a frozen dataclass")
        cls.name = name
        return cast(type[R], REWARDS.register(name)(cls))  # the class itself (Registry.register)

    return deco


def reward_at(module: RewardModule, hparams: dict) -> RewardModule:
    """The reward module with the options a grid put in `hparams` (`reward.<opt>`) traced per
    grid point (its config rebuilt with them); `module` itself when there are none, so runs
    without such an axis trace exactly as before."""
    traced = {
        k.removeprefix(REWARD_GRID): v for k, v in hparams.items() if k.startswith(REWARD_GRID)
    }
    if not traced:
        return module
    return type(module)(dataclasses.replace(module.cfg, **traced), module.gamma)


def registered_rewards() -> list[str]:
    """Names of every registered reward module, sorted."""
    return sorted(REWARDS.names())


def reward_class(name: str) -> type[RewardModule]:
    """The reward module registered as `name`; UnknownName (a ValueError) naming the others."""
    return REWARDS.get(name)


@register_reward("env")
class EnvReward(RewardModule):
    """The environment's reward and the learner's discount, unchanged (the default)."""

    @dataclasses.dataclass(frozen=True)
    class Config:
        pass

    def reward(self, params, tr):
        return jnp.asarray(tr.reward, float), jnp.asarray(self.gamma, float)


def stop_features(tr: Transition) -> Array:
    """The transition's features with no gradient to the torso (reward modules never train it)."""
    return jax.lax.stop_gradient(tr.extras["features"])
