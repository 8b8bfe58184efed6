"""Latent next-state prediction with negative sampling (Fang & Stachenfeld, ICLR 2024).

A transition model T(z, a) predicts the next latent; the target is the online (not stopped)
z_{t+1}, plus gamma_pred * sg(T(z_{t+1}, a_{t+1})) for a multi-step, successor-like horizon.
Two negative-sampling terms, exp(-temp * ||z_i - z_j||) over batch-shuffled pairs and over
temporal neighbours, keep the latents apart; without them the latents collapse.
"""

from __future__ import annotations

import dataclasses
from typing import cast

import flax.linen as nn
import jax
import jax.numpy as jnp

from rl_aux.heads.base import AuxHead, HeadConfig, HeadInputs, register_head
from rl_aux.typed_config import spec
from rl_aux.types import Array


@dataclasses.dataclass(frozen=True)
class LatentPredConfig(HeadConfig):
    hidden: int = spec(64, ge=1)  # transition-model width
    gamma_pred: float = spec(0.0, ge=0.0, lt=1.0)  # predictive horizon (0: one step)
    w_pos: float = spec(1e-2, ge=0.0)  # positive (prediction) term
    w_nbr: float = spec(0.1, ge=0.0)  # negative sampling: temporal neighbours
    w_rand: float = spec(0.1, ge=0.0)  # negative sampling: random batch pairs
    temperature: float = spec(5.0, gt=0.0)
    # crar: their residual T(z, a) = z + Dense(act(Dense_hidden(act([z, a])))) with ReLU
    # (chingf/auxrl networks/Modules.py T with yamls/dm.yaml); mlp: Dense(tanh(Dense([z, a])))
    transition: str = spec("mlp", choices=("mlp", "crar"))
    # mean: their mse_loss, averaged over latent dims; sum: the squared norm (1/d of it in theirs)
    pos_reduction: str = spec("sum", choices=("sum", "mean"))


class _Transition(nn.Module):
    hidden: int
    num_actions: int
    kind: str = "mlp"

    @nn.compact
    def __call__(self, z: Array, action: Array) -> Array:
        x = jnp.concatenate([z, jax.nn.one_hot(action, self.num_actions)], -1)
        if self.kind == "crar":  # residual: predicts the change of z
            x = nn.relu(nn.Dense(self.hidden)(nn.relu(x)))
            return z + nn.Dense(z.shape[-1])(x)
        x = nn.tanh(nn.Dense(self.hidden)(x))
        return nn.Dense(z.shape[-1])(x)


def _dist(a: Array, b: Array) -> Array:
    """Euclidean distance with a finite gradient at a == b (identical states do occur)."""
    return jnp.sqrt(jnp.sum((a - b) ** 2, -1) + 1e-8)


def _mean(x: Array, w: Array) -> Array:
    return (x * w).sum() / jnp.maximum(w.sum(), 1.0)


@register_head("latent_pred")
class LatentPrediction(AuxHead):
    """w_pos ||T(z,a) - (z' + g sg(T(z',a')))||^2 + w_nbr L_nbr + w_rand L_rand."""

    Config = LatentPredConfig
    cfg: LatentPredConfig  # the instance this head was built with (AuxHead.__init__)
    requires = frozenset({"next_feats"})

    def module(self) -> nn.Module:
        return _Transition(self.cfg.hidden, self.spec.num_actions, self.cfg.transition)

    def loss(self, params, inputs: HeadInputs, key):
        """Fang & Stachenfeld 2024 (arXiv 2310.06089), losses of chingf/auxrl auxrl/Agent.py."""
        cfg = self.cfg
        z = self.features(inputs.feats)
        z1 = self.features(cast(dict, inputs.next_feats))  # required: never None here
        T = lambda zz, aa: cast(Array, self.module().apply(params, zz, aa))
        w = jnp.ones(inputs.action.shape, jnp.float32)
        if inputs.mask is not None:
            w = w * inputs.mask
        pred = T(z, inputs.action)
        target = z1
        if cfg.gamma_pred > 0:
            alive = 1.0 - inputs.terminated.astype(jnp.float32)
            if inputs.action.ndim == 2:  # [T, B] sequences: the action actually taken next
                a1 = jnp.concatenate([inputs.action[1:], inputs.action[-1:]], 0)
                boot = T(z1, a1)
                done = jnp.logical_or(inputs.terminated, inputs.truncated)
                w = w * jnp.concatenate([(~done[:-1]).astype(jnp.float32), jnp.zeros_like(w[:1])])
            else:  # unordered samples: expectation under the uniform behaviour policy (eps = 1)
                acts = jnp.arange(self.spec.num_actions)
                boot = jax.vmap(lambda a: T(z1, jnp.full(inputs.action.shape, a)))(acts).mean(0)
            target = z1 + cfg.gamma_pred * alive[..., None] * jax.lax.stop_gradient(boot)
        sq = (pred - target) ** 2
        l_pos = _mean(sq.mean(-1) if cfg.pos_reduction == "mean" else sq.sum(-1), w)
        flat = z.reshape(-1, z.shape[-1])
        wf = w.reshape(-1)
        d_rand = _dist(flat, jnp.roll(flat, 1, 0))
        l_rand = _mean(jnp.exp(-cfg.temperature * d_rand), wf * jnp.roll(wf, 1, 0))
        d_nbr = _dist(z, z1)
        l_nbr = _mean(jnp.exp(-cfg.temperature * d_nbr), w)
        total = cfg.w_pos * l_pos + cfg.w_nbr * l_nbr + cfg.w_rand * l_rand
        return total, {"pos": l_pos, "nbr": l_nbr, "rand": l_rand, "z_spread": d_rand.mean()}
