"""Asymmetric PCGrad: each aux gradient loses its component against g_main; g_main is untouched."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from rl_aux.balancers.core import (
    Balancer,
    balancer_tx,
    register_balancer,
    stack_combine,
    stack_vdot,
    tree_vdot,
)


@register_balancer("pcgrad")
def pcgrad(eps: float = 1e-12) -> Balancer:
    """PCGrad (Yu et al. 2020, Alg. 1), asymmetric: g_i <- g_i - min(<g_i,g_0>,0)/|g_0|^2 g_0.

    Only aux gradients are projected (onto the normal plane of g_main when they conflict);
    d = g_main + sum_i g_i. Stateless.
    """

    def init(params):
        return optax.EmptyState()

    def update(g_main, state, params=None, *, g_aux, **_):
        dots = stack_vdot(g_aux, g_main)  # [K]
        c = jnp.minimum(dots, 0.0) / (tree_vdot(g_main, g_main) + eps)
        aux_sum = stack_combine(jnp.ones_like(dots), g_aux)
        d = jax.tree.map(lambda gm, ga: gm + ga - c.sum() * gm, g_main, aux_sum)
        return d, state

    return Balancer("per_aux", balancer_tx(init, update))
