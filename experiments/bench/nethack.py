"""`rl-aux bench --suite nethack`: host-stepped NLE throughput, side by side, in one run.

Per task (NetHackScore, MiniHack-Room-5x5), each in its own subprocess, one after another:
- `single`: one env stepped in-process by a random policy (the per-core limit);
- `vec`: `NLEVecEnv` alone, random policy, 2 workers x 16 envs;
- `ppo-Nw`: recurrent PPO (experiment nethack_ppo / minihack_ppo, 16 envs, actor thread
  overlapping the update) with N = 2 and 8 workers; env steps/s over the timed updates,
  compilation (the first two updates) apart.
`vec` and `ppo-*` also report CPU ms per 1,024 env steps, of this process and of the NLE workers
(stepping and polling): with 2 cores, what the learner spends comes out of the workers' share.
Bars (issue 4): vec >= 1.5x single; PPO on MiniHack-Room (2 workers) >= 0.5x vec.
"""

from __future__ import annotations

import sys
import time

from experiments.bench.runner import cpu_seconds, run_worker, write_json

TASKS = (("nethack/Score-v0", "nethack_ppo"), ("minihack/Room-5x5-v0", "minihack_ppo"))


def worker(kind: str, rest: list[str]) -> dict:
    """Run one measurement in this process (called through `experiments.bench --_worker`)."""
    if kind == "nle_single":
        return _single(rest[0], float(rest[1]))
    if kind == "nle_vec":
        return _vec(rest[0], int(rest[1]), int(rest[2]), float(rest[3]))
    if kind == "nle_ppo":
        return _ppo(rest[0], rest[1], int(rest[2]), int(rest[3]))
    raise ValueError(f"unknown bench worker {kind!r}")


def _single(task: str, seconds: float) -> dict:
    import numpy as np

    from envs.nethack import single_env

    env = single_env(task)
    env.reset()
    rng = np.random.default_rng(0)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        _, _, term, trunc, _ = env.step(int(rng.integers(env.action_space.n)))
        n += 1
        if term or trunc:
            env.reset()
    dt = time.perf_counter() - t0
    env.close()
    return {"env_steps": n, "run_s": dt, "steps_per_s": n / dt}


def _vec(task: str, num_envs: int, workers: int, seconds: float) -> dict:
    import numpy as np

    from envs.nethack import NLEVecEnv

    env = NLEVecEnv(task, num_envs, {"num_workers": workers})
    env.reset()
    rng = np.random.default_rng(0)
    pids = env.worker_pids()
    n, t0, c0 = 0, time.perf_counter(), cpu_seconds(pids)
    while time.perf_counter() - t0 < seconds:
        env.step(None, rng.integers(0, env.spec.num_actions, num_envs))
        n += num_envs
    dt, c1 = time.perf_counter() - t0, cpu_seconds(pids)
    env.close()
    return {
        "env_steps": n,
        "run_s": dt,
        "steps_per_s": n / dt,
        "num_envs": num_envs,
        **_cpu_per_1024(c0, c1, n),
    }


def _cpu_per_1024(c0: tuple, c1: tuple, steps: int) -> dict:
    per = 1024e3 / steps
    return {"cpu_ms_per_1024": {"process": (c1[0] - c0[0]) * per, "workers": (c1[1] - c0[1]) * per}}


def _ppo(experiment: str, task: str, workers: int, updates: int) -> dict:
    import jax

    from agents.host_loop import HostPPO
    from experiments.compose import load_config
    from experiments.train import build_agent

    cfg = load_config(
        [f"experiment={experiment}", f"env={task}", f"env.options.num_workers={workers}"]
    )
    env, agent = build_agent(cfg)
    t0 = time.perf_counter()
    state = agent.init(jax.random.PRNGKey(0), agent.default_hparams())
    marks: list[float] = []
    cpu: list[tuple] = []
    pids = env.worker_pids()
    HostPPO(agent, env).train(
        state,
        updates + 2,
        jax.random.PRNGKey(1),
        lambda i, m, r, dt: (marks.append(time.perf_counter()), cpu.append(cpu_seconds(pids))),
    )
    env.close()
    spu = agent.steps_per_update
    run_s = marks[-1] - marks[1]
    steps = spu * (len(marks) - 2)
    return {
        "compile_s": marks[1] - t0,
        "env_steps": steps,
        "run_s": run_s,
        "steps_per_s": steps / run_s,
        "num_envs": agent.cfg.num_envs,
        **_cpu_per_1024(cpu[1], cpu[-1], steps),
    }


def run(seconds: float, updates: int, run_worker=run_worker) -> list[dict]:
    rows = []
    for task, experiment in TASKS:
        row = {"task": task}
        row["single"] = run_worker(["nle_single", task, str(seconds)], timeout=600)
        row["vec"] = run_worker(["nle_vec", task, "16", "2", str(seconds)], timeout=600)
        for w in (2, 8):
            row[f"ppo_{w}w"] = run_worker(
                ["nle_ppo", experiment, task, str(w), str(updates)], timeout=3600, hang_s=300
            )
        rows.append(row)
        print(format_row(row), flush=True)
    return rows


HEADER = (
    f"{'task':<22} {'single':>8} {'vec 2w16':>9} {'vec/sgl':>8} {'ppo 2w':>8} {'ppo 8w':>8} "
    f"{'ppo2w/vec':>10}"
)


def format_row(row: dict) -> str:
    sps = {k: (v or {}).get("steps_per_s") for k, v in row.items() if k != "task"}
    f = lambda x: f"{x:>8.0f}" if x else f"{'err':>8}"
    ratio = lambda a, b: f"{a / b:.2f}x" if a and b else "-"
    return (
        f"{row['task']:<22} {f(sps['single'])} {f(sps['vec']):>9} "
        f"{ratio(sps['vec'], sps['single']):>8} {f(sps['ppo_2w'])} {f(sps['ppo_8w'])} "
        f"{ratio(sps['ppo_2w'], sps['vec']):>10}"
    )


def format_cpu(row: dict) -> str:
    """CPU ms per 1,024 env steps, this process + NLE workers, of vec and the PPO runs."""

    def one(k: str) -> str:
        c = (row.get(k) or {}).get("cpu_ms_per_1024")
        return f"{k} {c['process']:.0f} + {c['workers']:.0f}" if c else f"{k} err"

    return f"{row['task']:<22} CPU ms/1024 steps (process + workers): " + ", ".join(
        one(k) for k in ("vec", "ppo_2w", "ppo_8w")
    )


def main(scale: float, json_path: str | None) -> int:
    """The nethack suite: every task's rows, printed, and the JSON when asked for."""
    print(HEADER, file=sys.stderr)
    rows = run(10.0 * scale, max(int(10 * scale), 2), run_worker)
    print("\n" + HEADER)
    for row in rows:
        print(format_row(row))
    print("(env steps/s; single = one in-process env; vec = NLEVecEnv alone, random policy)")
    for row in rows:
        print(format_cpu(row))
    write_json(json_path, {"suite": "nethack", "rows": rows})
    return 0
