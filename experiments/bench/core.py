"""`rl-aux bench --suite core`: env steps/s of our learners beside the raw env (and a peer).

Every measurement runs in its own subprocess (XLA flags are fixed when a process starts its
backend), one after another, so all figures in a table come from the same machine state:
- `raw`: the vectorised env alone under a uniform-random policy, jitted `lax.scan`;
- `ours`: `vmap(agent.train_chunk)` over all seeds as one compiled program (rl-aux default:
  XLA:CPU's concurrency-optimized scheduler off, see rl_aux/__init__.py);
- `ours-xla-default`: the same with XLA's default scheduler (faster, deadlock-prone);
- `purejaxrl`: the peer's own `make_train`, when `--purejaxrl-harness` points to a harness.
Compile time is measured apart (AOT lower + compile); throughput = env steps / run seconds.
Each `ours` run also reports the chunk's FLOPs (experiments/bench/roofline.py) and its achieved
FLOP/s as a fraction of the matmul roofline measured at the start of the same run.
"""

from __future__ import annotations

import json
import os
import sys
import time

from experiments.bench.chunks import agent_torso
from experiments.bench.roofline import best_of, compile_with_cost, format_roof, fractions
from experiments.bench.runner import median_run, run_worker, watch, write_json

# (name, agent experiment, env, steps per seed used for timing)
SUITES = {
    "core": [
        ("ppo/CartPole-v1", "ppo_cartpole", "gymnax/CartPole-v1", 500_000),
        ("ppo/Breakout-MinAtar", "ppo_minatar", "gymnax/Breakout-MinAtar", 163_840 * 2),
        ("dqn/CartPole-v1", "dqn_cartpole", "gymnax/CartPole-v1", 100_000),
        ("dqn/Breakout-MinAtar", "dqn_cartpole", "gymnax/Breakout-MinAtar", 50_000),
    ],
}
PEER_CASES = {  # our case -> (peer algo, peer env)
    "ppo/CartPole-v1": ("ppo", "CartPole-v1"),
    "ppo/Breakout-MinAtar": ("ppo", "Breakout-MinAtar"),
    "dqn/CartPole-v1": ("dqn", "CartPole-v1"),
}


# ---------------------------------------------------------------------- workers (subprocess)
def _worker_ours(experiment: str, env: str, seeds: int, steps: int) -> dict:
    import jax

    from experiments.compose import gradient_batch, load_config
    from experiments.train import build_agent
    from rl_aux.cpu_threads import configure_cpu_threads
    from rl_aux.vectorize import init_seeds, vmapped_chunk

    cfg = load_config(
        [f"experiment={experiment}", f"env={env}", f"num_seeds={seeds}", f"total_timesteps={steps}"]
    )
    configure_cpu_threads(cfg.cpu_threads, agent_torso(cfg.agent), gradient_batch(cfg.agent))
    _, agent = build_agent(cfg)
    n_updates = max(steps // agent.steps_per_update, 1)
    state, axes = init_seeds(agent, seeds)
    state = jax.block_until_ready(state)
    fn = vmapped_chunk(agent, axes, n_updates, donate=False)
    compiled, compile_s, cost = compile_with_cost(fn, state)
    t0 = time.perf_counter()
    out = jax.block_until_ready(compiled(state))
    run_s = time.perf_counter() - t0
    env_steps = n_updates * agent.steps_per_update * seeds
    del out
    return {
        "compile_s": compile_s,
        "run_s": run_s,
        "env_steps": env_steps,
        "steps_per_s": env_steps / run_s,
        "num_envs": agent.cfg.num_envs,
        "updates": n_updates,
        **cost,
        "flops_per_update": cost["flops"] / n_updates,
    }


def _worker_raw(env: str, num_envs: int, steps: int) -> dict:
    import jax

    from envs import make_env

    venv = make_env(env, num_envs)
    n = max(steps // num_envs, 1)

    def roll(key):
        state, _ = venv.reset(key)

        def body(c, k):
            s, acc = c
            k1, k2 = jax.random.split(k)
            a = jax.random.randint(k1, (num_envs,), 0, venv.spec.num_actions)
            s, ts = venv.step(s, a, k2)
            return (s, acc + ts.reward.sum()), None

        (_, acc), _ = jax.lax.scan(body, (state, 0.0), jax.random.split(key, n))
        return acc

    fn = jax.jit(roll)
    t0 = time.perf_counter()
    compiled = fn.lower(jax.random.PRNGKey(0)).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(jax.random.PRNGKey(1)))
    run_s = time.perf_counter() - t0
    return {
        "compile_s": compile_s,
        "run_s": run_s,
        "env_steps": n * num_envs,
        "steps_per_s": n * num_envs / run_s,
        "num_envs": num_envs,
    }


def _run_peer(
    harness: str, python: str, algo: str, env: str, seeds: int, steps: int, num_envs: int
) -> dict:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "peer.json")
        cmd = [
            python,
            harness,
            "--algo",
            algo,
            "--env",
            env,
            "--seeds",
            str(seeds),
            "--total-timesteps",
            str(steps),
            "--num-envs",
            str(num_envs),
            "--json",
            out,
        ]
        code, stdout, stderr = watch(cmd, dict(os.environ), 7200, 60)
        if code != 0 or not os.path.exists(out):
            return {"error": (stderr or stdout).strip().splitlines()[-1:]}
        r = json.load(open(out))
    return {
        "compile_s": r.get("lower_s", 0.0) + r.get("compile_s", 0.0),
        "run_s": r["run_s"],
        "env_steps": r.get("actual_env_steps", steps * seeds),
        "steps_per_s": r.get("actual_env_steps_per_s", r["env_steps_per_s"]),
    }


