"""Plumbing every learner shares: the optimiser with a vmappable learning rate, the balancer
from config, default hyperparameters, and the episode statistics the trainer aggregates."""

from __future__ import annotations

import jax.numpy as jnp
import optax

from rl_aux.balance import Balancer, make_balancer
from rl_aux.heads.suite import HeadSuite
from rl_aux.types import Array

CLIP_SCOPES = ("global", "per_module")


def clip_by_module_norm(max_norm: float) -> optax.GradientTransformation:
    """`clip_by_global_norm` applied to each module on its own: every top-level entry of the
    params (the network) and each head under `params["heads"]`. A head's private gradients
    then cannot shrink the policy's step, as they do under one global norm (the noise-head
    control in docs/bilevel-and-balancers.md). Same (empty) state as `clip_by_global_norm`."""
    inner = optax.clip_by_global_norm(max_norm)

    def clip(tree):
        return inner.update(tree, inner.init(tree))[0]

    def update(updates, state, params=None):
        del params
        out = {k: clip(v) for k, v in updates.items() if k != "heads"}
        if "heads" in updates:
            out["heads"] = {name: clip(v) for name, v in updates["heads"].items()}
        return out, state

    return optax.GradientTransformation(inner.init, update)


def _clip_adam(learning_rate, max_grad_norm, eps, clip_scope="global", eps_root=0.0):
    if clip_scope not in CLIP_SCOPES:
        raise ValueError(f"agent.clip_scope={clip_scope!r}; accepted: {', '.join(CLIP_SCOPES)}")
    clip = clip_by_module_norm if clip_scope == "per_module" else optax.clip_by_global_norm
    adam = optax.adam(learning_rate, eps=eps, eps_root=eps_root)
    return optax.chain(clip(max_grad_norm), adam)


def make_optimizer(cfg, eps_root: float = 0.0) -> optax.GradientTransformation:
    """Gradient-norm clipping (one global norm, or per module: `cfg.clip_scope`) + Adam, with
    the learning rate injected as state so it can be a traced, per-seed/grid-point value (see
    `set_lr`). `eps_root` > 0 makes Adam differentiable where a gradient is 0 (lookahead)."""
    tx = optax.inject_hyperparams(
        _clip_adam, static_args=("max_grad_norm", "eps", "clip_scope", "eps_root")
    )
    return tx(
        learning_rate=cfg.lr,
        max_grad_norm=cfg.max_grad_norm,
        eps=cfg.adam_eps,
        clip_scope=getattr(cfg, "clip_scope", "global"),
        eps_root=eps_root,
    )


def set_lr(opt_state, lr):
    """A copy of an inject_hyperparams state with a new learning rate (traced or not)."""
    return opt_state._replace(hyperparams={**opt_state.hyperparams, "learning_rate": lr})


def balancer_from(cfg) -> Balancer:
    """The balancer named by `cfg.balancer`, with the options the agent config carries."""
    kwargs = {"ema": cfg.bloop_ema} if cfg.balancer == "bloop" else {}
    if cfg.balancer == "gradnorm":
        kwargs = {
            "alpha": cfg.gradnorm_alpha,
            "lr": cfg.gradnorm_lr,
            "learn_main": cfg.gradnorm_learn_main,
        }
    return make_balancer(cfg.balancer, **kwargs)


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
