"""The balancer contract and the one function learners call (`balanced_grads`).

A balancer is `Balancer(mode, tx)`; `mode` says which gradients the learner computes:
- "sum": one backward pass of main + sum_i w_i aux_i (weights already in the loss);
- "main_aux": g_main and g_aux = grad(sum_i w_i aux_i); `tx.update(g_main, s, p, g_aux=...)`;
- "per_aux": g_main and one gradient per head, stacked on a leading [K] axis:
  `tx.update(g_main, s, p, g_aux=stack, losses=[K] weighted head losses, main_loss=L_0)`.
Per-head losses come from the `aux/<name>/weighted_loss` metrics HeadSuite emits, so learners
need no change to feed per-head balancers (PCGrad, GCS, AuxiNash, uncertainty weighting).

A balancer is a plugin: a factory registered with its options' config,

    @dataclasses.dataclass(frozen=True)
    class MyConfig(BalancerConfig):
        strength: float = spec(1.0, gt=0.0)     # agent.balancer.strength=...

    @register_balancer("mine", MyConfig)        # agent.balancer.name=mine (or agent.balancer=mine)
    def mine(strength: float = 1.0) -> Balancer: ...

The learners' configs hold one `balancer: BalancerConfig` (its `name` plus that balancer's
options); `make_balancer(cfg.balancer)` calls the factory with the options as keywords.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import optax

from rl_aux.registry import Registry, origin_of
from rl_aux.typed_config import ConfigError

MODES = ("sum", "main_aux", "per_aux")


class Balancer(NamedTuple):
    mode: str
    tx: optax.GradientTransformationExtraArgs


def balancer_tx(init: Callable, update: Callable) -> optax.GradientTransformationExtraArgs:
    """optax's (init, update) pair of a balancer. Its update takes `g_aux` (and `losses`...)
    as keywords and its state is any pytree, which optax's protocols cannot spell: cast."""
    return optax.GradientTransformationExtraArgs(cast(Any, init), cast(Any, update))


@dataclasses.dataclass(frozen=True)
class BalancerConfig:
    """`agent.balancer`: which balancer (`name`); a balancer with options subclasses this."""

    name: str = "weighted_sum"  # a registered balancer (rl-aux describe balancer)


class BalancerKind(NamedTuple):
    """A registered balancer: its factory and the config dataclass of its options."""

    make: Callable[..., Balancer]
    Config: type


BALANCERS: Registry[BalancerKind] = Registry(
    "balancer",
    "agent.balancer",
    "rl-aux describe balancer",
    "A balancer in your own file registers when imported: plugins=[path/to/my_balancer.py]",
)


def register_balancer(name: str, config: type = BalancerConfig):
    """Decorator on a factory `f(**options) -> Balancer`: selectable as agent.balancer=<name>,
    its options (the fields of `config`, a BalancerConfig subclass) as agent.balancer.<opt>."""
    if not (dataclasses.is_dataclass(config) and issubclass(config, BalancerConfig)):
        raise TypeError(f"balancer {name!r}: config must be a dataclass subclassing BalancerConfig")

    def deco(make: Callable[..., Balancer]) -> Callable[..., Balancer]:
        BALANCERS.add(name, BalancerKind(make, config), origin_of(make))
        return make

    return deco


def balancer_config(name: str, **options) -> BalancerConfig:
    """The config of balancer `name` with `options` (e.g. balancer_config("bloop", ema=0.1))."""
    return BALANCERS.get(name).Config(name=name, **options)


def balancer_options(cfg: BalancerConfig) -> dict:
    """The factory keywords a balancer config carries (every field but `name`)."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name != "name"}


def make_balancer(cfg: BalancerConfig | str, **options) -> Balancer:
    """The balancer a config describes (or, by name, built with `options`)."""
    if isinstance(cfg, str):
        return BALANCERS.get(cfg).make(**options)
    kind = BALANCERS.get(cfg.name)
    if not isinstance(cfg, kind.Config):
        raise ConfigError(
            f"agent.balancer: {type(cfg).__name__} is not the config of balancer {cfg.name!r}; "
            f"accepted: {kind.Config.__name__} (balancer_config({cfg.name!r}, ...))"
        )
    return kind.make(**balancer_options(cfg), **options)


def tree_vdot(a, b) -> jax.Array:
    """<a, b> over a whole pytree (Bloop's `tree_proj` dots over all parameters)."""
    leaves = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return cast(jax.Array, sum(jnp.vdot(x, y) for x, y in leaves))


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
