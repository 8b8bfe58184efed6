"""Plumbing every learner shares: the optimiser with a vmappable learning rate, the balancer
from config, default hyperparameters, and the episode statistics the trainer aggregates."""

from __future__ import annotations

import jax.numpy as jnp
import optax

from rl_aux.balance import Balancer, make_balancer
from rl_aux.clipping import NO_GROUPS, ClipGroups, clip_transform, resolve_scope
from rl_aux.heads.suite import HeadSuite
from rl_aux.types import Array


def clip_and_adam(
    learning_rate,
    max_grad_norm: float,
    eps: float,
    clip_scope: str = "global",
    eps_root: float = 0.0,
    groups: ClipGroups = NO_GROUPS,
) -> optax.GradientTransformation:
    """Gradient clipping (`rl_aux/clipping.py`, scope already resolved) then Adam."""
    clip = clip_transform(clip_scope, max_grad_norm, groups)
    adam = optax.adam(learning_rate, eps=eps, eps_root=eps_root)
    return optax.chain(clip, adam)


def make_optimizer(
    cfg, eps_root: float = 0.0, groups: ClipGroups = NO_GROUPS
) -> optax.GradientTransformation:
    """Gradient-norm clipping (`cfg.clip_scope`: auto clips each part a stop-gradient cuts
    apart on its own, see `groups`) + Adam, with the learning rate injected as state so it can
    be a traced, per-seed/grid-point value (see `set_lr`). `eps_root` > 0 makes Adam
    differentiable where a gradient is 0 (lookahead)."""
    tx = optax.inject_hyperparams(
        clip_and_adam, static_args=("max_grad_norm", "eps", "clip_scope", "eps_root", "groups")
    )
    return tx(
        learning_rate=cfg.lr,
        max_grad_norm=cfg.max_grad_norm,
        eps=cfg.adam_eps,
        clip_scope=resolve_scope(getattr(cfg, "clip_scope", "auto"), groups),
        eps_root=eps_root,
        groups=groups,
    )


def set_lr(opt_state, lr):
    """A copy of an inject_hyperparams state with a new learning rate (traced or not)."""
    return opt_state._replace(hyperparams={**opt_state.hyperparams, "learning_rate": lr})


def balancer_from(cfg) -> Balancer:
    """The balancer of a learner config's nested `balancer` (its name and its own options)."""
    return make_balancer(cfg.balancer)


def default_hparams(cfg, suite: HeadSuite) -> dict:
    """The vmappable floats: learning rate and each head's loss weight."""
    return {"lr": cfg.lr, "aux_weights": {h.name: h.cfg.weight for h in suite.heads}}


def episode_metrics(done: Array, episode_return: Array, episode_length: Array) -> dict:
    """Sums over finished episodes; the trainer divides them over each logging window."""
    d = done.astype(jnp.float32)
    return {
        "episodes": d.sum(),
        "episode_return_sum": (episode_return * d).sum(),
        "episode_length_sum": (episode_length * d).sum(),
    }


def learned_mean(values, learned=None) -> float:
    """Mean of one run's per-update metric over the updates that took a gradient step.

    `learned` is a bool per update (leading axis of `values`), or None when every update
    learns. A metric a gradient step writes has no value before the first step: NaN, not 0."""
    import numpy as np

    values = np.asarray(values)
    if learned is None or bool(np.all(learned)):
        return float(values.mean())
    learned = np.asarray(learned, bool)
    return float(values[learned].mean()) if learned.any() else float("nan")
