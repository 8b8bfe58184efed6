"""`rl-aux bench --suite blend`: the BARFI blend's cost per update against the plain learner.

The tabular A2C gridworld learner on the fixed naive blend against the lookahead and Neumann
hypergradients, and neural PPO (experiment=barfi_ppo) with and without the blend; each arm is
compiled apart and timed per update (see `run_blend_suite`).
"""

from __future__ import annotations

import time

from experiments.bench.chunks import agent_torso, time_interleaved
from experiments.bench.runner import run_worker

# the BARFI blend's cost per update against the plain learner (the same
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


def _worker_blend(arm: str, seeds: int, iterations: int) -> dict:
    import jax
    import jax.numpy as jnp

    from agents.tabular_barfi import GridExpConfig, build

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

    from experiments.compose import gradient_batch, load_config
    from experiments.train import build_agent
    from rl_aux.cpu_threads import configure_cpu_threads
    from rl_aux.vectorize import init_seeds, vmapped_chunk

    progs, out = {}, {}
    for arm, extra in BLEND_PPO_ARMS.items():
        cfg = load_config(["experiment=barfi_ppo", f"num_seeds={seeds}", *extra])
        configure_cpu_threads(cfg.cpu_threads, agent_torso(cfg.agent), gradient_batch(cfg.agent))
        _, agent = build_agent(cfg)
        state, axes = init_seeds(agent, seeds)
        t0 = time.perf_counter()
        compiled = vmapped_chunk(agent, axes, updates, donate=False).lower(state).compile()
        out[arm] = {"compile_s": time.perf_counter() - t0, "runs_s": []}
        jax.block_until_ready(compiled(state))  # warm-up
        progs[arm] = (compiled, state)
    for arm, runs in time_interleaved(progs, repeats).items():
        out[arm]["runs_s"] = runs
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


def worker(kind: str, rest: list[str]) -> dict:
    """Run one measurement of this suite in this process (`experiments.bench --_worker`)."""
    if kind == "blend":
        return _worker_blend(rest[0], int(rest[1]), int(rest[2]))
    if kind == "blend_ppo":
        return _worker_blend_ppo(int(rest[0]), int(rest[1]), int(rest[2]))
    raise ValueError(f"unknown bench worker {kind!r}")


def print_tables(rows: list[dict]) -> None:
    """The PPO and the gridworld tables of `run_blend_suite`'s rows."""
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
