"""GradNorm: learned task weights that pull each task's shared-gradient norm to a common target."""

from __future__ import annotations

import dataclasses
from typing import cast

import jax
import jax.numpy as jnp
import optax
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
class GradNormState:
    weights: jax.Array  # [K+1] w_0 (main) then one per aux head
    loss0: jax.Array  # [K+1] |L_i(0)|, the losses at the first update
    count: jax.Array  # updates done (0: loss0 not yet recorded)
    opt: optax.OptState  # Adam state of the weights


def _shared(tree):
    """The part of a gradient tree the tasks share: params["net"] (heads' own params excluded)."""
    return tree["net"] if isinstance(tree, dict) and "net" in tree else tree


def _norm(tree) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


def gradnorm_loss(w, norms, losses, loss0, alpha: float, eps: float = 1e-8) -> jax.Array:
    """Chen et al. 2018, Sec. 3.2, Eq. 1-2: L_grad = sum_i |G_i - stop_grad(mean_G * r_i^alpha)|.

    G_i = w_i * ||grad_W L_i|| (W: shared params), r_i = L~_i / mean(L~), L~_i = L_i / L_i(0).
    |L| is used (PPO's main loss can be negative), so r_i >= 0 and r_i^alpha is defined.
    """
    g = w * norms
    ratio = jnp.abs(losses) / (loss0 + eps)
    r = ratio / (jnp.mean(ratio) + eps)
    target = jax.lax.stop_gradient(jnp.mean(g) * r**alpha)
    return jnp.sum(jnp.abs(g - target))


@dataclasses.dataclass(frozen=True)
class GradNormConfig(BalancerConfig):
    """agent.balancer.name=gradnorm options."""

    alpha: float = spec(0.0, ge=0.0)  # restoring-force exponent; 1.5 in the paper (see below)
    lr: float = spec(1e-2, gt=0.0)  # Adam step on the task weights, once per update
    learn_main: bool = False  # True: the paper (main weight learned too)


@register_balancer("gradnorm", GradNormConfig)
def gradnorm(
    alpha: float = 0.0,
    lr: float = 1e-2,
    learn_main: bool = False,
    num_aux: int | None = None,
    min_weight: float = 1e-3,
) -> Balancer:
    """GradNorm over K+1 tasks (main = task 0): d = w_0 g_0 + sum_i w_i g_i.

    Weights start at 1 (the first step equals `weighted_sum`), take one Adam step (lr) on
    `gradnorm_loss` per update (all K+1 tasks set the mean norm and the rates), are floored at
    `min_weight` and renormalised. learn_main=True is the paper (all K+1 weights learned, sum
    K+1); the default keeps w_0 = 1 and renormalises the K aux weights to sum K, because on
    CartPole PPO the main (actor+critic) norm dwarfs the heads' and w_0 fell to the floor.
    Norms are over params["net"], the whole shared network (not just its last layer: the
    per-task gradients already exist, so the norm is free). alpha defaults to 0 (equal norms):
    the L_i(0) ratio has no meaning for PPO/TD losses (method note Sec. 3.3); 1.5 is the paper's.
    K defaults to the number of heads in params["heads"] (at least 1).
    """
    opt = optax.adam(lr)

    def init(params):
        k = num_aux
        if k is None:
            heads = params.get("heads", {}) if isinstance(params, dict) else {}
            k = max(len(heads), 1)
        w = jnp.ones((k + 1,), jnp.float32)
        return GradNormState(w, jnp.ones_like(w), jnp.zeros((), jnp.int32), opt.init(w))

    def update(g_main, state, params=None, *, g_aux, losses, main_loss=None, **_):
        w = state.weights
        if losses.shape[0] + 1 != w.shape[0]:
            raise ValueError(f"gradnorm balancer: {losses.shape[0]} aux losses, {w.shape[0]} w_i")
        main_loss = jnp.zeros(()) if main_loss is None else main_loss
        all_losses = jnp.concatenate([jnp.reshape(main_loss, (1,)), losses]).astype(w.dtype)
        norms = jnp.concatenate(
            [_norm(_shared(g_main))[None], jax.vmap(lambda g: _norm(_shared(g)))(g_aux)]
        )
        loss0 = jnp.where(state.count == 0, jnp.abs(all_losses), state.loss0)
        d = jax.tree.map(lambda m, a: w[0] * m + a, g_main, stack_combine(w[1:], g_aux))
        grad_w = jax.grad(gradnorm_loss)(w, norms, all_losses, loss0, alpha)
        step, opt_state = opt.update(grad_w, state.opt, w)
        new_w = jnp.maximum(cast(jax.Array, optax.apply_updates(w, step)), min_weight)
        if learn_main:
            new_w = new_w * (w.shape[0] / jnp.sum(new_w))
        else:  # w_0 stays 1; the K aux weights sum to K
            aux = new_w[1:] * ((w.shape[0] - 1) / jnp.sum(new_w[1:]))
            new_w = jnp.concatenate([jnp.ones((1,), w.dtype), aux])
        return d, GradNormState(new_w, loss0, state.count + 1, opt_state)

    return Balancer("per_aux", balancer_tx(init, update))
