"""The auxiliary-head plugin contract and its registry.

A head is one class (plus an optional config yaml), registered by name:

    @register_head("my_head")
    class MyHead(AuxHead):
        Config = MyHeadConfig                 # frozen dataclass; `weight` is always present
        requires = frozenset({"next_feats"})  # what the learner must put in HeadInputs
        def module(self) -> nn.Module: ...    # flax module; params in params["heads"][name]
        def loss(self, params, inputs, key) -> (scalar, metrics): ...

Learners never import a head: they build `HeadInputs` once for all heads (computing only what
the union of `requires` asks for), sum `weight * loss` or hand per-loss gradients to a balancer.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar, cast

import flax.linen as nn
import jax
from flax import struct

from rl_aux.registry import Registry
from rl_aux.typed_config import spec
from rl_aux.types import Array, EnvSpec, Params, PRNGKey, Struct

# What a head may ask the learner for (beyond obs/action/reward/terminated/truncated/next_obs,
# which every HeadInputs carries).
REQUIREMENTS = frozenset(
    {
        "next_feats",  # online network outputs on next_obs
        "target_feats",  # EMA-target network outputs on obs
        "target_next_feats",  # EMA-target network outputs on next_obs
        "target_head_params",  # EMA copy of this head's own params
    }
)
NEEDS_TARGET = frozenset({"target_feats", "target_next_feats", "target_head_params"})


@dataclasses.dataclass(frozen=True)
class HeadConfig:
    """Fields every head has. Subclass it (frozen dataclass) to add a head's own options."""

    weight: float = spec(1.0, ge=0.0)  # multiplies the loss (vmappable as a hyperparameter)
    features: str = spec("h", choices=("h", "z"))  # h: after the core; z: torso output
    stop_gradient_to_torso: bool = False  # the head trains only itself, never the torso
    target_tau: float = spec(0.01, gt=0.0, le=1.0)  # EMA step of the target, if one is required


@struct.dataclass
class HeadInputs(Struct):
    """Everything a head's loss may read; leading dims are [B] (or [T, B] for sequences).

    `feats`/`next_feats`/`target_*` are dicts of AgentNetwork outputs ('z', 'h', ...);
    fields a head did not require are None.
    """

    obs: Array
    action: Array
    reward: Array
    terminated: Array
    truncated: Array
    next_obs: Array
    feats: dict
    num_actions: int = struct.field(pytree_node=False)
    next_feats: dict | None = None
    target_feats: dict | None = None
    target_next_feats: dict | None = None
    target_head_params: Any = None
    mask: Array | None = None  # 1 for real samples, 0 for padding; None means all real


class AuxHead:
    """Base class of auxiliary heads. Subclasses set `Config`, `requires`, `module`, `loss`."""

    name: ClassVar[str] = ""
    Config: ClassVar[type] = HeadConfig
    requires: ClassVar[frozenset] = frozenset()

    def __init__(self, cfg: HeadConfig, spec: EnvSpec):
        self.cfg = cfg
        self.spec = spec
        unknown = set(self.requires) - REQUIREMENTS
        if unknown:
            raise ValueError(
                f"head {self.name!r} requires {sorted(unknown)}; accepted: {sorted(REQUIREMENTS)}"
            )

    @property
    def needs_target(self) -> bool:
        return bool(set(self.requires) & NEEDS_TARGET)

    def module(self) -> nn.Module:
        raise NotImplementedError

    def features(self, feats: dict) -> Array:
        """The feature array this head reads, stop-gradiented if so configured."""
        x = feats[self.cfg.features]
        return jax.lax.stop_gradient(x) if self.cfg.stop_gradient_to_torso else x

    def init(self, key: PRNGKey, inputs: HeadInputs) -> Params:
        """Default init: the module applied to the head's features with a dummy action."""
        return self.module().init(key, self.features(inputs.feats), inputs.action)

    def loss(self, params: Params, inputs: HeadInputs, key: PRNGKey) -> tuple[Array, dict]:
        raise NotImplementedError


# how a head that lives outside rl_aux/heads' built-ins becomes selectable
PLUGIN_HINT = (
    "A head defined in your own module is registered by importing it: add "
    "plugins=[my_pkg.my_head] or plugins=[path/to/my_head.py] (the example in a checkout: "
    "plugins=[examples/plugins/inverse_dynamics.py]); see docs/add-an-auxiliary-head.md"
)
HEADS: Registry[type[AuxHead]] = Registry("head", "head", "rl-aux describe head", PLUGIN_HINT)


H = TypeVar("H", bound=AuxHead)  # a head class; the decorator returns it as it is


def register_head(name: str):
    """Class decorator: make a head available as `head=<name>` (or `heads.<name>.*`)."""

    def deco(cls: type[H]) -> type[H]:
        if not (dataclasses.is_dataclass(cls.Config) and issubclass(cls.Config, HeadConfig)):
            raise TypeError(f"{cls.__name__}.Config must be a dataclass subclassing HeadConfig")
        cls.name = name
        return cast(type[H], HEADS.register(name)(cls))  # the class itself (Registry.register)

    return deco


def registered_heads() -> list[str]:
    """Names of every registered head (the built-in ones register when rl_aux.heads loads)."""
    return sorted(HEADS.names())


def head_class(name: str) -> type[AuxHead]:
    """The head class registered as `name`; UnknownName (a KeyError) naming the others."""
    return HEADS.get(name)


def flatten_time(inputs: HeadInputs) -> HeadInputs:
    """[T, B, ...] sequence inputs merged to [T*B, ...] for heads whose loss is per transition
    (recurrent learners hand heads sequences); [B] inputs are returned as they are."""
    if inputs.action.ndim < 2:
        return inputs
    merge = lambda x: x.reshape((x.shape[0] * x.shape[1], *x.shape[2:]))
    leaves = {
        f: getattr(inputs, f)
        for f in (
            "obs",
            "action",
            "reward",
            "terminated",
            "truncated",
            "next_obs",
            "feats",
            "next_feats",
            "target_feats",
            "target_next_feats",
            "mask",
        )
    }
    return inputs.replace(**{f: jax.tree.map(merge, v) for f, v in leaves.items()})


def masked_mean(x: Array, mask: Array | None) -> Array:
    """Mean over all elements of x [B, ...], counting only rows where mask [B] is 1."""
    import jax.numpy as jnp

    if mask is None:
        return jnp.mean(x)
    m = mask.reshape(mask.shape + (1,) * (x.ndim - mask.ndim)).astype(x.dtype)
    m = jnp.broadcast_to(m, x.shape)
    return jnp.sum(x * m) / jnp.maximum(jnp.sum(m), 1.0)
