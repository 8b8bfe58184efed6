"""An example plugin balancer with an option: `capped_aux`, the auxiliary gradient scaled down
to at most `max_ratio` times the main gradient's norm.

Not a built-in balancer: it shows that one file outside the library adds a balancer and its
options. Load it with `rl-aux train plugins=[examples/plugins/capped_aux.py] head=reward_pred
agent.balancer.name=capped_aux agent.balancer.max_ratio=0.5`.
"""

import dataclasses

import jax
import jax.numpy as jnp
import optax

from rl_aux.balancers import Balancer, BalancerConfig, register_balancer
from rl_aux.balancers.core import tree_vdot
from rl_aux.typed_config import spec


@dataclasses.dataclass(frozen=True)
class CappedAuxConfig(BalancerConfig):
    """agent.balancer.name=capped_aux options."""

    max_ratio: float = spec(1.0, gt=0.0)  # |g_aux| is capped at max_ratio * |g_main|


@register_balancer("capped_aux", CappedAuxConfig)
def capped_aux(max_ratio: float = 1.0, eps: float = 1e-12) -> Balancer:
    """d = g_main + s g_aux, s = min(1, max_ratio |g_main| / |g_aux|): the heads never move the
    shared weights more than the main loss does (a norm cap; no projection)."""

    def init(params):
        return optax.EmptyState()

    def update(g_main, state, params=None, *, g_aux, **_):
        main = jnp.sqrt(tree_vdot(g_main, g_main))
        aux = jnp.sqrt(tree_vdot(g_aux, g_aux))
        s = jnp.minimum(1.0, max_ratio * main / (aux + eps))
        return jax.tree.map(lambda gm, ga: gm + s * ga, g_main, g_aux), state

    return Balancer("main_aux", optax.GradientTransformationExtraArgs(init, update))
