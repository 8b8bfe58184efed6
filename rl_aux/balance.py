"""How auxiliary gradients join the main one: optax-style transformations over per-loss grads.

A balancer is `Balancer(mode, tx)`. `mode` tells the learner what gradients to compute:
- "sum": one backward pass of main + sum_i w_i aux_i (the weighted sum; cheapest, default);
- "main_aux": two backward passes, g_main and g_aux = grad(sum_i w_i aux_i), then
  `tx.update(g_main, state, params, g_aux=g_aux)` returns the combined gradient.
New balancers (PCGrad, AuxiNash...) add a mode or reuse "main_aux" without learner edits.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct


class Balancer(NamedTuple):
    mode: str
    tx: optax.GradientTransformationExtraArgs


def weighted_sum() -> Balancer:
    """The plain weighted sum: weights already sit in the summed loss."""
    return Balancer("sum", optax.with_extra_args_support(optax.identity()))


@struct.dataclass
class BloopState:
    g_main_ema: optax.Updates


def _vdot(a, b) -> jax.Array:
    return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def bloop(ema: float = 0.01, eps: float = 1e-12) -> Balancer:
    """Bloop (Hsieh et al. 2024, Alg. 1): drop the aux gradient's part along an EMA of g_main.

    d = g_main + (g_aux - <g_aux, e>/<e, e> * e), with e the EMA of g_main; aux weights are
    already inside g_aux. The EMA (not the current g_main) keeps the projection low-variance.
    """

    def init(params):
        return BloopState(jax.tree.map(jnp.zeros_like, params))

    def update(g_main, state, params=None, *, g_aux, **_):
        e = optax.incremental_update(g_main, state.g_main_ema, ema)
        c = _vdot(g_aux, e) / (_vdot(e, e) + eps)
        d = jax.tree.map(lambda gm, ga, ee: gm + ga - c * ee, g_main, g_aux, e)
        return d, BloopState(e)

    return Balancer("main_aux", optax.GradientTransformationExtraArgs(init, update))


BALANCERS = {"weighted_sum": weighted_sum, "bloop": bloop}


def make_balancer(name: str, **kwargs) -> Balancer:
    if name not in BALANCERS:
        raise ValueError(f"balancer={name!r}; accepted: {', '.join(BALANCERS)}")
    return BALANCERS[name](**kwargs)


def balanced_grads(losses_fn, params, balancer: Balancer, bal_state):
    """Gradients of `losses_fn(params) -> ((main, aux_weighted_sum), metrics)`, combined.

    Returns (grads, new_bal_state, metrics). One forward pass in every mode.
    """
    if balancer.mode == "sum":

        def total(p):
            (main, aux), m = losses_fn(p)
            return main + aux, m

        grads, metrics = jax.grad(total, has_aux=True)(params)
        return grads, bal_state, metrics
    if balancer.mode == "main_aux":
        (_, vjp, metrics) = jax.vjp(lambda p: losses_fn(p), params, has_aux=True)
        one, zero = jnp.ones(()), jnp.zeros(())
        (g_main,) = vjp((one, zero))
        (g_aux,) = vjp((zero, one))
        grads, bal_state = balancer.tx.update(g_main, bal_state, params, g_aux=g_aux)
        return grads, bal_state, metrics
    raise ValueError(f"balancer mode {balancer.mode!r}; accepted: sum, main_aux")
