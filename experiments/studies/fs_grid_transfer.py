"""Fang & Stachenfeld (ICLR 2024) gridworld, goal moved halfway: do latent_pred arms learn faster?

Phase 1 trains Double DQN (uniform-random behaviour, eps = 1, greedy evaluation) to find goal A.
At the half, the goal moves to B; as in their `continual_transfer` protocol the replay is
flushed and the step counters restart, while the network, its target and the optimiser state
are kept. Arms are the variants of `experiment=fs_grid` (model-free; latent_pred with
gamma_pred 0 and 0.8), 5 seeds vmapped per arm. Each evaluation measures the greedy policy
exactly from every non-goal start cell: success, steps to goal and path optimality
(shortest / taken, 0 when the goal is not reached in 150 steps). Writes run dirs that
`rl-aux plot` reads and a summary JSON with per-phase AUCs and steps to 90% optimality.

    PYTHONPATH=. python -m experiments.studies.fs_grid_transfer --out runs/fs_grid_transfer
    rl-aux plot runs/fs_grid_transfer --metric eval/optimality --out runs/fs_grid_transfer/plots
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
import yaml

import rl_aux  # noqa: F401  (XLA flag first)
from envs.core import JaxVecEnv
from envs.fs_grid import MOVES, SIZE, FSGrid
from experiments.compose import load_config
from experiments.plot import bootstrap_mean_band
from experiments.train import build_agent
from rl_aux.heads.base import head_class
from rl_aux.sharding import to_host
from rl_aux.vectorize import vmapped_chunk, vmapped_init

GOAL_A = (6, 5)  # the env's default goal
GOAL_B = (1, 2)  # the moved goal: opposite half of the grid, 8 cells away from A


def greedy_paths(q: np.ndarray, goal: tuple[int, int], max_steps: int) -> np.ndarray:
    """Steps the greedy policy of a [64, 4] Q table takes to reach `goal` from each non-goal
    cell (max_steps + 1 when it never does); the env is deterministic, so this is exact."""
    goal_cell = goal[0] * SIZE + goal[1]
    starts = np.array([c for c in range(SIZE * SIZE) if c != goal_cell])
    greedy = q.argmax(-1)
    pos = np.stack([starts // SIZE, starts % SIZE], -1)
    steps = np.full(len(starts), max_steps + 1)
    for t in range(1, max_steps + 1):
        cell = pos[:, 0] * SIZE + pos[:, 1]
        pos = np.clip(pos + MOVES[greedy[cell]], 0, SIZE - 1)
        hit = (pos[:, 0] == goal[0]) & (pos[:, 1] == goal[1]) & (steps > max_steps)
        steps[hit] = t
    return steps


def path_metrics(q_tables: np.ndarray, goal: tuple[int, int], max_steps: int) -> dict:
    """Per-seed success, mean steps to goal and path optimality of the greedy policies."""
    goal_cell = goal[0] * SIZE + goal[1]
    cells = np.array([c for c in range(SIZE * SIZE) if c != goal_cell])
    shortest = np.abs(cells // SIZE - goal[0]) + np.abs(cells % SIZE - goal[1])
    out = {"success": [], "steps_to_goal": [], "optimality": []}
    for q in q_tables:
        steps = greedy_paths(q, goal, max_steps)
        ok = steps <= max_steps
        out["success"].append(ok.mean())
        out["steps_to_goal"].append(np.minimum(steps, max_steps).mean())
        out["optimality"].append(np.where(ok, shortest / np.maximum(steps, 1), 0.0).mean())
    return {k: np.asarray(v) for k, v in out.items()}


def agent_for_goal(cfg, goal: tuple[int, int]):
    """The config's agent on an FSGrid whose goal is `goal` (heads rebuilt on its spec)."""
    _, agent = build_agent(cfg)
    env = JaxVecEnv(FSGrid(goal=goal, **dict(cfg.env.options or {})), cfg.agent.num_envs)
    heads = [head_class(n)(h, env.spec) for n, h in cfg.heads.items()]
    moved = type(agent)(cfg.agent, env, heads, total_updates=agent.total_updates)
    return moved


