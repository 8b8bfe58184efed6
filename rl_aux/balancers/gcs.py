"""Gradient-cosine gating: an aux gradient joins only while it points along the main one."""

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


@register_balancer("gcs")
def gcs(eps: float = 1e-12) -> Balancer:
    """Gradient cosine similarity (Du et al. 2018, Alg. 1, unweighted): g_i joins iff cos > 0."""

    def init(params):
        return optax.EmptyState()

    def update(g_main, state, params=None, *, g_aux, **_):
        dots = stack_vdot(g_aux, g_main)
        sq = jax.vmap(lambda a: tree_vdot(a, a))(g_aux)
        norms = jnp.sqrt(sq * tree_vdot(g_main, g_main)) + eps
        gate = (dots / norms > 0.0).astype(dots.dtype)
        aux = stack_combine(gate, g_aux)
        return jax.tree.map(jnp.add, g_main, aux), state

    return Balancer("per_aux", balancer_tx(init, update))
