"""Action-conditional next-latent prediction against a stop-gradient EMA target (SPR/BYOL style)."""

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
class NextLatentConfig(HeadConfig):
    hidden: int = spec(256, ge=1)
    normalize: bool = True  # cosine loss on l2-normalised latents (SPR); else squared error


class _TransitionModel(nn.Module):
    hidden: int
    num_actions: int

    @nn.compact
    def __call__(self, z, action):
        x = jnp.concatenate([z, jax.nn.one_hot(action, self.num_actions)], axis=-1)
        x = nn.relu(nn.Dense(self.hidden)(x))
        return nn.Dense(z.shape[-1])(x)


@register_head("next_latent")
class NextLatentPrediction(AuxHead):
    """T(z_t, a_t) predicts sg(z'_{t+1}), z' from an EMA copy of the network (no collapse)."""

    Config = NextLatentConfig
    cfg: NextLatentConfig  # the instance this head was built with (AuxHead.__init__)
    requires = frozenset({"target_next_feats"})

    def module(self) -> nn.Module:
        return _TransitionModel(self.cfg.hidden, self.spec.num_actions)

    def loss(self, params, inputs: HeadInputs, key):
        """Next-latent prediction, Schwarzer et al. 2021 (SPR) Eq. 4, k=1: cosine to EMA target."""
        pred = cast(Array, self.module().apply(params, self.features(inputs.feats), inputs.action))
        target_feats = cast(dict, inputs.target_next_feats)  # required: never None here
        target = jax.lax.stop_gradient(target_feats[self.cfg.features])
        if self.cfg.normalize:
            pred = pred / (jnp.linalg.norm(pred, axis=-1, keepdims=True) + 1e-6)
            target = target / (jnp.linalg.norm(target, axis=-1, keepdims=True) + 1e-6)
        # next_obs is the true successor (the final observation at an episode end), so every
        # transition has a valid target.
        err = masked_mean(jnp.sum((pred - target) ** 2, axis=-1), inputs.mask)
        return err, {"cosine": 1.0 - 0.5 * err} if self.cfg.normalize else {}
