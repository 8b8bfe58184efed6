"""Bloop (Hsieh et al. 2024): the aux gradient minus its part along an EMA of the main gradient."""

from __future__ import annotations

import dataclasses

import jax
import optax
from flax import struct

from rl_aux.balancers.core import (
    Balancer,
    BalancerConfig,
    balancer_tx,
    register_balancer,
    tree_vdot,
)
from rl_aux.typed_config import spec


@struct.dataclass
class BloopState:
    g_main_ema: optax.Updates


@dataclasses.dataclass(frozen=True)
class BloopConfig(BalancerConfig):
    """agent.balancer.name=bloop options."""

    ema: float = spec(0.01, gt=0.0, le=1.0)  # EMA step of the main gradient (1: no EMA)


@register_balancer("bloop", BloopConfig)
def bloop(ema: float = 0.01, eps: float = 1e-12) -> Balancer:
    """Bloop (Hsieh et al. 2024, Alg. 1): d = g_main + g_aux - <g_aux,e>/<e,e> e, e = EMA(g_main).

    Aux weights are already inside g_aux. The EMA (not the current, noisy g_main) is what keeps
    the projection from degrading to plain loss mixing; ema=1 is projection without EMA.
    """

    def init(params):
        return BloopState(jax.tree.map(jax.numpy.zeros_like, params))

    def update(g_main, state, params=None, *, g_aux, **_):
        e = optax.incremental_update(g_main, state.g_main_ema, ema)
        c = tree_vdot(g_aux, e) / (tree_vdot(e, e) + eps)
        d = jax.tree.map(lambda gm, ga, ee: gm + ga - c * ee, g_main, g_aux, e)
        return d, BloopState(e)

    return Balancer("main_aux", balancer_tx(init, update))
