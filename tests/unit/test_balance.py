"""Balancers: weighted sum equals the summed gradient; Bloop removes the aux part along EMA."""

import jax
import jax.numpy as jnp
import numpy as np

from rl_aux.balancers import balanced_grads, bloop, weighted_sum


def _losses(p):
    main = jnp.sum((p["w"] - 1.0) ** 2)
    aux = 0.3 * jnp.sum((p["w"] + 2.0) ** 2)
    return (main, aux), {}


def test_weighted_sum_is_gradient_of_sum():
    p = {"w": jnp.array([0.5, -1.0, 2.0])}
    bal = weighted_sum()
    g, _, _ = balanced_grads(_losses, p, bal, bal.tx.init(p))
    ref = jax.grad(lambda q: sum(_losses(q)[0]))(p)
    np.testing.assert_allclose(np.asarray(g["w"]), np.asarray(ref["w"]), rtol=1e-6)


def test_bloop_projects_aux_off_the_main_direction():
    p = {"w": jnp.array([0.5, -1.0, 2.0])}
    bal = bloop(ema=1.0)  # ema=1: the EMA is the current main gradient
    g, state, _ = balanced_grads(_losses, p, bal, bal.tx.init(p))
    g_main = jax.grad(lambda q: _losses(q)[0][0])(p)["w"]
    g_aux = jax.grad(lambda q: _losses(q)[0][1])(p)["w"]
    aux_part = np.asarray(g["w"] - g_main)
    assert abs(float(np.dot(aux_part, np.asarray(g_main)))) < 1e-4  # orthogonal to g_main
    assert np.linalg.norm(aux_part) > 0 and not np.allclose(aux_part, np.asarray(g_aux))
    np.testing.assert_allclose(np.asarray(state.g_main_ema["w"]), np.asarray(g_main), rtol=1e-6)
