"""A deliberately harmful head: regress fresh i.i.d. N(0, 1) targets (a negative control).

Its gradient carries no information about the task, only noise into the shared torso. On
CartPole PPO its harm goes through gradient-norm clipping rather than through directions that
conflict with the main loss (docs/results/bilevel-and-balancers.md), so projections do not undo it.
"""

from __future__ import annotations

import dataclasses
from typing import cast

import flax.linen as nn
import jax
import jax.numpy as jnp

from rl_aux.heads.base import AuxHead, HeadConfig, HeadInputs, masked_mean, register_head
from rl_aux.typed_config import spec
from rl_aux.types import Array


@dataclasses.dataclass(frozen=True)
class NoiseTargetConfig(HeadConfig):
    dim: int = spec(8, ge=1)
    hidden: int = spec(64, ge=1)
    # iid: fresh N(0, 1) per call (zero-mean gradient noise); random_fn: a fixed random function
    # of the observation, sqrt(2) sin(obs W), W ~ N(0, 1) frozen (a consistent, task-irrelevant
    # target whose gradient keeps its direction across minibatches)
    target: str = spec("iid", choices=("iid", "random_fn"))


class _NoiseModule(nn.Module):
    hidden: int
    dim: int

    @nn.compact
    def __call__(self, x, action=None):
        return nn.Dense(self.dim)(nn.relu(nn.Dense(self.hidden)(x)))


@register_head("noise_target")
class NoiseTarget(AuxHead):
    """Regresses i.i.d. noise targets drawn anew at every loss call (Hsieh et al. 2024 spirit)."""

    Config = NoiseTargetConfig
    cfg: NoiseTargetConfig  # the instance this head was built with (AuxHead.__init__)
    requires = frozenset()

    def module(self) -> nn.Module:
        return _NoiseModule(self.cfg.hidden, self.cfg.dim)

    def loss(self, params, inputs: HeadInputs, key):
        """Squared error to eps ~ N(0, I) independent of the input (pure gradient noise), or to
        a fixed random function of the observation (`target=random_fn`)."""
        pred = cast(Array, self.module().apply(params, self.features(inputs.feats)))
        if self.cfg.target == "iid":
            eps = jax.random.normal(key, pred.shape, pred.dtype)
        else:
            x = inputs.obs.reshape(inputs.obs.shape[: pred.ndim - 1] + (-1,)).astype(pred.dtype)
            w = jax.random.normal(jax.random.PRNGKey(12345), (x.shape[-1], pred.shape[-1]))
            eps = jnp.sqrt(2.0) * jnp.sin(x @ w.astype(pred.dtype))
        return masked_mean(jnp.mean((pred - eps) ** 2, -1), inputs.mask), {}
