"""`rl-aux bench --suite atari`: PPO and DQN env steps/s on Breakout (8 and 16 envs) beside
ale-py's raw vector env under a random policy, and the learners' achieved FLOP/s (XLA's cost
analysis of the compiled chunk / its run time) as a fraction of measured dense-matmul FLOP/s.

Each figure comes from its own subprocess (rl_aux.bench's worker protocol), one after another.
"""

from __future__ import annotations

import json
import sys
import time

GAME = "Breakout"


def _worker_raw_ale(num_envs: int, steps: int) -> dict:
    """ale-py's AtariVectorEnv from Python (its own threads), uniform random actions."""
    import numpy as np
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
    rng = np.random.default_rng(0)
    n_act = env.single_action_space.n
    for _ in range(20):
        env.step(rng.integers(0, n_act, num_envs))
    n = max(steps // num_envs, 1)
    t0 = time.perf_counter()
    for _ in range(n):
        env.step(rng.integers(0, n_act, num_envs))
    run_s = time.perf_counter() - t0
    return {"run_s": run_s, "env_steps": n * num_envs, "steps_per_s": n * num_envs / run_s}


def _worker_learner(experiment: str, num_envs: int, updates: int, conv: str) -> dict:
    """One compiled chunk of `updates` learner updates (1 seed) after compilation."""
    import jax

    from experiments.config import load_config
    from experiments.train import build_agent
    from rl_aux.vectorize import init_seeds, vmapped_chunk

    over = [
        f"experiment={experiment}",
        f"agent.num_envs={num_envs}",
        f"agent.network.conv={conv}",
    ]
    if experiment == "atari_dqn":  # learn from the first step; a buffer that fits the run
        over += ["agent.learning_starts=0", f"agent.buffer_size={num_envs * 2048}"]
    cfg = load_config(over)
    _, agent = build_agent(cfg)
    state, axes = init_seeds(agent, 1)
    state = jax.block_until_ready(state)
    fn = vmapped_chunk(agent, axes, updates, donate=False)
    t0 = time.perf_counter()
    compiled = fn.lower(state).compile()
    compile_s = time.perf_counter() - t0
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float(cost.get("flops", 0.0)) if cost else 0.0
    jax.block_until_ready(compiled(state))  # warm-up run (first-call allocations)
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(state))
    run_s = time.perf_counter() - t0
    steps = updates * agent.steps_per_update
    return {
        "compile_s": compile_s,
        "run_s": run_s,
        "env_steps": steps,
        "steps_per_s": steps / run_s,
        "flops": flops,
        "flops_per_s": flops / run_s,
    }


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
    if kind == "atari_raw":
        return _worker_raw_ale(int(args[0]), int(args[1]))
    if kind == "atari_learner":
        return _worker_learner(args[0], int(args[1]), int(args[2]), args[3])
    return _worker_matmul()


CASES = [  # (name, experiment, updates per timed chunk)
    ("ppo", "atari_ppo", 1),  # 1 update = num_envs x 128 steps
    ("dqn", "atari_dqn", 16),  # 16 iterations = 16 x num_envs steps, 32 gradient steps
]


def run(num_envs_list: list[int], conv: str, raw_steps: int) -> dict:
    from experiments.bench import _run_worker

    matmul = _run_worker(["atari_matmul"])
    rows = []
    for n in num_envs_list:
        raw = _run_worker(["atari_raw", str(n), str(raw_steps)])
        for name, experiment, updates in CASES:
            r = _run_worker(
                ["atari_learner", experiment, str(n), str(updates), conv], timeout=5400, hang_s=300
            )
            row = {"case": f"{name}/{GAME}", "num_envs": n, "conv": conv, "ours": r, "raw": raw}
            if "error" not in r and "error" not in matmul:
                row["flops_fraction"] = r["flops_per_s"] / matmul["flops_per_s"]
            rows.append(row)
            print(format_row(row), file=sys.stderr, flush=True)
    return {"suite": "atari", "matmul": matmul, "rows": rows}


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


def main(num_envs_list: list[int], conv: str, raw_steps: int, json_path: str | None) -> int:
    result = run(num_envs_list, conv, raw_steps)
    print(HEADER)
    for row in result["rows"]:
        print(format_row(row))
    mm = result["matmul"]
    if "error" not in mm:
        print(f"(dense 1024x1024 f32 matmul through XLA: {mm['flops_per_s'] / 1e9:.1f} GFLOP/s)")
    print("(env steps/s after compilation; raw = ale-py AtariVectorEnv, random policy)")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=2)
    return 0
