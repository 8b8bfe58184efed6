"""Held-out future-prediction loss vs return over a sweep's checkpoints (DRL² evidence).

For every run directory (config.yaml + checkpoints/) under the given roots, every checkpoint is
restored and the `future` head's next-observation loss is measured on fresh episodes that were
never trained on (sampling policy, new env seeds). It is paired with the greedy evaluation
return the trainer logged at the same step. Writes a CSV, the Spearman correlation over all
(run, seed, checkpoint) points, and the first step each seed's evaluation reaches a threshold.

    python -m experiments.studies.future_analysis runs/future_tmaze --out runs/future_tmaze/analysis
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import scipy.stats
import yaml

import rl_aux  # noqa: F401  (XLA flag before any backend use)
from envs import make_env
from experiments.compose import build
from experiments.train import build_agent, grid_points
from rl_aux.checkpoint import Checkpointer
from rl_aux.heads.base import HeadInputs
from rl_aux.networks.network import network_initial_carry
from rl_aux.types import Transition
from rl_aux.vectorize import vmapped_init


def heldout_loss_fn(agent, env, head, steps: int):
    """(params, key) -> next-observation loss (total and per part) on `steps` fresh steps."""

    def fn(params, key):
        k_reset, k_run = jax.random.split(key)
        env_state, ts = env.reset(k_reset)
        n = env.num_envs
        carry0 = network_initial_carry(agent.cfg.network, n)

        def step(c, k):
            env_state, obs, carry, first = c
            k_act, k_env = jax.random.split(k)
            a, carry_out, out = agent.act(params, obs, carry, first, k_act)
            env_state, ts = env.step(env_state, a, k_env)
            tr = Transition(
                obs=obs,
                action=a,
                reward=ts.reward,
                terminated=ts.terminated,
                truncated=ts.truncated,
                next_obs=ts.extras["next_obs"],
            )
            return (env_state, ts.obs, carry_out, ts.done), (tr, out)

        init = (env_state, ts.obs, carry0, jnp.ones(n, bool))
        _, (tr, out) = jax.lax.scan(step, init, jax.random.split(k_run, steps))
        inp = HeadInputs(
            obs=tr.obs,
            action=tr.action,
            reward=tr.reward,
            terminated=tr.terminated,
            truncated=tr.truncated,
            next_obs=tr.next_obs,
            feats=out,
            num_actions=agent.spec.num_actions,
        )
        _, m = head.loss(params["heads"][head.name], inp, jax.random.PRNGKey(0))
        return {k: v for k, v in m.items() if k != "valid_frac"}

    return fn


def analyse_run(run_dir: Path, episodes: int, seed: int) -> pd.DataFrame:
    """One row per (seed, checkpoint): held-out loss and the logged eval return."""
    raw = yaml.safe_load((run_dir / "config.yaml").read_text())
    cfg = build(raw)
    _, agent = build_agent(cfg)
    head = next(h for h in agent.suite.heads if h.name == "future")
    env = make_env(cfg.env.name, episodes)
    hps = grid_points(cfg, agent.default_hparams())
    seeds = [cfg.seed + s for s in range(cfg.num_seeds)]
    keys = jnp.stack([jax.random.PRNGKey(s) for _ in hps for s in seeds])
    hp_batch = jax.tree.map(
        lambda *x: jnp.stack([jnp.asarray(v, jnp.float32) for v in x]),
        *[hps[g] for g in range(len(hps)) for _ in seeds],
    )
    init_fn, _ = vmapped_init(agent, keys[0], hps[0])
    like = jax.eval_shape(init_fn, keys, hp_batch)
    steps = 2 * env.spec.max_episode_steps
    loss_fn = jax.jit(jax.vmap(heldout_loss_fn(agent, env, head, steps)))
    metrics = pd.read_csv(run_dir / "metrics.csv")
    ev = metrics.dropna(subset=["eval/episodic_return"])
    ckpt = Checkpointer(str(run_dir / "checkpoints"), keep=1000)
    rows = []
    try:
        ckpt_steps = [int(d.name) for d in (run_dir / "checkpoints").iterdir() if d.name.isdigit()]
        for step in sorted(ckpt_steps):
            state, meta = ckpt.restore(step, like)
            gstep = int(meta["global_step"])
            ek = jnp.stack([jax.random.PRNGKey(seed + 7919 * i + step) for i in range(len(keys))])
            losses = {k: np.asarray(v) for k, v in loss_fn(state.params, ek).items()}
            for i, s in enumerate(seeds * len(hps)):
                r = ev[(ev.global_step == gstep) & (ev.seed == s)]["eval/episodic_return"]
                rows.append(
                    {
                        "run": run_dir.name,
                        "env": cfg.env.name,
                        "seed": s,
                        "global_step": gstep,
                        "heldout_next_obs_loss": float(losses["next_obs_loss"][i]),
                        **{f"heldout_{k}": float(v[i]) for k, v in losses.items()},
                        "eval_return": float(r.iloc[0]) if len(r) else np.nan,
                    }
                )
    finally:
        ckpt.close()
    return pd.DataFrame(rows)


def steps_to(metrics: pd.DataFrame, threshold: float) -> dict[int, float]:
    """Per seed: the first global step whose greedy evaluation return is >= threshold."""
    ev = metrics.dropna(subset=["eval/episodic_return"])
    out = {}
    for s, d in ev.groupby("seed"):
        hit = d[d["eval/episodic_return"] >= threshold]
        out[int(s)] = float(hit.global_step.min()) if len(hit) else np.nan
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("roots", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--episodes", type=int, default=32, help="held-out envs per checkpoint")
    p.add_argument("--threshold", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=123_457)
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    run_dirs = sorted({c.parent for r in args.roots for c in Path(r).rglob("config.yaml")})
    frames, lines = [], []
    for rd in run_dirs:
        if not (rd / "checkpoints").is_dir():
            continue
        df = analyse_run(rd, args.episodes, args.seed)
        df["group"] = rd.parent.name
        frames.append(df)
        st = steps_to(pd.read_csv(rd / "metrics.csv"), args.threshold)
        v = np.array(list(st.values()))
        reached = np.isfinite(v)
        lines.append(
            f"{rd.parent.name}/{rd.name}: steps to eval >= {args.threshold}: per seed "
            f"{[None if np.isnan(x) else int(x) for x in v]}; reached {reached.sum()}/{len(v)}; "
            f"median {np.median(np.where(reached, v, np.inf)):.0f}"
        )
        print(lines[-1], flush=True)
    alldf = pd.concat(frames, ignore_index=True)
    alldf.to_csv(os.path.join(args.out, "heldout_vs_return.csv"), index=False)
    ok = alldf.dropna(subset=["eval_return"])
    rho, pval = scipy.stats.spearmanr(ok.heldout_next_obs_loss, ok.eval_return)
    lines.append(
        f"Spearman(heldout next-obs loss, eval return) = {rho:.3f} (p={pval:.2g}, n={len(ok)})"
    )
    for g, d in ok.groupby("group"):
        r, pv = scipy.stats.spearmanr(d.heldout_next_obs_loss, d.eval_return)
        lines.append(f"  {g}: rho = {r:.3f} (p={pv:.2g}, n={len(d)})")
    for col in sorted(c for c in ok.columns if c.startswith("heldout_part")):
        r, pv = scipy.stats.spearmanr(ok[col], ok.eval_return)
        lines.append(f"  part loss {col}: rho = {r:.3f} (p={pv:.2g}, n={len(ok)})")
    print("\n".join(lines[len(run_dirs) :]))
    Path(args.out, "summary.txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
