"""Balancers on CartPole-v1 PPO with a helpful head (next obs) and a harmful head (noise, x5).

Arms: main-only (no heads), then both heads under each balancer, and a control with the noise
head cut from the torso (`fixed_detached`: it still trains its own parameters). Metric: area
under the training-return curve (mean episode return over training), 95% bootstrap CIs over
seeds, and the fraction of the (main-only - fixed) gap each balancer recovers. Every arm runs
under each gradient-clipping scope asked for (`agent.clip_scope`: one global norm, or one per
module), since the clip is where the noise head does its harm.

    python -m experiments.studies.balancer_cartpole --seeds 5 --steps 300000 \
        --out runs/balancer_cartpole
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import rl_aux  # noqa: F401  (XLA flags before the backend starts)
from experiments.compose import load_config
from experiments.train import build_agent
from rl_aux.vectorize import init_seeds, vmapped_chunk

ARMS = {
    "main_only": [],
    "fixed": ["agent.balancer=weighted_sum"],
    "fixed_detached": [
        "agent.balancer=weighted_sum",
        "heads.noise_target.stop_gradient_to_torso=true",
    ],
    "uncertainty": ["agent.balancer=uncertainty"],
    "pcgrad": ["agent.balancer=pcgrad"],
    "gcs": ["agent.balancer=gcs"],
    "bloop": ["agent.balancer=bloop", "agent.balancer.ema=0.1"],
    "auxinash": ["agent.balancer=auxinash"],
    "gradnorm": ["agent.balancer=gradnorm"],
}


def run_arm(
    arm: str,
    seeds: int,
    steps: int,
    noise_weight: float,
    clip_scope: str = "global",
    extra: tuple[str, ...] = (),
    noise_target: str = "iid",
) -> np.ndarray:
    """[seeds, updates] mean episode return of each update's rollout."""
    over = ["experiment=ppo_cartpole", f"num_seeds={seeds}", f"total_timesteps={steps}"]
    over += [f"agent.clip_scope={clip_scope}", *extra]
    if arm != "main_only":
        over += ["head=[next_obs,noise_target]", f"heads.noise_target.weight={noise_weight}"]
        over += [f"heads.noise_target.target={noise_target}"]
    cfg = load_config(over + ARMS[arm])  # the arm's own settings win over `extra`
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
    p.add_argument(
        "--noise-target",
        default="iid",
        choices=("iid", "random_fn"),
        help="the harmful head's target: fresh noise, or a fixed random function of the obs",
    )
    p.add_argument("--arms", default=",".join(ARMS))
    p.add_argument("--clip-scopes", default="global,per_module", help="agent.clip_scope values")
    p.add_argument(
        "--set", nargs="*", default=[], help="overrides for every arm, e.g. agent.lr=1e-3"
    )
    p.add_argument("--out", default="runs/balancer_cartpole")
    a = p.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(0)
    curves, summary = {}, {}
    for scope in a.clip_scopes.split(","):
        summary[scope] = {}
        for arm in a.arms.split(","):
            if arm not in ARMS:
                raise SystemExit(f"--arms: unknown arm {arm!r}; accepted: {', '.join(ARMS)}")
            t0 = time.time()
            c = curves[f"{scope}/{arm}"] = run_arm(
                arm, a.seeds, a.steps, a.noise_weight, scope, tuple(a.set), a.noise_target
            )
            auc = c.mean(1)
            summary[scope][arm] = {
                "auc": _ci(auc, rng),
                "per_seed_auc": auc.tolist(),
                "final": float(c[:, -20:].mean()),
                "seconds": time.time() - t0,
            }
            print(scope, arm, json.dumps(summary[scope][arm]), flush=True)
        arms = summary[scope]
        if "main_only" in arms and "fixed" in arms:
            top, low = arms["main_only"]["auc"][0], arms["fixed"]["auc"][0]
            for s in arms.values():
                s["gap_recovered"] = (s["auc"][0] - low) / (top - low) if top != low else None
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump({"args": vars(a), "scopes": summary}, f, indent=1)
    np.savez(os.path.join(a.out, "curves.npz"), **curves)
    _plot(curves, summary, os.path.join(a.out, "balancer_cartpole.png"))
    print(f"{'clip scope':11s} {'arm':15s} {'AUC [95% CI]':>24s}  gap recovered")
    for scope, arms in summary.items():
        for arm, s in arms.items():
            gap = s.get("gap_recovered")
            gap = "-" if gap is None else f"{gap:.2f}"
            print(
                f"{scope:11s} {arm:15s} {s['auc'][0]:7.1f} [{s['auc'][1]:6.1f}, {s['auc'][2]:6.1f}]"
                f"  {gap}"
            )


def _plot(curves: dict, summary: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scopes = list(summary)
    fig, axes = plt.subplots(len(scopes), 2, figsize=(11, 4 * len(scopes)), squeeze=False)
    for row, scope in zip(axes, scopes, strict=True):
        for arm in summary[scope]:
            c = curves[f"{scope}/{arm}"]
            k = max(c.shape[1] // 60, 1)
            sm = c[:, : c.shape[1] // k * k].reshape(c.shape[0], -1, k).mean(-1)
            row[0].plot(np.arange(sm.shape[1]) * k, sm.mean(0), label=arm)
        row[0].set(
            xlabel="PPO update (512 env steps)",
            ylabel="training return",
            title=f"CartPole-v1, clip_scope={scope}",
        )
        row[0].legend(fontsize=8)
        names = list(summary[scope])
        ci = np.array([summary[scope][n]["auc"] for n in names])
        row[1].barh(names, ci[:, 0], xerr=[ci[:, 0] - ci[:, 1], ci[:, 2] - ci[:, 0]])
        row[1].set(xlabel="area under the return curve (mean return), 95% CI", title=scope)
        row[1].set_xlim(ci[:, 1].min() - 20, ci[:, 2].max() + 10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