def run_arm(label: str, overrides: list[str], args) -> dict:
    """Both phases for one arm, seeds vmapped; returns per-seed eval curves per phase."""
    aux = args.aux_set if any(o.startswith("head=") for o in overrides) else []
    cfg = load_config(
        ["experiment=fs_grid", *overrides, *args.set, *aux, f"num_seeds={args.seeds}"]
    )
    cfg = dataclasses.replace(cfg, total_timesteps=2 * args.phase_steps)
    n_envs = cfg.agent.num_envs
    per_chunk = max(args.eval_every // n_envs, 1)
    n_chunks = args.phase_steps // (per_chunk * n_envs)
    obs_all = FSGrid(**dict(cfg.env.options or {})).cell_obs()
    curves = {}
    state = None
    t0 = time.time()
    for phase, goal in enumerate((GOAL_A, GOAL_B)):
        agent = agent_for_goal(cfg, goal)
        hp = agent.default_hparams()
        keys = jnp.stack(
            [jax.random.fold_in(jax.random.PRNGKey(cfg.seed + s), phase) for s in range(args.seeds)]
        )
        hps = jax.tree.map(lambda x: jnp.stack([jnp.asarray(x)] * args.seeds), hp)
        init_fn, axes = vmapped_init(agent, keys[0], hp)
        fresh = init_fn(keys, hps)
        if state is None:
            state = fresh
        else:  # goal moved: keep the network, target and optimiser; flush replay and counters
            state = fresh.replace(
                params=state.params,
                target_params=state.target_params,
                aux_target=state.aux_target,
                opt_state=state.opt_state,
                bal_state=state.bal_state,
            )
        chunk = vmapped_chunk(agent, axes, per_chunk)
        q_fn = jax.jit(jax.vmap(lambda p: agent.net.apply(p["net"], obs_all)[0]["q"]))
        rows = []
        for c in range(n_chunks):
            state, m = chunk(state)
            m = to_host(m)
            ev = path_metrics(np.asarray(q_fn(state.params)), goal, agent.spec.max_episode_steps)
            step = phase * args.phase_steps + (c + 1) * per_chunk * n_envs
            losses = {k: np.asarray(v).mean(-1) for k, v in m.items() if k.startswith("aux/")}
            losses["losses/td"] = np.asarray(m["losses/td"]).mean(-1)
            rows.append({"global_step": step, **ev, **losses})
        curves[phase] = rows
        print(
            f"[{label}] phase {phase + 1} goal {goal}: final optimality "
            f"{np.round(rows[-1]['optimality'], 3).tolist()} ({time.time() - t0:.0f}s)",
            flush=True,
        )
    return curves


def write_run(path: str, label: str, curves: dict, seeds: int) -> None:
    """config.yaml + metrics.csv (one row per seed and eval point) for `rl-aux plot`."""
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.yaml"), "w") as f:
        yaml.safe_dump({"label": label, "env": {"name": "fsgrid/Open8x8 (goal moved)"}}, f)
    rows = [r for phase in sorted(curves) for r in curves[phase]]
    cols = ["eval/success", "eval/steps_to_goal", "eval/optimality"]
    extra = sorted(k for k in rows[0] if "/" in k)
    lines = [",".join(["global_step", "seed", "grid", *cols, *extra])]
    for r in rows:
        for s in range(seeds):
            vals = [r["success"][s], r["steps_to_goal"][s], r["optimality"][s]]
            vals += [r[k][s] for k in extra]
            lines.append(
                ",".join([str(r["global_step"]), str(s), "0", *(f"{v:.6g}" for v in vals)])
            )
    with open(os.path.join(path, "metrics.csv"), "w") as f:
        f.write("\n".join(lines) + "\n")


def summarise(curves: dict, threshold: float, phase_steps: int) -> dict:
    """Per phase: AUC of optimality (mean over evals) per seed with a 95% CI of the mean, and
    the env steps (since the phase began) to the first eval at or above `threshold`."""
    out = {}
    for phase, rows in curves.items():
        opt = np.stack([r["optimality"] for r in rows])  # [evals, seeds]
        steps = np.array([r["global_step"] for r in rows]) - phase * phase_steps
        auc = opt.mean(0)
        _, lo, hi = bootstrap_mean_band(auc[:, None])
        reach = []
        for s in range(opt.shape[1]):
            hit = np.nonzero(opt[:, s] >= threshold)[0]
            reach.append(int(steps[hit[0]]) if len(hit) else None)
        out[f"phase{phase + 1}"] = {
            "auc_per_seed": auc.round(4).tolist(),
            "auc_mean": float(auc.mean()),
            "auc_ci95": [float(lo[0]), float(hi[0])],
            "final_optimality": opt[-1].round(4).tolist(),
            f"steps_to_{threshold}": reach,
        }
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/fs_grid_transfer")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--phase-steps", type=int, default=20_000, help="env steps per goal")
    ap.add_argument("--eval-every", type=int, default=1_000, help="env steps")
    ap.add_argument("--threshold", type=float, default=0.9, help="optimality for steps-to")
    ap.add_argument("--arms", default="", help="comma list of fs_grid variants (default: all)")
    ap.add_argument("--set", nargs="*", default=[], help="extra config overrides (k=v)")
    ap.add_argument(
        "--aux-set",
        nargs="*",
        default=[],
        help="overrides for the auxiliary arms only, after --set (e.g. the negative-sampling "
        "weights heads.latent_pred.w_nbr=0.01 heads.latent_pred.w_rand=0.01 that they selected "
        "for shuffled observations)",
    )
    args = ap.parse_args(argv)
    variants = load_config(["experiment=fs_grid"]).variants
    arms = [a for a in args.arms.split(",") if a] or list(variants)
    unknown = [a for a in arms if a not in variants]
    if unknown:
        ap.error(f"--arms: unknown {unknown}; accepted: {', '.join(variants)}")
    summary = {"args": vars(args), "goal_a": GOAL_A, "goal_b": GOAL_B, "arms": {}}
    for label in arms:
        curves = run_arm(label, list(variants[label]), args)
        write_run(os.path.join(args.out, label), label, curves, args.seeds)
        summary["arms"][label] = summarise(curves, args.threshold, args.phase_steps)
        print(json.dumps({label: summary["arms"][label]}), flush=True)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
