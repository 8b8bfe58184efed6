"""How auxiliary gradients join the main one. Kept as the stable import path for learners;
the methods live in `rl_aux/balancers/` (one per file)."""

from rl_aux.balancers import (
    BALANCERS,
    Balancer,
    BalancerConfig,
    BloopState,
    balanced_grads,
    bloop,
    make_balancer,
    weighted_sum,
)

__all__ = [
    "BALANCERS",
    "Balancer",
    "BalancerConfig",
    "BloopState",
    "balanced_grads",
    "bloop",
    "make_balancer",
    "weighted_sum",
]
