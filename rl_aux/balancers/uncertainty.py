"""Uncertainty weighting: each aux loss gets a learned weight exp(-s_i) and a +s_i penalty."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from rl_aux.balancers.core import (
    Balancer,
    BalancerConfig,
    balancer_tx,
    register_balancer,
    stack_combine,
)
from rl_aux.typed_config import spec


@struct.dataclass
class UncertaintyState:
    log_var: jax.Array  # [K] s_i = log sigma_i^2, one per aux head


@dataclasses.dataclass(frozen=True)
class UncertaintyConfig(BalancerConfig):
    """agent.balancer.name=uncertainty options."""

    lr: float = spec(1e-2, gt=0.0)  # SGD step on the log-variances s_i
    clamp: float = spec(5.0, gt=0.0)  # |s_i| bound


@register_balancer("uncertainty", UncertaintyConfig)
def uncertainty(lr: float = 1e-2, clamp: float = 5.0, num_aux: int | None = None) -> Balancer:
    """Kendall et al. 2018, Eq. 7 (LibMTL form): L = L_0 + sum_i exp(-s_i) L_i + s_i.

    The main weight stays 1 (auxiliary learning). d = g_0 + sum_i exp(-s_i) g_i, and s_i takes
    an SGD step on dL/ds_i = 1 - exp(-s_i) L_i, clamped to [-clamp, clamp] (RL losses are not
    likelihoods). s starts at 0, so the first step equals fixed weights. K defaults to the
    number of heads in a learner's params["heads"] (at least 1).
    """

    def init(params):
        k = num_aux
        if k is None:
            heads = params.get("heads", {}) if isinstance(params, dict) else {}
            k = max(len(heads), 1)
        return UncertaintyState(jnp.zeros((k,), jnp.float32))

    def update(g_main, state, params=None, *, g_aux, losses, **_):
        s = state.log_var
        if losses.shape != s.shape:
            raise ValueError(
                f"uncertainty balancer: {losses.shape[0]} aux losses, {s.shape[0]} s_i"
            )
        w = jnp.exp(-s)
        d = jax.tree.map(jnp.add, g_main, stack_combine(w, g_aux))
        s = jnp.clip(s - lr * (1.0 - w * losses), -clamp, clamp)
        return d, UncertaintyState(s)

    return Balancer("per_aux", balancer_tx(init, update))
