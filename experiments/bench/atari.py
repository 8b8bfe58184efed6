"""`rl-aux bench --suite atari`: PPO and DQN env steps/s on Breakout (8 and 16 envs) beside
ale-py's raw vector env under a random policy, and the learners' achieved FLOP/s (the compiled
chunk's FLOPs, experiments/bench/roofline.py, / its run time) as a fraction of this machine's
matmul roofline measured in the same run.

Each figure comes from its own subprocess (experiments/bench/runner.py), one after another.
"""

from __future__ import annotations

import sys

import numpy as np

from experiments.bench import atari_peers
from experiments.bench.chunks import conv_override, time_chunk
from experiments.bench.roofline import best_of, format_roof, fractions
from experiments.bench.runner import run_worker, write_json

GAME = "Breakout"


def _worker_raw_ale(num_envs: int, steps: int) -> dict:
    """ale-py's AtariVectorEnv from Python (its own threads), uniform random actions."""
    from ale_py.vector_env import AtariVectorEnv

    from envs.atari import AtariConfig

    c = AtariConfig()
    env = AtariVectorEnv(
        "breakout",
        num_envs,
        repeat_action_probability=c.sticky_actions,
        noop_max=c.noop_max,
        use_fire_reset=c.fire_reset,
        reward_clipping=False,
    )
    env.reset(seed=0)
    return atari_peers.time_random_steps(env, env.single_action_space.n, num_envs, steps)


def _worker_learner(
    experiment: str,
    num_envs: int,
    updates: int,
    conv: str,
    backend: str = "ale",
    seeds: int = 1,
    batching: str = "vmap",
) -> dict:
    """One compiled chunk of `updates` learner updates (all `seeds` runs) after compilation."""
    over = [f"experiment={experiment}", f"agent.num_envs={num_envs}", *conv_override(conv)]
    over.append(f"env.options.backend={backend}")
    if experiment == "atari_dqn":  # learn from the first step; a buffer that fits the run
        over += ["agent.learning_starts=0", f"agent.buffer_size={num_envs * 2048}"]
    return time_chunk(over, updates, seeds, batching)


def worker(kind: str, args: list[str]) -> dict:
    """Run one measurement of this suite in this process (`experiments.bench --_worker`)."""
    if kind == "atari_raw":
        return _worker_raw_ale(int(args[0]), int(args[1]))
    if kind == "atari_raw_envpool":
        return atari_peers.worker_raw_envpool(int(args[0]), int(args[1]))
    if kind == "atari_env_scan":
        return atari_peers.worker_env_scan(args[0], int(args[1]), int(args[2]))
    if kind == "atari_serve":
        return atari_peers.serve_learner(args[0], int(args[1]), int(args[2]), args[3], args[4])
    if kind == "atari_runs":
        return time_chunk(args[3:], int(args[0]), int(args[1]), args[2])
    if kind == "atari_learner":
        experiment, envs, updates, conv, backend, seeds, batching = args
        return _worker_learner(
            experiment, int(envs), int(updates), conv, backend, int(seeds), batching
        )
    raise ValueError(f"unknown bench worker {kind!r}")


CASES = [  # (name, experiment, updates per timed chunk)
    ("ppo", "atari_ppo", 1),  # 1 update = num_envs x 128 steps
    ("dqn", "atari_dqn", 16),  # 16 iterations = 16 x num_envs steps, 32 gradient steps
]


