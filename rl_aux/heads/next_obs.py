"""Next-observation prediction: an MLP on (features, action) regresses the true next obs."""

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
class NextObsConfig(HeadConfig):
    hidden: int = spec(64, ge=1)


class _NextObsModule(nn.Module):
    hidden: int
    num_actions: int
    out_dim: int

    @nn.compact
    def __call__(self, x, action):
        x = jnp.concatenate([x, jax.nn.one_hot(action, self.num_actions)], axis=-1)
        x = nn.relu(nn.Dense(self.hidden)(x))
        return nn.Dense(self.out_dim)(x)


@register_head("next_obs")
class NextObsPrediction(AuxHead):
    """Predicts o_{t+1} (flattened) from features of o_t and a_t; a helpful head on CartPole."""

    Config = NextObsConfig
    cfg: NextObsConfig  # the instance this head was built with (AuxHead.__init__)
    requires = frozenset()

    def module(self) -> nn.Module:
        dim = 1
        for d in self.spec.obs_shape:
            dim *= d
        return _NextObsModule(self.cfg.hidden, self.spec.num_actions, dim)

    def loss(self, params, inputs: HeadInputs, key):
        """Forward-model loss (Jaderberg et al. 2017-style pixel/obs prediction): squared error."""
        pred = cast(Array, self.module().apply(params, self.features(inputs.feats), inputs.action))
        target = inputs.next_obs.reshape(pred.shape).astype(pred.dtype)
        return masked_mean(jnp.mean((pred - target) ** 2, -1), inputs.mask), {}
