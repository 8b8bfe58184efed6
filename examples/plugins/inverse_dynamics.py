"""An example plugin head: inverse dynamics (docs/add-an-auxiliary-head.md shows it verbatim).

Not a built-in head: it shows that one file outside the library adds a head. Load it with
`PYTHONPATH=. rl-aux train plugins=[examples.plugins.inverse_dynamics] head=inverse_dynamics`.
"""

import dataclasses

import flax.linen as nn
import jax.numpy as jnp
import optax

from rl_aux.heads import AuxHead, HeadConfig, HeadInputs, register_head
from rl_aux.heads.base import masked_mean
from rl_aux.typed_config import spec


@dataclasses.dataclass(frozen=True)
class InverseDynamicsConfig(HeadConfig):
    hidden: int = spec(64, ge=1)


class InverseDynamicsModule(nn.Module):
    hidden: int
    num_actions: int

    @nn.compact
    def __call__(self, z, z_next):
        x = jnp.concatenate([z, z_next], axis=-1)
        return nn.Dense(self.num_actions)(nn.relu(nn.Dense(self.hidden)(x)))


@register_head("inverse_dynamics")
class InverseDynamics(AuxHead):
    """Predicts a_t from features of (o_t, o_{t+1}) (Pathak et al. 2017, Sec. 2.2)."""

    Config = InverseDynamicsConfig
    requires = frozenset({"next_feats"})  # the learner also computes features of next_obs

    def module(self) -> nn.Module:
        return InverseDynamicsModule(self.cfg.hidden, self.spec.num_actions)

    def init(self, key, inputs: HeadInputs):
        z = self.features(inputs.feats)
        return self.module().init(key, z, z)

    def loss(self, params, inputs: HeadInputs, key):
        """Inverse model, Pathak et al. 2017 Eq. 2: cross-entropy of the taken action."""
        z, z_next = self.features(inputs.feats), self.features(inputs.next_feats)
        logits = self.module().apply(params, z, z_next)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, inputs.action)
        acc = (jnp.argmax(logits, -1) == inputs.action).astype(jnp.float32)
        return masked_mean(ce, inputs.mask), {"accuracy": masked_mean(acc, inputs.mask)}
