"""Reward prediction (UNREAL, Jaderberg et al. 2017): classify the sign of the next reward."""

from __future__ import annotations

import dataclasses
from typing import cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from rl_aux.heads.base import AuxHead, HeadConfig, HeadInputs, masked_mean, register_head
from rl_aux.typed_config import spec
from rl_aux.types import Array


@dataclasses.dataclass(frozen=True)
class RewardPredConfig(HeadConfig):
    hidden: int = spec(128, ge=1)
    action_conditional: bool = True  # predict r_t from (features_t, a_t)


class _RewardPredModule(nn.Module):
    hidden: int
    num_actions: int
    action_conditional: bool

    @nn.compact
    def __call__(self, x, action):
        if self.action_conditional:
            x = jnp.concatenate([x, jax.nn.one_hot(action, self.num_actions)], axis=-1)
        x = nn.relu(nn.Dense(self.hidden)(x))
        return nn.Dense(3)(x)  # logits over {negative, zero, positive}


@register_head("reward_pred")
class RewardPrediction(AuxHead):
    """Predicts sign(r_t) in three classes from the features of o_t (and a_t)."""

    Config = RewardPredConfig
    cfg: RewardPredConfig  # the instance this head was built with (AuxHead.__init__)
    requires = frozenset()

    def module(self) -> nn.Module:
        return _RewardPredModule(
            self.cfg.hidden, self.spec.num_actions, self.cfg.action_conditional
        )

    def loss(self, params, inputs: HeadInputs, key):
        """UNREAL reward prediction, Jaderberg et al. 2017 Sec. 3.2: CE over sign(r) classes."""
        logits = cast(
            Array, self.module().apply(params, self.features(inputs.feats), inputs.action)
        )
        label = (jnp.sign(inputs.reward) + 1).astype(jnp.int32)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, label)
        acc = (jnp.argmax(logits, -1) == label).astype(jnp.float32)
        return masked_mean(ce, inputs.mask), {"accuracy": masked_mean(acc, inputs.mask)}
