"""Hypergradients of an outer loss through an inner learner's update, for bilevel rewards.

Convention: both losses are minimised. `inner_loss(theta, phi, batch)` is the learner's loss
on the phi-parameterised reward; `outer_loss(theta, batch)` the primary objective (a fresh
batch). Both functions return dL_outer/dphi (descend on it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import jax
import jax.numpy as jnp
import optax

InnerLoss: TypeAlias = Callable  # (theta, phi, batch) -> scalar
OuterLoss: TypeAlias = Callable  # (theta, batch) -> scalar


def lookahead_objective(
    inner_loss: InnerLoss,
    outer_loss: OuterLoss,
    inner_opt: optax.GradientTransformation,
    phi,
    theta,
    opt_state,
    batches_in,
    batch_out,
):
    """L_out(theta_M(phi)) after M inner optax steps, one per leading slice of `batches_in`."""

    def step(c, b):
        th, st = c
        g = jax.grad(inner_loss)(th, phi, b)
        upd, st = inner_opt.update(g, st, th)
        return (optax.apply_updates(th, upd), st), None

    (theta_m, _), _ = jax.lax.scan(step, (theta, opt_state), batches_in)
    return outer_loss(theta_m, batch_out)


def lookahead_hypergrad(
    inner_loss, outer_loss, inner_opt, phi, theta, opt_state, batches_in, batch_out
):
    """Meta-gradient through M inner steps (Xu, van Hasselt, Silver 2018, Eq. 3; M=1 there).

    `batches_in` has a leading [M] axis. Returns (L_out(theta_M), dL_out/dphi).
    """
    return jax.value_and_grad(lookahead_objective, argnums=3)(
        inner_loss, outer_loss, inner_opt, phi, theta, opt_state, batches_in, batch_out
    )


def neumann_hypergrad(
    inner_loss, outer_loss, phi, theta, batch_in, batch_out, alpha: float, k: int
):
    """BARFI's implicit hypergradient (Gupta et al. 2023, Sec. 4.2; Lorraine et al. 2020):

    dL_out/dphi = -d2L_in/dphi dtheta . H^-1 . dL_out/dtheta, with
    H^-1 v ~= alpha sum_{i=0..K} (I - alpha H)^i v (Neumann; needs alpha * lambda_max(H) < 1).
    H-vector products are forward-over-reverse (`jvp` of `grad`). Returns (L_out, dL_out/dphi).
    """
    loss, v = jax.value_and_grad(outer_loss)(theta, batch_out)
    g_theta = lambda th: jax.grad(inner_loss)(th, phi, batch_in)
    hvp = lambda u: jax.jvp(g_theta, (theta,), (u,))[1]

    def body(_, c):
        p, acc = c
        p = jax.tree.map(lambda a, b: a - alpha * b, p, hvp(p))
        return p, jax.tree.map(jnp.add, acc, p)

    _, acc = jax.lax.fori_loop(0, k, body, (v, v))
    h_inv_v = jax.tree.map(lambda a: alpha * a, acc)
    _, vjp_phi = jax.vjp(lambda ph: jax.grad(inner_loss)(theta, ph, batch_in), phi)
    (mixed,) = vjp_phi(h_inv_v)
    return loss, jax.tree.map(jnp.negative, mixed)
