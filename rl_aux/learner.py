"""Plumbing every learner shares: the optimiser with a vmappable learning rate, the balancer
from config, default hyperparameters, and the episode statistics the trainer aggregates."""

from __future__ import annotations

import jax.numpy as jnp
import optax

from rl_aux.balance import Balancer, make_balancer
from rl_aux.heads.suite import HeadSuite
from rl_aux.types import Array


def _clip_adam(learning_rate, max_grad_norm, eps):
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(learning_rate, eps=eps))


def make_optimizer(cfg) -> optax.GradientTransformation:
    """Global-norm clipping + Adam, with the learning rate injected as state so it can be
    a traced, per-seed/grid-point value (see `set_lr`)."""
    tx = optax.inject_hyperparams(_clip_adam, static_args=("max_grad_norm", "eps"))
    return tx(learning_rate=cfg.lr, max_grad_norm=cfg.max_grad_norm, eps=cfg.adam_eps)


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
