"""AuxiNash: combine main and aux gradients by an asymmetric Nash bargaining solution."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from rl_aux.balancers.core import Balancer, balancer_tx, register_balancer, stack_combine


def nash_alpha(gram: jax.Array, powers: jax.Array, iters: int = 20, eps: float = 1e-6):
    """Solve (G^T G a)_i = p_i / a_i for a > 0 (Shamsian et al. 2023, Eq. 4) by damped Newton.

    `gram` is normalised by its norm first (as in the reference solver), so a is scale-free.
    """
    m = gram / (jnp.linalg.norm(gram) + eps)
    m = m + eps * jnp.eye(m.shape[0])

    def body(_, a):
        f = m @ a - powers / a
        jac = m + jnp.diag(powers / a**2)
        step = jnp.linalg.solve(jac, f)
        return jnp.maximum(a - step, 0.5 * a)  # stay positive: at most halve a coordinate

    return jax.lax.fori_loop(0, iters, body, jnp.ones_like(powers))


@register_balancer("auxinash")
def auxinash(powers: tuple[float, ...] | None = None, iters: int = 20) -> Balancer:
    """AuxiNash with fixed bargaining powers p (p_0 for main, then one per head; default all 1).

    d = sum_i a_i g_i with a the Nash bargaining weights. The learned-p hyperstep (every 25
    steps in the paper) is not implemented here: powers are a fixed config value.
    """

    def init(params):
        return optax.EmptyState()

    def update(g_main, state, params=None, *, g_aux, **_):
        stack = jax.tree.map(lambda m, a: jnp.concatenate([m[None], a], 0), g_main, g_aux)
        k1 = jax.tree.leaves(stack)[0].shape[0]
        if powers is None:
            p = jnp.ones((k1,), jnp.float32)
        else:
            if len(powers) != k1:
                raise ValueError(
                    f"agent.auxinash_powers has {len(powers)} entries; need {k1} (main + heads)"
                )
            p = jnp.asarray(powers, jnp.float32)
        flat = jnp.concatenate([x.reshape(k1, -1) for x in jax.tree.leaves(stack)], axis=1)
        alpha = nash_alpha(flat @ flat.T, p, iters)
        return stack_combine(jax.lax.stop_gradient(alpha), stack), state

    return Balancer("per_aux", balancer_tx(init, update))
