"""Balancers: how auxiliary gradients join the main one, as optax-style transformations.

`make_balancer(name, **kwargs)` builds one by its config name; `balanced_grads` is what a
learner calls. One method per file; `core.py` holds the contract and the gradient plumbing.
"""

from __future__ import annotations

from rl_aux.balancers.auxinash import auxinash, nash_alpha
from rl_aux.balancers.bloop import BloopState, bloop
from rl_aux.balancers.core import Balancer, balanced_grads, tree_vdot
from rl_aux.balancers.fixed import weighted_sum
from rl_aux.balancers.gcs import gcs
from rl_aux.balancers.gradnorm import GradNormState, gradnorm, gradnorm_loss
from rl_aux.balancers.pcgrad import pcgrad
from rl_aux.balancers.uncertainty import UncertaintyState, uncertainty

BALANCERS = {
    "weighted_sum": weighted_sum,
    "bloop": bloop,
    "pcgrad": pcgrad,
    "gcs": gcs,
    "uncertainty": uncertainty,
    "auxinash": auxinash,
    "gradnorm": gradnorm,
}


def make_balancer(name: str, **kwargs) -> Balancer:
    """The balancer called `name` (a key of BALANCERS), built with `kwargs`."""
    if name not in BALANCERS:
        raise ValueError(f"balancer={name!r}; accepted: {', '.join(BALANCERS)}")
    return BALANCERS[name](**kwargs)


__all__ = [
    "BALANCERS",
    "Balancer",
    "BloopState",
    "GradNormState",
    "UncertaintyState",
    "auxinash",
    "balanced_grads",
    "bloop",
    "gcs",
    "gradnorm",
    "gradnorm_loss",
    "make_balancer",
    "nash_alpha",
    "pcgrad",
    "tree_vdot",
    "uncertainty",
    "weighted_sum",
]
