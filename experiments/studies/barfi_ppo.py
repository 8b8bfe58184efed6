"""Summarise `rl-aux train experiment=barfi_ppo` (neural PPO on BARFI's gridworld): goal success
per arm with 95% bootstrap CIs over seeds, and a figure of success and the learned w_phi.
Every <run_root>/<arm>/metrics.csv is an arm (the experiment's four, and any other run there).

    rl-aux train experiment=barfi_ppo run_dir=runs/barfi_ppo_centre
    python -m experiments.studies.barfi_ppo runs/barfi_ppo_centre \
        --out docs/figures/barfi_ppo_centre
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import pandas as pd

ARMS = ("primary", "naive", "lookahead", "neumann")


def _ci(x: np.ndarray, rng) -> list[float]:
    boot = rng.choice(x, (2000, x.size)).mean(1)
    return [float(x.mean()), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]


def summarise(run_root: str, tail: float = 0.1) -> dict:
    """Per arm: final success (last `tail` of steps), AUC of success, final w_phi on active
    aux cells, each a [mean, low, high] over seeds; plus the seeds' curves for the figure."""
    rng = np.random.default_rng(0)
    out = {}
    found = sorted(a for a in os.listdir(run_root) if os.path.exists(f"{run_root}/{a}/metrics.csv"))
    for arm in [a for a in ARMS if a in found] + [a for a in found if a not in ARMS]:
        path = os.path.join(run_root, arm, "metrics.csv")
        d = pd.read_csv(path)
        curves = d.pivot_table(index="global_step", columns="seed", values="charts/success")
        cut = curves.index.max() * (1 - tail)
        s = {
            "seeds": int(curves.shape[1]),
            "steps": int(curves.index.max()),
            "final_success": _ci(curves[curves.index > cut].mean(0).to_numpy(), rng),
            "auc_success": _ci(curves.mean(0).to_numpy(), rng),
            "final_return": _ci(
                d[d.global_step > cut].groupby("seed")["charts/episodic_return"].mean().to_numpy(),
                rng,
            ),
            "solved_seeds": int((curves[curves.index > cut].mean(0) >= 0.9).sum()),
        }
        w_col = next((c for c in d.columns if c.endswith("_active")), None)
        if w_col:
            w = d.pivot_table(index="global_step", columns="seed", values=w_col)
            s["final_w_active"] = _ci(w[w.index > cut].mean(0).to_numpy(), rng)
            s["_w"] = w
        s["_curves"] = curves
        out[arm] = s
    return out


def plot(summary: dict, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, (arm, s) in enumerate(summary.items()):
        c, color = s["_curves"], f"C{i}"
        mu, se = c.mean(1), 1.96 * c.std(1) / np.sqrt(c.shape[1])
        axes[0].plot(c.index, mu, label=arm, color=color)
        lo, hi = np.clip(mu - se, 0, 1), np.clip(mu + se, 0, 1)
        axes[0].fill_between(c.index, lo, hi, alpha=0.2, color=color)
        if "_w" in s:
            w = s["_w"]
            axes[1].plot(w.index, w.mean(1), label=arm, color=color)
    axes[0].set(xlabel="env steps per seed", ylabel="goal success (mean, 95% CI)", title=title)
    axes[0].legend()
    axes[1].set(xlabel="env steps per seed", ylabel="w_phi where r_aux != 0", title="learned w")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_root")
    p.add_argument("--out", required=True, help="path prefix of the .json and .png written")
    a = p.parse_args(argv)
    summary = summarise(a.run_root)
    public = {
        arm: {k: v for k, v in s.items() if not k.startswith("_")} for arm, s in summary.items()
    }
    for arm, s in public.items():
        print(arm, json.dumps(s))
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out + ".json", "w") as f:
        json.dump({"run_root": a.run_root, "arms": public}, f, indent=1)
    plot(summary, a.out + ".png", os.path.basename(a.run_root.rstrip("/")))


if __name__ == "__main__":
    main()
