"""Hypergradients against finite differences (float64): implicit Neumann on a quadratic with a
closed-form inner optimum, and the lookahead / Neumann(K=0) through the real gridworld losses
(blended reward, learned gamma, GAE in lax.scan) on a tiny batch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from agents.tabular_barfi import GridExpConfig, build
from rl_aux.rewards.hypergrad import lookahead_hypergrad, lookahead_objective, neumann_hypergrad


@pytest.fixture
def x64():
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", False)


def _fd_check(f, g, phi, n_dirs=6, eps=1e-6):
    """Relative error of g's directional derivatives against central finite differences of f,
    along `n_dirs` random directions plus the last coordinate (gamma's logit when present)."""
    flat, unravel = ravel_pytree(phi)
    dirs = jax.random.normal(jax.random.PRNGKey(7), (n_dirs, flat.size), flat.dtype)
    dirs = jnp.concatenate([dirs, jnp.eye(flat.size, dtype=flat.dtype)[-1:]], 0)
    fd = jax.jit(jax.vmap(lambda e: f(unravel(flat + eps * e)) - f(unravel(flat - eps * e))))
    fd = np.asarray(fd(dirs)) / (2 * eps)
    return _rel_err(np.asarray(dirs @ ravel_pytree(g)[0]), fd)


def _rel_err(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_neumann_matches_implicit_gradient_on_quadratic(x64):
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(0), 4)
    q, _ = jnp.linalg.qr(jax.random.normal(k1, (5, 5)))
    a = q @ jnp.diag(jnp.linspace(0.5, 2.0, 5)) @ q.T  # inner Hessian, eigenvalues in [0.5, 2]
    b = jax.random.normal(k2, (5, 3))
    t = jax.random.normal(k3, (5,))
    phi = {"p": jax.random.normal(k4, (3,))}
    inner = lambda th, ph, _: 0.5 * th @ a @ th - th @ b @ ph["p"]  # theta* = A^-1 B phi
    outer = lambda th, _: 0.5 * jnp.sum((th - t) ** 2)
    theta_star = jnp.linalg.solve(a, b @ phi["p"])
    _, g = neumann_hypergrad(inner, outer, phi, theta_star, None, None, alpha=0.4, k=100)
    exact = b.T @ jnp.linalg.solve(a, theta_star - t)  # B^T A^-1 dL_out/dtheta
    assert _rel_err(np.asarray(g["p"]), np.asarray(exact)) < 1e-6
    f = lambda ph: outer(jnp.linalg.solve(a, b @ ph["p"]), None)
    assert _fd_check(f, g, phi) < 1e-3


def _grid_problem(seed=0):
    cfg = GridExpConfig(episodes=2)
    ns = build(cfg, "lookahead")
    k = jax.random.split(jax.random.PRNGKey(seed), 6)
    n = ns.env.size**2
    theta = {"pi": 0.5 * jax.random.normal(k[0], (n, 4))}
    phi = ns.module.init(k[1], ns.env.spec, n)
    phi = {  # away from the symmetric init, so every term is exercised
        "W": 0.3 * jax.random.normal(k[2], phi["W"].shape),
        "c": phi["c"] + 0.1,
        "g": jnp.asarray(2.0),
    }
    b_in, b_out = ns.rollout(theta, k[3]), ns.rollout(theta, k[4])
    assert float(b_in["success"].sum() + b_out["success"].sum()) >= 0  # batches are real
    b_in["v_phi"] = 10.0 * jax.random.normal(k[5], b_in["mask"].shape)
    v_p = b_out["obs"] @ jnp.linspace(-1.0, 50.0, n)
    b_out["adv_p"], _ = ns.advantages(b_out["r_p"], v_p, b_out, cfg.gamma)
    return ns, theta, phi, b_in, b_out


def test_lookahead_hypergradient_matches_finite_differences(x64):
    ns, theta, phi, b_in, b_out = _grid_problem()
    opt_state = ns.inner_opt.init(theta)
    batches = jax.tree.map(lambda x: jnp.stack([x, x]), b_in)  # M = 2 truncated lookahead
    _, g = jax.jit(
        lambda ph: lookahead_hypergrad(
            ns.inner_loss, ns.outer_loss, ns.inner_opt, ph, theta, opt_state, batches, b_out
        )
    )(phi)
    f = lambda ph: lookahead_objective(
        ns.inner_loss, ns.outer_loss, ns.inner_opt, ph, theta, opt_state, batches, b_out
    )
    assert abs(float(g["g"])) > 0 and float(jnp.abs(g["W"]).max()) > 0  # gamma, blend both
    assert _fd_check(f, g, phi) < 1e-3


def test_neumann_k0_matches_finite_differences_on_grid(x64):
    ns, theta, phi, b_in, b_out = _grid_problem(1)
    alpha = 0.05
    _, g = jax.jit(
        lambda ph: neumann_hypergrad(ns.inner_loss, ns.outer_loss, ph, theta, b_in, b_out, alpha, 0)
    )(phi)
    v = jax.grad(ns.outer_loss)(theta, b_out)
    # K=0: dL_out/dphi = d/dphi [ v . (theta - alpha grad_theta L_in(theta, phi)) ]
    f = lambda ph: (
        -alpha * ravel_pytree(v)[0] @ ravel_pytree(jax.grad(ns.inner_loss)(theta, ph, b_in))[0]
    )
    assert _fd_check(f, g, phi) < 1e-3
