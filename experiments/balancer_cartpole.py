"""Balancers on CartPole-v1 PPO with a helpful head (next obs) and a harmful head (noise, x5).

Arms: main-only (no heads), then both heads under each balancer. Metric: area under the
training-return curve (mean episode return over training), 95% bootstrap CIs over seeds, and
the fraction of the (main-only - fixed) gap each balancer recovers.

    python -m experiments.balancer_cartpole --seeds 5 --steps 300000 --out runs/balancer_cartpole
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import rl_aux  # noqa: F401  (XLA flags before the backend starts)
from experiments.config import load_config
from experiments.train import build_agent
from rl_aux.vectorize import init_seeds, vmapped_chunk

HEADS = "plugins=[rl_aux.heads.next_obs,rl_aux.heads.noise_target]"
ARMS = {
    "main_only": [],
    "fixed": ["agent.balancer=weighted_sum"],
    "uncertainty": ["agent.balancer=uncertainty"],
    "pcgrad": ["agent.balancer=pcgrad"],
    "gcs": ["agent.balancer=gcs"],
    "bloop": ["agent.balancer=bloop", "agent.bloop_ema=0.1"],
    "auxinash": ["agent.balancer=auxinash"],
    "gradnorm": ["agent.balancer=gradnorm"],
}


def run_arm(arm: str, seeds: int, steps: int, noise_weight: float) -> np.ndarray:
    """[seeds, updates] mean episode return of each update's rollout."""
    over = ["experiment=ppo_cartpole", f"num_seeds={seeds}", f"total_timesteps={steps}"]
    if arm != "main_only":
        over += [HEADS, "head=[next_obs,noise_target]", f"heads.noise_target.weight={noise_weight}"]
    cfg = load_config(over + ARMS[arm])
    _, agent = build_agent(cfg)
    n_updates = max(steps // agent.steps_per_update, 1)
    state, axes = init_seeds(agent, seeds)
    _, m = vmapped_chunk(agent, axes, n_updates)(state)
    ret = np.asarray(m["episode_return_sum"]) / np.maximum(np.asarray(m["episodes"]), 1)
    return ret


def _ci(x, rng):
    boot = rng.choice(x, (2000, x.size)).mean(1)
    return [float(x.mean()), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--steps", type=int, default=300_000)
    p.add_argument("--noise-weight", type=float, default=5.0)
    p.add_argument("--arms", default=",".join(ARMS))
    p.add_argument("--out", default="runs/balancer_cartpole")
    a = p.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(0)
    curves, summary = {}, {}
    for arm in a.arms.split(","):
        t0 = time.time()
        curves[arm] = run_arm(arm, a.seeds, a.steps, a.noise_weight)
        auc = curves[arm].mean(1)
        summary[arm] = {
            "auc": _ci(auc, rng),
            "per_seed_auc": auc.tolist(),
            "final": float(curves[arm][:, -20:].mean()),
            "seconds": time.time() - t0,
        }
        print(arm, json.dumps(summary[arm]), flush=True)
    if "main_only" in summary and "fixed" in summary:
        top, low = summary["main_only"]["auc"][0], summary["fixed"]["auc"][0]
        for s in summary.values():
            s["gap_recovered"] = (s["auc"][0] - low) / (top - low) if top != low else float("nan")
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump({"args": vars(a), "arms": summary}, f, indent=1)
    np.savez(os.path.join(a.out, "curves.npz"), **curves)
    _plot(curves, summary, os.path.join(a.out, "balancer_cartpole.png"))
    for arm, s in summary.items():
        print(
            f"{arm:12s} AUC {s['auc'][0]:7.1f} [{s['auc'][1]:.1f}, {s['auc'][2]:.1f}]"
            f"  gap recovered {s.get('gap_recovered', float('nan')):.2f}"
        )


def _plot(curves: dict, summary: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for arm, c in curves.items():
        k = max(c.shape[1] // 60, 1)
        sm = c[:, : c.shape[1] // k * k].reshape(c.shape[0], -1, k).mean(-1)
        x = np.arange(sm.shape[1]) * k
        axes[0].plot(x, sm.mean(0), label=arm)
    axes[0].set(xlabel="PPO update (512 env steps)", ylabel="training return", title="CartPole-v1")
    axes[0].legend(fontsize=8)
    names = list(summary)
    mu = [summary[n]["auc"][0] for n in names]
    err = [
        [m - summary[n]["auc"][1] for n, m in zip(names, mu, strict=True)],
        [summary[n]["auc"][2] - m for n, m in zip(names, mu, strict=True)],
    ]
    axes[1].barh(names, mu, xerr=err)
    axes[1].set(xlabel="area under the return curve (mean return), 95% CI")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
