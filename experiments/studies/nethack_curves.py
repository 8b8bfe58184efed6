"""Learning-curve numbers of NetHack/MiniHack runs beside a random policy's, for notes.

    python -m experiments.studies.nethack_curves RUN_DIR [--bins 10] [--random-steps 20000]

Reads RUN_DIR/metrics.csv (written by `rl-aux train` on a host-stepped env), prints the
episode-weighted mean return (and, for MiniHack, success = return > 0.5) per step bin and
seed, and the same statistics of a uniform-random policy on the same task (NLEVecEnv,
16 envs), so a curve can be read against its floor.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np


def curve(run_dir: str, bins: int) -> dict:
    import pandas as pd

    df = pd.read_csv(os.path.join(run_dir, "metrics.csv"))
    out = {}
    edges = np.linspace(0, df["global_step"].max(), bins + 1)
    for seed, d in df.groupby("seed"):
        rows = []
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            w = d[(d["global_step"] > lo) & (d["global_step"] <= hi)]
            n = w["charts/episodes"].to_numpy()
            r = w["charts/episodic_return"].fillna(0).to_numpy()
            mean = float((n * r).sum() / n.sum()) if n.sum() else float("nan")
            succ = float("nan")
            if "charts/success" in w and n.sum():
                succ = float((n * w["charts/success"].fillna(0).to_numpy()).sum() / n.sum())
            rows.append((int(hi), mean, succ))
        out[int(seed)] = rows
    return out


def random_policy(task: str, steps: int, seed: int = 0) -> tuple[float, float, int]:
    """(mean return, success rate, episodes) of a uniform-random policy over `steps` steps."""
    from envs.nethack import NLEVecEnv

    env = NLEVecEnv(task, 16, {"num_workers": 2}, seed=seed)
    try:
        env.reset()
        rng = np.random.default_rng(seed)
        rets = []
        for _ in range(steps // 16):
            _, ts = env.step(None, rng.integers(0, env.spec.num_actions, 16))
            done = ts.terminated | ts.truncated
            rets += ts.extras["episode_return"][done].tolist()
    finally:
        env.close()
    r = np.asarray(rets)
    return float(r.mean()), float((r > 0.5).mean()), len(r)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--bins", type=int, default=10)
    p.add_argument("--random-steps", type=int, default=20_000)
    a = p.parse_args(argv)
    import yaml

    with open(os.path.join(a.run_dir, "config.yaml")) as f:
        task = yaml.safe_load(f)["env"]["name"]
    for seed, rows in curve(a.run_dir, a.bins).items():
        print(f"{task} seed {seed} return: " + " ".join(f"{s}:{r:.3f}" for s, r, _ in rows))
        if not all(np.isnan(x) for _, _, x in rows):
            print(f"{task} seed {seed} success: " + " ".join(f"{s}:{x:.2f}" for s, _, x in rows))
    if a.random_steps:
        mean, success, eps = random_policy(task, a.random_steps)
        print(f"{task} random policy: return {mean:.3f}, success {success:.2f} ({eps} episodes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
