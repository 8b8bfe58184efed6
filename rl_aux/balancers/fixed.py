"""Fixed loss weights (the baseline every balancer must beat): weights already sit in the loss."""

from __future__ import annotations

import optax

from rl_aux.balancers.core import Balancer, register_balancer


@register_balancer("weighted_sum")
def weighted_sum() -> Balancer:
    """The plain weighted sum d = g_main + sum_i w_i g_i, one backward pass."""
    return Balancer("sum", optax.with_extra_args_support(optax.identity()))
