"""The balancer contract and the one function learners call (`balanced_grads`).

A balancer is `Balancer(mode, tx)`; `mode` says which gradients the learner computes:
- "sum": one backward pass of main + sum_i w_i aux_i (weights already in the loss);
- "main_aux": g_main and g_aux = grad(sum_i w_i aux_i); `tx.update(g_main, s, p, g_aux=...)`;
- "per_aux": g_main and one gradient per head, stacked on a leading [K] axis:
  `tx.update(g_main, s, p, g_aux=stack, losses=[K] weighted head losses, main_loss=L_0)`.
Per-head losses come from the `aux/<name>/weighted_loss` metrics HeadSuite emits, so learners
need no change to feed per-head balancers (PCGrad, GCS, AuxiNash, uncertainty weighting).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

MODES = ("sum", "main_aux", "per_aux")


class Balancer(NamedTuple):
    mode: str
    tx: optax.GradientTransformationExtraArgs


def tree_vdot(a, b) -> jax.Array:
    """<a, b> over a whole pytree (Bloop's `tree_proj` dots over all parameters)."""
    return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def stack_vdot(stack, b) -> jax.Array:
    """[K] inner products of each row of a stacked pytree with the pytree `b`."""
    return jax.vmap(lambda a: tree_vdot(a, b))(stack)


def stack_gram(stack) -> jax.Array:
    """[K, K] Gram matrix of a stacked pytree's rows."""
    flat = jnp.concatenate([x.reshape(x.shape[0], -1) for x in jax.tree.leaves(stack)], axis=1)
    return flat @ flat.T


def stack_combine(coef, stack):
    """sum_k coef[k] * stack[k] as a pytree."""
    return jax.tree.map(lambda x: jnp.tensordot(coef, x, axes=1), stack)


def _aux_vector(aux: jax.Array, metrics: dict) -> jax.Array:
    keys = sorted(k for k in metrics if k.startswith("aux/") and k.endswith("/weighted_loss"))
    if not keys:
        return jnp.reshape(aux, (1,))
    return jnp.stack([metrics[k] for k in keys])


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
        (_, vjp, metrics) = jax.vjp(losses_fn, params, has_aux=True)
        one, zero = jnp.ones(()), jnp.zeros(())
        (g_main,) = vjp((one, zero))
        (g_aux,) = vjp((zero, one))
        grads, bal_state = balancer.tx.update(g_main, bal_state, params, g_aux=g_aux)
        return grads, bal_state, metrics
    if balancer.mode == "per_aux":

        def split(p):
            (main, aux), m = losses_fn(p)
            return (main, _aux_vector(aux, m)), m

        ((main, vec), vjp, metrics) = jax.vjp(split, params, has_aux=True)
        k = vec.shape[0]
        (g_main,) = vjp((jnp.ones_like(main), jnp.zeros_like(vec)))
        g_aux = jax.vmap(lambda e: vjp((jnp.zeros_like(main), e))[0])(jnp.eye(k, dtype=vec.dtype))
        grads, bal_state = balancer.tx.update(
            g_main,
            bal_state,
            params,
            g_aux=g_aux,
            losses=jax.lax.stop_gradient(vec),
            main_loss=jax.lax.stop_gradient(main),
        )
        return grads, bal_state, metrics
    raise ValueError(f"balancer mode {balancer.mode!r}; accepted: {', '.join(MODES)}")