def run_suite(
    suite: str,
    seeds_list: list[int],
    harness: str | None,
    peer_python: str,
    scale: float,
    xla_default: bool,
    repeats: int = 3,
    cases: list[str] | None = None,
    roof: dict | None = None,
) -> list[dict]:
    """Every case x seed count: ours (and peers) interleaved `repeats` times, then the raw env."""
    rows = []
    for name, experiment, env, steps in SUITES[suite]:
        if cases and name not in cases:
            continue
        steps = max(int(steps * scale), 1)
        for seeds in seeds_list:
            row = {"case": name, "seeds": seeds, "steps_per_seed": steps}
            ours_args = ["ours", experiment, env, str(seeds), str(steps)]
            measure = {"ours": lambda: run_worker(ours_args)}
            if xla_default:
                fast_env = {"RL_AUX_XLA_CONCURRENT_SCHEDULER": "1"}
                measure["ours_xla_default"] = lambda: run_worker(ours_args, fast_env)
            if harness and name in PEER_CASES:
                algo, penv = PEER_CASES[name]
                num_envs = _num_envs(experiment, env)
                measure["purejaxrl"] = lambda: _run_peer(
                    harness, peer_python, algo, penv, seeds, steps, num_envs
                )
            # Interleave the contenders `repeats` times so load drift hits all of them alike.
            runs = {k: [] for k in measure}
            for _ in range(repeats):
                for k, fn in measure.items():
                    runs[k].append(fn())
            row.update({k: median_run(v) for k, v in runs.items()})
            if "error" not in row["ours"]:
                row["ours"].update(fractions(row["ours"]["flops"], row["ours"]["run_s"], roof))
            num_envs = row["ours"].get("num_envs", _num_envs(experiment, env))
            row["raw"] = run_worker(["raw", env, str(num_envs * seeds), str(steps * seeds)])
            rows.append(row)
            print(_format_row(row), file=sys.stderr, flush=True)
    return rows


def _num_envs(experiment: str, env: str) -> int:
    from experiments.compose import load_config

    return load_config([f"experiment={experiment}", f"env={env}"]).agent.num_envs


def _sps(r: dict | None) -> float | None:
    return r.get("steps_per_s") if r and "error" not in r else None


