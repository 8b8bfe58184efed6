"""Bloop's toy (Hsieh et al. 2024, Sec. 5.1 style): over-parameterised regression + a prior.

L_main = mean_i (x_i.theta - y_i)^2 over n=50 points in d=200, L_aux = |theta - theta_prior|^2
with weight lambda. Minibatch SGD through a balancer from `rl_aux.balancers`. The bilevel
solution is the projection of theta_prior onto {X theta = y}; summing the losses instead
trades L_main for L_aux. `python -m experiments.studies.bloop_toy` prints the table.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

import rl_aux  # noqa: F401  (XLA flags before the backend starts)
from rl_aux.balancers import balanced_grads, bloop, weighted_sum


def problem(key, d: int = 200, n: int = 50):
    kx, kt, kp = jax.random.split(key, 3)
    x = jax.random.normal(kx, (n, d)) / jnp.sqrt(d)
    y = x @ jax.random.normal(kt, (d,))
    prior = jax.random.normal(kp, (d,))
    return x, y, prior


def run(
    method: str,
    lam: float,
    seed: int,
    steps: int = 60_000,
    batch: int = 5,
    lr: float = 0.02,
    ema: float = 0.05,
) -> dict:
    """Train with `method` (mixed, project or bloop); final full-batch L_main and |theta-theta*|."""
    key = jax.random.PRNGKey(seed)
    k_prob, k_run = jax.random.split(key)
    x, y, prior = problem(k_prob)
    n, d = x.shape
    bal = {"mixed": weighted_sum(), "project": bloop(ema=1.0), "bloop": bloop(ema=ema)}[method]

    def losses(theta, idx):
        main = jnp.mean((x[idx] @ theta - y[idx]) ** 2)
        return (main, lam * jnp.sum((theta - prior) ** 2)), {}

    def step(c, k):
        theta, s = c
        idx = jax.random.choice(k, n, (batch,), replace=False)
        g, s, _ = balanced_grads(lambda t: losses(t, idx), theta, bal, s)
        return (theta - lr * g, s), None

    @jax.jit
    def train():
        theta0 = jnp.zeros(d)
        (theta, _), _ = jax.lax.scan(
            step, (theta0, bal.tx.init(theta0)), jax.random.split(k_run, steps)
        )
        return theta

    theta = train()
    # bilevel optimum: prior projected onto the solution set {X theta = y}
    star = prior - jnp.linalg.pinv(x) @ (x @ prior - y)
    return {
        "L_main": float(jnp.mean((x @ theta - y) ** 2)),
        "dist": float(optax.tree.norm(theta - star)),
    }


def main() -> None:
    for lam in (0.01, 0.1):
        for method in ("mixed", "project", "bloop"):
            rs = [run(method, lam, s) for s in range(3)]
            lm = sum(r["L_main"] for r in rs) / 3
            dist = sum(r["dist"] for r in rs) / 3
            print(f"lambda={lam:<5} {method:8s} L_main={lm:.4f}  |theta-theta*|={dist:.3f}")


if __name__ == "__main__":
    main()