def run(
    num_envs_list: list[int],
    conv: str,
    raw_steps: int,
    backends: tuple[str, ...] = ("ale",),
    peers: dict | None = None,
    repeats: int = 3,
    algos: tuple[str, ...] = ("ppo", "dqn"),
    multi_seed: int = 0,
) -> dict:
    """Raw env figures for every backend; then our learners (on backends[0]) alone at each
    env count, or, with `peers` (a CleanRL harness), side by side with CleanRL."""
    roof = run_worker(["roofline"])
    raw_rows = []
    for n in num_envs_list:
        for b in backends:
            host = run_worker(["atari_raw" if b == "ale" else "atari_raw_envpool", str(n),
                                str(raw_steps)])  # fmt: skip
            scan = run_worker(["atari_env_scan", b, str(n), str(raw_steps)])
            raw_rows.append({"backend": b, "num_envs": n, "host": host, "ours_env": scan})
            print(format_raw_row(raw_rows[-1]), file=sys.stderr, flush=True)
    out = {"suite": "atari", "roofline": roof, "raw": raw_rows, "rows": [], "peer_rows": []}
    if peers is not None:
        out["peer_rows"] = atari_peers.run_peers(
            num_envs_list[0], conv, backends[0], repeats=repeats, algos=algos, **peers
        )
        out["roofline"] = roof = best_of(roof, run_worker(["roofline"]))
        for row in out["peer_rows"]:
            ours = row["ours"]
            if "error" not in ours and ours.get("flops"):
                win_s = ours["steps_per_window"] / ours["steps_per_s"]
                row.update(fractions(ours["flops"], win_s, roof))
        return out
    for n in num_envs_list:
        raw = next(r["host"] for r in raw_rows if r["num_envs"] == n)
        for name, experiment, updates in [c for c in CASES if c[0] in algos]:
            r = run_worker(
                ["atari_learner", experiment, str(n), str(updates), conv, backends[0], "1", "vmap"],
                timeout=5400,
                hang_s=300,
            )
            row = {"case": f"{name}/{GAME}", "num_envs": n, "conv": conv, "ours": r, "raw": raw}
            row["backend"] = backends[0]
            if "error" not in r:
                row.update(fractions(r["flops"], r["run_s"], roof))
            out["rows"].append(row)
            print(format_row(row), file=sys.stderr, flush=True)
    out["roofline"] = roof = best_of(roof, run_worker(["roofline"]))
    for row in out["rows"]:  # against the better of the two roofline measurements
        if "error" not in row["ours"]:
            row.update(fractions(row["ours"]["flops"], row["ours"]["run_s"], roof))
    if multi_seed > 1:
        out["batching_rows"] = run_batching_rows(multi_seed, repeats)
    return out


BATCHING_CASES = [  # (name, overrides, updates): a conv torso on a JAX-native env (Atari's
    # emulators are host state, one vector env for all seeds: they need run_batching=vmap)
    ("dqn/Breakout-MinAtar", ["experiment=dqn_minatar", "agent.learning_starts=0"], 200),
]


def run_batching_rows(seeds: int, repeats: int) -> list[dict]:
    """`seeds` runs in one program, vmapped against `lax.map`ped (run_batching), beside one run
    alone; interleaved subprocesses, median env steps/s (all runs) of `repeats` windows."""
    arms = [(1, "vmap"), (seeds, "vmap"), (seeds, "map")]
    rows = []
    for name, over, updates in BATCHING_CASES:
        got: dict = {arm: [] for arm in arms}
        for _ in range(repeats):
            for n, mode in arms:
                args = ["atari_runs", str(updates), str(n), mode, *over]
                r = run_worker(args, timeout=5400, hang_s=300)
                if "error" in r:
                    print(f"  {name} {n}x{mode}: {' '.join(r['error'])}", file=sys.stderr)
                got[(n, mode)].append(r.get("steps_per_s", float("nan")))
        med = {arm: float(np.median(v)) for arm, v in got.items()}
        windows = {f"{n}x{m}": v for (n, m), v in got.items()}
        row = {"case": name, "seeds": seeds, "one_run": med[arms[0]], "vmap": med[arms[1]],
               "map": med[arms[2]], "windows": windows}  # fmt: skip
        row["map_over_vmap"] = row["map"] / row["vmap"]
        rows.append(row)
        print(format_batching_row(row), file=sys.stderr, flush=True)
    return rows


BATCHING_HEADER = f"{'case':<22} {'seeds':>5} {'1 run':>8} {'vmap':>8} {'map':>8} {'map/vmap':>8}"


