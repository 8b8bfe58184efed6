"""`rl-aux bench`: env steps/s of our learners beside the raw env (and a peer), in one run.

Every measurement runs in its own subprocess (XLA flags are fixed when a process starts its
backend), one after another, so all figures in a table come from the same machine state:
- `raw`: the vectorised env alone under a uniform-random policy, jitted `lax.scan`;
- `ours`: `vmap(agent.train_chunk)` over all seeds as one compiled program (rl-aux default:
  XLA:CPU's concurrency-optimized scheduler off, see rl_aux/__init__.py);
- `ours-xla-default`: the same with XLA's default scheduler (faster, deadlock-prone);
- `purejaxrl`: the peer's own `make_train`, when `--purejaxrl-harness` points to a harness.
Compile time is measured apart (AOT lower + compile); throughput = env steps / run seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

# (name, agent experiment, env, steps per seed used for timing)
SUITES = {
    "core": [
        ("ppo/CartPole-v1", "ppo_cartpole", "gymnax/CartPole-v1", 500_000),
        ("ppo/Breakout-MinAtar", "ppo_minatar", "gymnax/Breakout-MinAtar", 163_840 * 2),
        ("dqn/CartPole-v1", "dqn_cartpole", "gymnax/CartPole-v1", 100_000),
        ("dqn/Breakout-MinAtar", "dqn_cartpole", "gymnax/Breakout-MinAtar", 50_000),
    ],
}
# `--suite blend`: the BARFI blend's cost per update against the plain learner (the same
# tabular A2C gridworld learner on the fixed naive blend), iterations timed per arm.
BLEND_ARMS = ("naive", "lookahead", "neumann")
BLEND_ITERATIONS = 400
# ... and on the neural PPO learner (experiment=barfi_ppo on barfi/grid-centre): plain PPO
# (reward=env) against PPO with the blend, per update (16 envs x 64 steps, 4 x 4 minibatches).
BLEND_PPO_ARMS = {
    "plain": [],
    "naive": ["reward=blend", "reward.hypergrad=none"],
    "lookahead": ["reward=blend", "reward.hypergrad=lookahead"],
    "neumann": ["reward=blend", "reward.hypergrad=neumann"],
}
BLEND_PPO_UPDATES = 50
PEER_CASES = {  # our case -> (peer algo, peer env)
    "ppo/CartPole-v1": ("ppo", "CartPole-v1"),
    "ppo/Breakout-MinAtar": ("ppo", "Breakout-MinAtar"),
    "dqn/CartPole-v1": ("dqn", "CartPole-v1"),
}


# ---------------------------------------------------------------------- workers (subprocess)
def _worker_ours(experiment: str, env: str, seeds: int, steps: int) -> dict:
    import jax

    from experiments.config import load_config, torso_name
    from experiments.train import build_agent
    from rl_aux.cpu_threads import configure_cpu_threads
    from rl_aux.vectorize import init_seeds, vmapped_chunk

    cfg = load_config(
        [f"experiment={experiment}", f"env={env}", f"num_seeds={seeds}", f"total_timesteps={steps}"]
    )
    configure_cpu_threads(cfg.cpu_threads, torso_name(cfg.agent))
    _, agent = build_agent(cfg)
    n_updates = max(steps // agent.steps_per_update, 1)
    state, axes = init_seeds(agent, seeds)
    state = jax.block_until_ready(state)
    fn = vmapped_chunk(agent, axes, n_updates, donate=False)
    t0 = time.perf_counter()
    compiled = fn.lower(state).compile()
    compile_s = time.perf_counter() - t0
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


def _worker_blend(arm: str, seeds: int, iterations: int) -> dict:
    import jax
    import jax.numpy as jnp

    from experiments.barfi_grid import GridExpConfig, build

    cfg = GridExpConfig(iterations=iterations)
    fn = jax.jit(jax.vmap(build(cfg, arm).train))
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(seeds))
    t0 = time.perf_counter()
    compiled = fn.lower(keys).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(keys))
    run_s = time.perf_counter() - t0
    return {"compile_s": compile_s, "run_s": run_s, "s_per_update": run_s / iterations}


def _worker_blend_ppo(seeds: int, updates: int, repeats: int) -> dict:
    """Every PPO arm compiled in one process, then timed interleaved (arm by arm, `repeats`
    rounds): the machine's load drifts between rounds, not between arms."""
    import jax

    from experiments.config import load_config, torso_name
    from experiments.train import build_agent
    from rl_aux.cpu_threads import configure_cpu_threads
    from rl_aux.vectorize import init_seeds, vmapped_chunk

    progs, out = {}, {}
    for arm, extra in BLEND_PPO_ARMS.items():
        cfg = load_config(["experiment=barfi_ppo", f"num_seeds={seeds}", *extra])
        configure_cpu_threads(cfg.cpu_threads, torso_name(cfg.agent))
        _, agent = build_agent(cfg)
        state, axes = init_seeds(agent, seeds)
        t0 = time.perf_counter()
        compiled = vmapped_chunk(agent, axes, updates, donate=False).lower(state).compile()
        out[arm] = {"compile_s": time.perf_counter() - t0, "runs_s": []}
        jax.block_until_ready(compiled(state))  # warm-up
        progs[arm] = (compiled, state)
    for _ in range(repeats):
        for arm, (compiled, state) in progs.items():
            t0 = time.perf_counter()
            jax.block_until_ready(compiled(state))
            out[arm]["runs_s"].append(time.perf_counter() - t0)
    for r in out.values():  # the fastest round: the least disturbed by other processes
        r["run_s"] = min(r["runs_s"])
        r["s_per_update"] = r["run_s"] / updates
    return out