def _format_row(row: dict) -> str:
    def f(x, r=None):
        if r and "error" in r:
            return "  HUNG/ERR" if not x else f"{x / 1e3:9.1f}k"
        return f"{x / 1e3:9.1f}k" if x else "        -"

    ours, raw = _sps(row["ours"]), _sps(row["raw"])
    fast, peer = _sps(row.get("ours_xla_default")), _sps(row.get("purejaxrl"))
    ratio = f"{ours / peer:6.2f}" if ours and peer else "     -"
    ratio_fast = f"{fast / peer:6.2f}" if fast and peer else "     -"
    comp = row["ours"].get("compile_s")
    gf = row["ours"].get("flops_per_s")
    gflops = f"{gf / 1e9:8.2f}" if gf else f"{'-':>8}"
    roofs = [row["ours"].get(k) for k in ("roof_small", "roof_large")]
    roof = " ".join(f"{x:7.4f}" if x is not None else f"{'-':>7}" for x in roofs)
    return (
        f"{row['case']:<22} {row['seeds']:>5} {f(raw, row['raw'])} {f(ours, row['ours'])} "
        f"{f(fast, row.get('ours_xla_default'))} {f(peer, row.get('purejaxrl'))} "
        f"{ratio} {ratio_fast} {comp or 0:8.1f} "
        f"{gflops} {roof}"
    )


HEADER = (
    f"{'case':<22} {'seeds':>5} {'raw env':>10} {'ours':>10} {'ours-xla':>10} "
    f"{'purejaxrl':>10} {'ours/pj':>6} {'xla/pj':>6} {'compile':>8} {'GFLOP/s':>8} "
    f"{'roof s':>7} {'roof l':>7}"
)


def worker(kind: str, rest: list[str]) -> dict:
    """Run one measurement of this suite in this process (`experiments.bench --_worker`)."""
    if kind == "ours":
        return _worker_ours(rest[0], rest[1], int(rest[2]), int(rest[3]))
    if kind == "raw":
        return _worker_raw(rest[0], int(rest[1]), int(rest[2]))
    raise ValueError(f"unknown bench worker {kind!r}")


def main(
    seeds: list[int],
    harness: str | None,
    peer_python: str,
    scale: float,
    xla_default: bool,
    repeats: int,
    cases: list[str] | None,
    json_path: str | None,
) -> dict:
    """The core suite: roofline first, then every case; prints the table, writes the JSON."""
    print(HEADER, file=sys.stderr)
    roof = run_worker(["roofline", str(scale)])
    rows = run_suite("core", seeds, harness, peer_python, scale, xla_default, repeats, cases, roof)
    roof = best_of(roof, run_worker(["roofline", str(scale)]))
    for row in rows:  # against the better of the two roofline measurements
        if "error" not in row["ours"]:
            row["ours"].update(fractions(row["ours"]["flops"], row["ours"]["run_s"], roof))
    print("\n" + HEADER)
    for row in rows:
        print(_format_row(row))
    print(
        f"(env steps/s after compilation, median of {repeats} interleaved runs; "
        "compile = our AOT lower+compile seconds; GFLOP/s = the chunk's FLOPs / run seconds)"
    )
    print(format_roof(roof))
    for row in rows:
        o = row["ours"]
        if "error" not in o and o.get("flops_min", o["flops"]) < 0.9 * o["flops"]:
            print(
                f"{row['case']} x{row['seeds']}: a lax.cond (e.g. DQN before learning_starts) "
                f"makes its FLOPs an upper bound: {o['flops_min'] / 1e9:.2f} to "
                f"{o['flops'] / 1e9:.2f} GFLOP in the chunk"
            )
        for col in ("raw", "ours", "ours_xla_default", "purejaxrl"):
            if row.get(col) and "error" in row[col]:
                print(f"{row['case']} x{row['seeds']} {col}: {' '.join(row[col]['error'])}")
    result = {"suite": "core", "rows": rows, "roofline": roof}
    write_json(json_path, result)
    return result