def format_batching_row(row: dict) -> str:
    return (
        f"{row['case']:<22} {row['seeds']:>5} {row['one_run']:8.1f} "
        f"{row['vmap']:8.1f} {row['map']:8.1f} {row['map_over_vmap']:8.2f}"
    )


RAW_HEADER = f"{'backend':<8} {'envs':>4} {'raw host':>9} {'our VecEnv':>10}"


def format_raw_row(row: dict) -> str:
    def f(r):
        return f"{r['steps_per_s']:.0f}" if "error" not in r else "error"

    return f"{row['backend']:<8} {row['num_envs']:>4} {f(row['host']):>9} {f(row['ours_env']):>10}"


HEADER = (
    f"{'case':<16} {'envs':>4} {'raw ale-py':>11} {'ours':>8} {'compile':>8} "
    f"{'GFLOP/s':>8} {'roof s':>7} {'roof l':>7}"
)


def format_row(row: dict) -> str:
    r, raw = row["ours"], row["raw"]
    if "error" in r:
        return f"{row['case']:<16} {row['num_envs']:>4} error: {' '.join(r['error'])}"
    raw_s = f"{raw['steps_per_s']:11.0f}" if "error" not in raw else "      error"
    fs, fl = row.get("roof_small"), row.get("roof_large")
    frac = lambda x: f"{x:7.3f}" if x is not None else f"{'-':>7}"
    return (
        f"{row['case']:<16} {row['num_envs']:>4} {raw_s} {r['steps_per_s']:8.1f} "
        f"{r['compile_s']:8.1f} {r['flops_per_s'] / 1e9:8.2f} "
        f"{frac(fs)} {frac(fl)}"
    )


def main(
    num_envs_list: list[int],
    conv: str,
    raw_steps: int,
    json_path: str | None,
    backends: tuple[str, ...] = ("ale",),
    peers: dict | None = None,
    repeats: int = 3,
    algos: tuple[str, ...] = ("ppo", "dqn"),
    multi_seed: int = 0,
) -> int:
    result = run(num_envs_list, conv, raw_steps, backends, peers, repeats, algos, multi_seed)
    print(RAW_HEADER)
    for row in result["raw"]:
        print(format_raw_row(row))
    print(
        "(raw Breakout env steps/s, random policy: 'raw host' = the backend's own Python "
        "vector env; 'our VecEnv' = envs/atari*.py in a jitted lax.scan)"
    )
    if result["rows"]:
        print("\n" + HEADER)
        for row in result["rows"]:
            print(format_row(row))
        print(f"(env steps/s after compilation; raw = {backends[0]} host vector env)")
    if result["peer_rows"]:
        print("\n" + atari_peers.PEER_HEADER)
        for row in result["peer_rows"]:
            print(atari_peers.format_peer_row(row))
            for col in ("ours", "cleanrl", "cleanrl_unrolled"):
                if "error" in row.get(col, {}):
                    print(f"  {row['case']} {col}: {' '.join(row[col]['error'])}")
        print(
            f"(env steps/s after compilation, median of {repeats} interleaved windows; ours on "
            f"the {backends[0]} backend; cl = CleanRL as published, clu = its epoch/minibatch "
            "scans unrolled)"
        )
        for row in result["peer_rows"]:
            if row.get("roof_large") is not None:
                print(
                    f"  {row['case']}: ours at {row['roof_small']:.3f} / {row['roof_large']:.3f} "
                    "of the small / large matmul roofline"
                )
    if result.get("batching_rows"):
        print("\n" + BATCHING_HEADER)
        for row in result["batching_rows"]:
            print(format_batching_row(row))
        print(
            "(env steps/s of all runs in one compiled chunk, median of interleaved windows: one "
            "run alone; the runs vmapped (run_batching=vmap); one after another (map). Atari's "
            "host emulators need vmap, so this is measured on MinAtar)"
        )
    print(format_roof(result["roofline"]))
    write_json(json_path, result)
    return 0
