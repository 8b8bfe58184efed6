"""`rl-aux bench --suite atari`: PPO and DQN env steps/s on Breakout (8 and 16 envs) beside
ale-py's raw vector env under a random policy, and the learners' achieved FLOP/s (XLA's cost
analysis of the compiled chunk / its run time) as a fraction of measured dense-matmul FLOP/s.

Each figure comes from its own subprocess (rl_aux.bench's worker protocol), one after another.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

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
    return time_random_steps(env, env.single_action_space.n, num_envs, steps)


def time_random_steps(env, n_act: int, num_envs: int, steps: int) -> dict:
    """Env steps/s of uniform random actions on a host vector env (after 20 warm-up steps)."""
    import numpy as np

    rng = np.random.default_rng(0)
    for _ in range(20):
        env.step(rng.integers(0, n_act, num_envs))
    n = max(steps // num_envs, 1)
    t0 = time.perf_counter()
    for _ in range(n):
        env.step(rng.integers(0, n_act, num_envs))
    run_s = time.perf_counter() - t0
    return {"run_s": run_s, "env_steps": n * num_envs, "steps_per_s": n * num_envs / run_s}


def compiled_chunk(overrides: list[str], updates: int, seeds: int = 1, batching: str = "vmap"):
    """(agent, state of `seeds` runs, compiled chunk of `updates` updates, compile s, flops)."""
    import jax

    from experiments.config import load_config
    from experiments.train import build_agent
    from rl_aux.vectorize import init_seeds, vmapped_chunk

    _, agent = build_agent(load_config(overrides))
    state, axes = init_seeds(agent, seeds)
    state = jax.block_until_ready(state)
    fn = vmapped_chunk(agent, axes, updates, donate=False, batching=batching)
    t0 = time.perf_counter()
    compiled = fn.lower(state).compile()
    compile_s = time.perf_counter() - t0
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float(cost.get("flops", 0.0)) if cost else 0.0
    return agent, state, compiled, compile_s, flops


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


def time_chunk(over: list[str], updates: int, seeds: int = 1, batching: str = "vmap") -> dict:
    """Compile a chunk of `updates` updates for `seeds` runs, run it once, time a second run."""
    import jax

    agent, state, compiled, compile_s, flops = compiled_chunk(over, updates, seeds, batching)
    jax.block_until_ready(compiled(state))  # warm-up run (first-call allocations)
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(state))
    run_s = time.perf_counter() - t0
    steps = updates * agent.steps_per_update * seeds
    return {
        "compile_s": compile_s,
        "run_s": run_s,
        "env_steps": steps,
        "steps_per_s": steps / run_s,
        "flops": flops,
        "flops_per_s": flops / run_s,
    }


def conv_override(conv: str) -> list[str]:
    """The override that sets the convolutions; none for `config` (the experiment's own)."""
    return [] if conv == "config" else [f"agent.network.conv={conv}"]


def _worker_matmul(n: int = 1024, reps: int = 20) -> dict:
    """Dense f32 matmul FLOP/s of this machine through XLA (the compute roofline)."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    jax.block_until_ready(f(a))
    t0 = time.perf_counter()
    for _ in range(reps):
        out = f(a)
    jax.block_until_ready(out)
    run_s = time.perf_counter() - t0
    return {"flops_per_s": 2 * n**3 * reps / run_s}


def worker(kind: str, args: list[str]) -> dict:
    from experiments import bench_atari_peers as peers

    if kind == "atari_raw":
        return _worker_raw_ale(int(args[0]), int(args[1]))
    if kind == "atari_raw_envpool":
        return peers.worker_raw_envpool(int(args[0]), int(args[1]))
    if kind == "atari_env_scan":
        return peers.worker_env_scan(args[0], int(args[1]), int(args[2]))
    if kind == "atari_serve":
        return peers.serve_learner(args[0], int(args[1]), int(args[2]), args[3], args[4])
    if kind == "atari_runs":
        return time_chunk(args[3:], int(args[0]), int(args[1]), args[2])
    if kind == "atari_learner":
        experiment, envs, updates, conv, backend, seeds, batching = args
        return _worker_learner(
            experiment, int(envs), int(updates), conv, backend, int(seeds), batching
        )
    return _worker_matmul()


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
    from experiments.bench import run_worker

    matmul = run_worker(["atari_matmul"])
    raw_rows = []
    for n in num_envs_list:
        for b in backends:
            host = run_worker(["atari_raw" if b == "ale" else "atari_raw_envpool", str(n),
                                str(raw_steps)])  # fmt: skip
            scan = run_worker(["atari_env_scan", b, str(n), str(raw_steps)])
            raw_rows.append({"backend": b, "num_envs": n, "host": host, "ours_env": scan})
            print(format_raw_row(raw_rows[-1]), file=sys.stderr, flush=True)
    out = {"suite": "atari", "matmul": matmul, "raw": raw_rows, "rows": [], "peer_rows": []}
    if peers is not None:
        from experiments.bench_atari_peers import run_peers

        out["peer_rows"] = run_peers(num_envs_list[0], conv, backends[0], repeats=repeats,
                                     algos=algos, **peers)  # fmt: skip
        for row in out["peer_rows"]:
            ours = row["ours"]
            if "error" not in ours and "error" not in matmul and ours.get("flops"):
                win_s = ours["steps_per_window"] / ours["steps_per_s"]
                row["flops_fraction"] = ours["flops"] / win_s / matmul["flops_per_s"]
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
            if "error" not in r and "error" not in matmul:
                row["flops_fraction"] = r["flops_per_s"] / matmul["flops_per_s"]
            out["rows"].append(row)
            print(format_row(row), file=sys.stderr, flush=True)
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
    from experiments.bench import run_worker

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
    f"{'GFLOP/s':>8} {'of matmul':>9}"
)


def format_row(row: dict) -> str:
    r, raw = row["ours"], row["raw"]
    if "error" in r:
        return f"{row['case']:<16} {row['num_envs']:>4} error: {' '.join(r['error'])}"
    raw_s = f"{raw['steps_per_s']:11.0f}" if "error" not in raw else "      error"
    frac = row.get("flops_fraction")
    return (
        f"{row['case']:<16} {row['num_envs']:>4} {raw_s} {r['steps_per_s']:8.1f} "
        f"{r['compile_s']:8.1f} {r['flops_per_s'] / 1e9:8.2f} "
        f"{(f'{frac:9.3f}' if frac is not None else '        -')}"
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
    mm = result["matmul"]
    if result["rows"]:
        print("\n" + HEADER)
        for row in result["rows"]:
            print(format_row(row))
        print(f"(env steps/s after compilation; raw = {backends[0]} host vector env)")
    if result["peer_rows"]:
        from experiments.bench_atari_peers import PEER_HEADER, format_peer_row

        print("\n" + PEER_HEADER)
        for row in result["peer_rows"]:
            print(format_peer_row(row))
            for col in ("ours", "cleanrl", "cleanrl_unrolled"):
                if "error" in row.get(col, {}):
                    print(f"  {row['case']} {col}: {' '.join(row[col]['error'])}")
        print(
            f"(env steps/s after compilation, median of {repeats} interleaved windows; ours on "
            f"the {backends[0]} backend; cl = CleanRL as published, clu = its epoch/minibatch "
            "scans unrolled)"
        )
        for row in result["peer_rows"]:
            if row.get("flops_fraction") is not None:
                print(f"  {row['case']}: ours at {row['flops_fraction']:.3f} of matmul FLOP/s")
    if result.get("batching_rows"):
        print("\n" + BATCHING_HEADER)
        for row in result["batching_rows"]:
            print(format_batching_row(row))
        print(
            "(env steps/s of all runs in one compiled chunk, median of interleaved windows: one "
            "run alone; the runs vmapped (run_batching=vmap); one after another (map). Atari's "
            "host emulators need vmap, so this is measured on MinAtar)"
        )
    if "error" not in mm:
        print(f"(dense 1024x1024 f32 matmul through XLA: {mm['flops_per_s'] / 1e9:.1f} GFLOP/s)")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=2)
    return 0
