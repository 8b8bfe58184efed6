"""Balancers: how auxiliary gradients join the main one, as optax-style transformations.

`make_balancer(cfg)` builds one from its config (`BALANCERS` is the registry; each method
registers with `@register_balancer`); `balanced_grads` is what a learner calls. One method per
file; `core.py` holds the contract, the registry and the gradient plumbing.
"""

from __future__ import annotations

from rl_aux.balancers.auxinash import auxinash, nash_alpha
from rl_aux.balancers.bloop import BloopState, bloop
from rl_aux.balancers.core import (
    BALANCERS,
    Balancer,
    BalancerConfig,
    balanced_grads,
    balancer_config,
    balancer_options,
    make_balancer,
    register_balancer,
    tree_vdot,
)
from rl_aux.balancers.fixed import weighted_sum
from rl_aux.balancers.gcs import gcs
from rl_aux.balancers.gradnorm import GradNormState, gradnorm, gradnorm_loss
from rl_aux.balancers.pcgrad import pcgrad
from rl_aux.balancers.uncertainty import UncertaintyState, uncertainty

__all__ = [
    "BALANCERS",
    "Balancer",
    "BalancerConfig",
    "BloopState",
    "GradNormState",
    "UncertaintyState",
    "auxinash",
    "balanced_grads",
    "balancer_config",
    "balancer_options",
    "bloop",
    "gcs",
    "gradnorm",
    "gradnorm_loss",
    "make_balancer",
    "nash_alpha",
    "pcgrad",
    "register_balancer",
    "tree_vdot",
    "uncertainty",
    "weighted_sum",
]