def run_blend_suite(seeds_list: list[int], scale: float, repeats: int = 3) -> list[dict]:
    """Seconds per outer iteration of each blend arm, and the ratio to the plain learner:
    the tabular A2C gridworld learner, then neural PPO with and without the blend."""
    iters = max(int(BLEND_ITERATIONS * scale), 1)
    updates = max(int(BLEND_PPO_UPDATES * scale), 1)
    rows = []
    for seeds in seeds_list:
        row = {"case": "blend/ppo-grid", "seeds": seeds, "updates": updates}
        res = run_worker(["blend_ppo", str(seeds), str(updates), str(repeats)])
        for arm in BLEND_PPO_ARMS:
            row[arm] = res.get(arm, res)  # an error dict applies to every arm
        base = row["plain"].get("s_per_update")
        for arm in list(BLEND_PPO_ARMS)[1:]:
            t = row[arm].get("s_per_update")
            row[f"{arm}_ratio"] = t / base if t and base else None
        rows.append(row)
    for seeds in seeds_list:
        row = {"case": "blend/barfi-grid", "seeds": seeds, "iterations": iters}
        for arm in BLEND_ARMS:
            row[arm] = run_worker(["blend", arm, str(seeds), str(iters)])
        base = row["naive"].get("s_per_update")
        for arm in BLEND_ARMS[1:]:
            t = row[arm].get("s_per_update")
            row[f"{arm}_ratio"] = t / base if t and base else None
        rows.append(row)
    return rows


def _format_blend_ppo(row: dict) -> str:
    def ms(arm):
        r = row[arm]
        return f"{r['s_per_update'] * 1e3:9.1f}" if "s_per_update" in r else "  HUNG/ERR"

    ratios = [row.get(f"{a}_ratio") for a in list(BLEND_PPO_ARMS)[1:]]
    return (
        f"{row['case']:<18} {row['seeds']:>5} "
        + " ".join(ms(a) for a in BLEND_PPO_ARMS)
        + (" " + " ".join(f"{x:7.2f}x" if x else "       -" for x in ratios))
    )


BLEND_PPO_HEADER = (
    f"{'case':<18} {'seeds':>5} {'plain ms':>9} {'naive ms':>9} {'look. ms':>9} "
    f"{'neum. ms':>9} {'naive/pl':>8} {'look/pl':>8} {'neum/pl':>8}"
)


