"""BARFI on the 7x7 gridworld: does the learned blend undo a misaligned auxiliary reward?

Tabular softmax policy, A2C inner step (SGD) on r_phi = r_p + b_phi(s) + w_phi(s) r_aux with
GAE(gamma_phi), and a tabular primary critic for the outer objective. Arms: primary-only, naive
r_p + r_aux, BARFI with the one-step lookahead hypergradient, BARFI with the Neumann implicit
hypergradient. Everything for one arm is one jitted `lax.scan`, vmapped over seeds.

    python -m experiments.studies.barfi_grid --aux centre --out runs/barfi_grid
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import rl_aux  # noqa: F401  (XLA flags before the backend starts)
from agents.tabular_barfi import ARMS, GridExpConfig, build


def run_arm(cfg: GridExpConfig, arm: str, seeds: int = 16) -> dict:
    train = jax.jit(jax.vmap(build(cfg, arm).train))
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(seeds))
    return jax.tree.map(np.asarray, jax.block_until_ready(train(keys)))


def summarise(m: dict, tail: float = 0.1) -> dict:
    """Final success (last `tail` of iterations), AUC of success, both with 95% bootstrap CIs."""
    n = m["success"].shape[1]
    final = m["success"][:, -max(int(n * tail), 1) :].mean(1)
    auc = m["success"].mean(1)
    rng = np.random.default_rng(0)

    def ci(x):
        boot = rng.choice(x, (2000, x.size)).mean(1)
        return [float(x.mean()), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]

    return {
        "final_success": ci(final),
        "auc_success": ci(auc),
        "gamma_phi_final": float(m["gamma_phi"][:, -1].mean()),
    }


def plot(results: dict, aux: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    has_map = [a for a in ("lookahead", "neumann") if a in results]
    fig, axes = plt.subplots(1, 1 + len(has_map), figsize=(4.5 * (1 + len(has_map)), 3.8))
    axes = np.atleast_1d(axes)
    for arm, m in results.items():
        s = m["success"]
        k = max(s.shape[1] // 50, 1)
        sm = s[:, : s.shape[1] // k * k].reshape(s.shape[0], -1, k).mean(-1)
        x = np.arange(sm.shape[1]) * k
        mu, se = sm.mean(0), 1.96 * sm.std(0) / np.sqrt(sm.shape[0])
        axes[0].plot(x, mu, label=arm)
        axes[0].fill_between(x, mu - se, mu + se, alpha=0.2)
    axes[0].set(xlabel="iteration (16 episodes each)", ylabel="goal success", title=f"aux={aux}")
    axes[0].legend()
    for ax, arm in zip(axes[1:], has_map, strict=True):
        wm = results[arm]["w_map"].mean(0)
        lim = max(abs(wm).max(), 1e-6)
        im = ax.imshow(wm, cmap="RdBu", vmin=-lim, vmax=lim)
        ax.set_title(f"learned w_phi(s), {arm}")
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--aux", default="centre", choices=("centre", "distance"))
    p.add_argument("--arms", default=",".join(ARMS))
    p.add_argument("--seeds", type=int, default=16)
    p.add_argument("--iterations", type=int, default=GridExpConfig.iterations)
    p.add_argument("--meta-lr", type=float, default=GridExpConfig.meta_lr)
    p.add_argument("--reward-l2", type=float, default=GridExpConfig.reward_l2)
    p.add_argument("--out", default="runs/barfi_grid")
    a = p.parse_args(argv)
    cfg = GridExpConfig(
        aux=a.aux, iterations=a.iterations, meta_lr=a.meta_lr, reward_l2=a.reward_l2
    )
    os.makedirs(a.out, exist_ok=True)
    results, summary = {}, {}
    for arm in a.arms.split(","):
        t0 = time.time()
        results[arm] = run_arm(cfg, arm, a.seeds)
        summary[arm] = {**summarise(results[arm]), "seconds": time.time() - t0}
        if arm in ("lookahead", "neumann"):
            wm = results[arm]["w_map"].mean(0)
            summary[arm]["w_centre_max"] = float(wm[2:5, 2:5].max())
            summary[arm]["w_centre_mean"] = float(wm[2:5, 2:5].mean())
        print(arm, json.dumps(summary[arm]), flush=True)
    with open(os.path.join(a.out, f"summary_{a.aux}.json"), "w") as f:
        json.dump(
            {"config": dataclasses.asdict(cfg), "seeds": a.seeds, "arms": summary}, f, indent=1
        )
    plot(results, a.aux, os.path.join(a.out, f"barfi_grid_{a.aux}.png"))


if __name__ == "__main__":
    main()