def _format_blend(row: dict) -> str:
    def ms(arm):
        r = row[arm]
        return f"{r['s_per_update'] * 1e3:9.2f}" if "s_per_update" in r else "  HUNG/ERR"

    def ratio(arm):
        x = row.get(f"{arm}_ratio")
        return f"{x:7.2f}x" if x else "       -"

    return (
        f"{row['case']:<18} {row['seeds']:>5} {ms('naive')} {ms('lookahead')} {ms('neumann')} "
        f"{ratio('lookahead')} {ratio('neumann')}"
    )


BLEND_HEADER = (
    f"{'case':<18} {'seeds':>5} {'plain ms':>9} {'look. ms':>9} {'neum. ms':>9} "
    f"{'look/pl':>8} {'neum/pl':>8}"
)


# ---------------------------------------------------------------------- driver
def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _watch(cmd: list[str], env: dict, timeout: float, hang_s: float) -> tuple[int, str, str]:
    """Run cmd; kill it if it uses no CPU for `hang_s` seconds (an XLA:CPU deadlock leaves
    every thread idle) or runs past `timeout`. Returns (returncode, stdout, stderr)."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        start = last_change = time.time()
        last_cpu = -1.0
        while p.poll() is None:
            time.sleep(1.0)
            try:
                cpu = _cpu_seconds(p.pid)
            except OSError:
                continue
            now = time.time()
            if cpu > last_cpu + 0.05:
                last_cpu, last_change = cpu, now
            if now - last_change > hang_s or now - start > timeout:
                p.kill()
                p.wait()
                why = "deadlocked: no CPU progress" if now - start <= timeout else "timed out"
                return -9, "", f"{why} after {now - start:.0f}s"
        out.seek(0)
        err.seek(0)
        return p.returncode, out.read(), err.read()


def run_worker(
    args: list[str], env_extra: dict | None = None, timeout: float = 3600, hang_s: float = 60
) -> dict:
    """One bench measurement in a fresh `experiments.bench --_worker` process: its JSON result,
    or {"error": [last line]} when it fails or hangs (fresh processes keep timings apart)."""
    env = dict(os.environ, **(env_extra or {}))
    cmd = [sys.executable, "-m", "experiments.bench", "--_worker", *args]
    code, out, err = _watch(cmd, env, timeout, hang_s)
    if code != 0:
        return {"error": (err or out).strip().splitlines()[-1:]}
    return json.loads(out.strip().splitlines()[-1])


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
        code, stdout, stderr = _watch(cmd, dict(os.environ), 7200, 60)
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
) -> list[dict]:
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
            row.update({k: _median_run(v) for k, v in runs.items()})
            num_envs = row["ours"].get("num_envs", _num_envs(experiment, env))
            row["raw"] = run_worker(["raw", env, str(num_envs * seeds), str(steps * seeds)])
            rows.append(row)
            print(_format_row(row), file=sys.stderr, flush=True)
    return rows


def _num_envs(experiment: str, env: str) -> int:
    from experiments.config import load_config

    return load_config([f"experiment={experiment}", f"env={env}"]).agent.num_envs


def _median_run(results: list[dict]) -> dict:
    """The run with the median steps/s (all repeats' steps/s kept); errors win: a hang is news."""
    bad = [r for r in results if "error" in r]
    if bad:
        return bad[0]
    ordered = sorted(results, key=lambda r: r["steps_per_s"])
    med = dict(ordered[(len(ordered) - 1) // 2])
    med["repeats_steps_per_s"] = [r["steps_per_s"] for r in results]
    return med


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
    return (
        f"{row['case']:<22} {row['seeds']:>5} {f(raw, row['raw'])} {f(ours, row['ours'])} "
        f"{f(fast, row.get('ours_xla_default'))} {f(peer, row.get('purejaxrl'))} "
        f"{ratio} {ratio_fast} {comp or 0:8.1f}"
    )


HEADER = (
    f"{'case':<22} {'seeds':>5} {'raw env':>10} {'ours':>10} {'ours-xla':>10} "
    f"{'purejaxrl':>10} {'ours/pj':>6} {'xla/pj':>6} {'compile':>8}"
)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--_worker":
        kind, rest = argv[1], argv[2:]
        if kind.startswith("atari_"):
            from experiments.bench_atari import worker

            out = worker(kind, rest)
        elif kind == "ours":
            out = _worker_ours(rest[0], rest[1], int(rest[2]), int(rest[3]))
        elif kind == "blend":
            out = _worker_blend(rest[0], int(rest[1]), int(rest[2]))
        elif kind == "blend_ppo":
            out = _worker_blend_ppo(int(rest[0]), int(rest[1]), int(rest[2]))
        elif kind.startswith("nle_"):
            from experiments import bench_nethack

            out = bench_nethack.worker(kind, rest)
        elif kind.startswith("llm_"):
            from experiments import bench_llm

            out = bench_llm.worker(kind, rest)
        else:
            out = _worker_raw(rest[0], int(rest[1]), int(rest[2]))
        print(json.dumps(out))
        return 0
    p = argparse.ArgumentParser(prog="rl-aux bench", description=__doc__.splitlines()[0])
    p.add_argument(
        "--suite", default="core", choices=sorted([*SUITES, "atari", "blend", "llm", "nethack"])
    )
    p.add_argument("--num-envs", default="8,16", help="atari suite: comma-separated env counts")
    p.add_argument(
        "--conv",
        default="config",
        choices=("config", "patches", "lax", "canonical"),
        help="atari suite: agent.network.conv (config: each experiment's own)",
    )
    p.add_argument("--algos", default="ppo,dqn", help="atari suite: learners to time")
    p.add_argument("--backend", default="ale,envpool", help="atari suite: env backends (raw "
                   "figures for each; the learners use the first)")  # fmt: skip
    p.add_argument("--cleanrl-harness", help="atari suite: CleanRL harness (docs/atari.md)")
    p.add_argument("--cleanrl-dir", help="atari suite: CleanRL scripts (default: the harness's)")
    p.add_argument("--cleanrl-variants", default="published,unrolled",
                   help="atari suite: CleanRL PPO published and/or unrolled")  # fmt: skip
    p.add_argument("--multi-seed", type=int, default=0, help="atari suite: also time this many "
                   "runs in one program, vmapped vs mapped (run_batching)")  # fmt: skip
    p.add_argument("--log-dir", default="bench_logs", help="atari suite: contenders' stderr")
    p.add_argument("--json", help="write all measurements to this JSON file")
    p.add_argument("--seeds", default="1,8", help="comma-separated vmapped seed counts")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every case's steps")
    p.add_argument(
        "--xla-default",
        action="store_true",
        help="also measure ours with XLA's default (deadlock-prone) scheduler",
    )
    p.add_argument("--repeats", type=int, default=3, help="interleaved runs per contender")
    p.add_argument("--cases", help="comma-separated case names (default: the whole suite)")
    p.add_argument("--purejaxrl-harness", help="path of a PureJaxRL harness script (see docs)")
    p.add_argument("--peer-python", default=sys.executable, help="python for the harness")
    a = p.parse_args(argv)
    try:
        seeds = [int(s) for s in a.seeds.split(",")]
    except ValueError:
        print(
            f"rl-aux bench: --seeds={a.seeds!r} must be comma-separated integers", file=sys.stderr
        )
        return 2
    if a.suite == "nethack":  # host-stepped NLE: experiments/bench_nethack.py
        from experiments import bench_nethack

        print(bench_nethack.HEADER, file=sys.stderr)
        rows = bench_nethack.run(10.0 * a.scale, max(int(10 * a.scale), 2), run_worker)
        print("\n" + bench_nethack.HEADER)
        for row in rows:
            print(bench_nethack.format_row(row))
        print("(env steps/s; single = one in-process env; vec = NLEVecEnv alone, random policy)")
        for row in rows:
            print(bench_nethack.format_cpu(row))
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"suite": "nethack", "rows": rows, "machine": _machine()}, f, indent=2)
        return 0
    if a.suite == "llm":  # the subgoal reward's cost in host PPO: experiments/bench_llm.py
        from experiments import bench_llm

        res = bench_llm.run(a.scale, run_worker)
        print(bench_llm.format_result(res))
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"suite": "llm", "result": res, "machine": _machine()}, f, indent=2)
        return 0
    if a.suite == "atari":
        from experiments.bench_atari import main as atari_main

        envs = [int(n) for n in a.num_envs.split(",")]
        backends = tuple(a.backend.split(","))
        if not set(backends) <= {"ale", "envpool"}:
            print(f"rl-aux bench: --backend={a.backend!r}: accepted ale, envpool", file=sys.stderr)
            return 2
        peers = None
        if a.cleanrl_harness:
            peers = {"harness": a.cleanrl_harness, "peer_python": a.peer_python,
                     "cleanrl_dir": a.cleanrl_dir, "log_dir": a.log_dir,
                     "variants": tuple(a.cleanrl_variants.split(","))}  # fmt: skip
        raw_steps = max(int(4000 * a.scale), 64)
        algos = tuple(a.algos.split(","))
        if not set(algos) <= {"ppo", "dqn"}:
            print(f"rl-aux bench: --algos={a.algos!r}: accepted ppo, dqn", file=sys.stderr)
            return 2
        return atari_main(
            envs, a.conv, raw_steps, a.json, backends, peers, a.repeats, algos, a.multi_seed
        )
    if a.suite == "blend":
        rows = run_blend_suite(seeds, a.scale, a.repeats)
        print(BLEND_PPO_HEADER)
        for row in [r for r in rows if r["case"] == "blend/ppo-grid"]:
            print(_format_blend_ppo(row))
        print(
            "(ms per PPO update = rollout of 16 envs x 64 steps + 4 epochs x 4 minibatches "
            "[+ blend: features, primary critic, outer step]; fastest of --repeats "
            "interleaved rounds)\n"
        )
        print(BLEND_HEADER)
        for row in [r for r in rows if r["case"] == "blend/barfi-grid"]:
            print(_format_blend(row))
        print("(ms per outer iteration = 2 rollouts of 8 episodes + 2 inner steps [+ hypergrad])")
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"suite": "blend", "rows": rows, "machine": _machine()}, f, indent=2)
        return 0
    print(HEADER, file=sys.stderr)
    cases = a.cases.split(",") if a.cases else None
    known = [c[0] for c in SUITES[a.suite]]
    if cases and not set(cases) <= set(known):
        bad = sorted(set(cases) - set(known))
        print(f"rl-aux bench: --cases {bad} not in suite {a.suite}: {known}", file=sys.stderr)
        return 2
    if a.repeats < 1:
        print(f"rl-aux bench: --repeats={a.repeats} must be >= 1", file=sys.stderr)
        return 2
    rows = run_suite(
        a.suite,
        seeds,
        a.purejaxrl_harness,
        a.peer_python,
        a.scale,
        a.xla_default,
        a.repeats,
        cases,
    )
    print("\n" + HEADER)
    for row in rows:
        print(_format_row(row))
    print(
        f"(env steps/s after compilation, median of {a.repeats} interleaved runs; "
        "compile = our AOT lower+compile seconds)"
    )
    for row in rows:
        for col in ("raw", "ours", "ours_xla_default", "purejaxrl"):
            if row.get(col) and "error" in row[col]:
                print(f"{row['case']} x{row['seeds']} {col}: {' '.join(row[col]['error'])}")
    result = {"suite": a.suite, "rows": rows, "machine": _machine()}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {a.json}")
    return 0


def _machine() -> dict:
    import platform

    from rl_aux.logging import run_metadata

    meta = run_metadata()
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "versions": meta["versions"],
        "devices": meta["devices"],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


if __name__ == "__main__":
    sys.exit(main())
