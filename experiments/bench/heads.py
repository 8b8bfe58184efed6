"""`rl-aux bench --suite heads`: what each auxiliary head costs, against the work it adds.

For PPO and DQN on CartPole-v1 (MLP torso) and Breakout-MinAtar (CNN torso), at each vmapped
seed count: the plain learner, the learner with each registered head alone
(`rl_aux.heads.base.registered_heads()`, plugins included) and with all of them at once. One
worker process per (case, seeds) compiles every arm, runs each once (warm-up), then times them
in `repeats` interleaved rounds (arm by arm), so the machine's load drifts between rounds, not
between arms; each arm's median round counts. Per arm: env steps/s, the chunk's FLOPs
(experiments/bench/roofline.py; XLA's own cost-analysis figure beside it) and, against the
plain learner, the time ratio, the FLOP ratio and their quotient (time ratio / FLOP ratio: 1.0
= the head costs exactly the work it adds; above, time lost beyond its arithmetic).
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
from typing import Any

from experiments.bench.chunks import agent_torso, time_interleaved
from experiments.bench.roofline import best_of, compile_with_cost, format_roof, fractions
from experiments.bench.runner import run_worker, write_json

SMALL_CNN = [  # the MinAtar conv torso of experiment=dqn_minatar, for PPO too
    "agent.network.torso=small_cnn",
    "agent.network.conv_channels=[16]",
    "agent.network.conv_kernel=3",
    "agent.network.conv_pool=1",
    "agent.network.hidden=[128]",
]
DQN_BENCH = ["agent.learning_starts=0", "agent.buffer_size=10000"]  # learn in every update
# (case, overrides, env steps per seed in one timed chunk)
CASES = [
    ("ppo/CartPole-v1", ["experiment=ppo_cartpole"], 500_000),
    ("ppo/Breakout-MinAtar", ["experiment=ppo_minatar", *SMALL_CNN], 163_840),
    ("dqn/CartPole-v1", ["experiment=dqn_cartpole", *DQN_BENCH], 100_000),
    ("dqn/Breakout-MinAtar", ["experiment=dqn_minatar", *DQN_BENCH], 50_000),
]
CASE_NAMES = [c[0] for c in CASES]


def arms(heads: list[str]) -> dict[str, list[str]]:
    """Arm name -> extra overrides: plain, each head alone, all heads at once."""
    out: dict[str, list[str]] = {"plain": []}
    out.update({h: [f"head={h}"] for h in heads})
    if len(heads) > 1:
        out["all"] = [f"head=[{','.join(heads)}]"]
    return out


@dataclasses.dataclass
class CompiledArm:
    """One arm compiled and warmed up: its program and state, and what the tables need."""

    compiled: Any  # the jitted chunk, compiled (jax.stages.Compiled)
    state: Any
    cost: dict  # experiments/bench/roofline.compile_with_cost
    compile_s: float
    updates: int
    steps_per_update: int


def compile_arm(
    overrides: list[str], seeds: int, size_pool: bool, steps: int = 0, updates: int = 0
) -> CompiledArm:
    """Build, compile and warm up one arm's chunk of `updates` updates (else `steps` env steps
    per seed, at least one update); `size_pool`: the first arm of a process sizes the CPU
    thread pool, once, as a run of it would."""
    import jax

    from experiments.compose import gradient_batch, load_config
    from experiments.train import build_agent
    from rl_aux.cpu_threads import configure_cpu_threads
    from rl_aux.vectorize import init_seeds, vmapped_chunk

    cfg = load_config([*overrides, f"num_seeds={seeds}"])
    if size_pool:
        configure_cpu_threads(cfg.cpu_threads, agent_torso(cfg.agent), gradient_batch(cfg.agent))
    _, agent = build_agent(cfg)
    updates = updates or max(steps // agent.steps_per_update, 1)
    state, axes = init_seeds(agent, seeds)
    fn = vmapped_chunk(agent, axes, updates, donate=False)
    compiled, compile_s, cost = compile_with_cost(fn, state)
    jax.block_until_ready(compiled(state))  # warm-up
    return CompiledArm(compiled, state, cost, compile_s, updates, agent.steps_per_update)


def _worker(
    case: str, seeds: int, steps: int, repeats: int, heads: list[str], plugins: list[str]
) -> dict:
    """Compile every arm of one case in this process, then time them in interleaved rounds
    (`plugins`: files or modules whose heads are among `heads`)."""
    base = dict((c[0], c[1]) for c in CASES)[case]
    if plugins:
        base = [*base, f"plugins=[{','.join(plugins)}]"]
    progs, out = {}, {}
    plan = arms(heads)
    plan.pop("all", None)  # built after the solo arms: from the heads that apply here
    for arm, extra in _with_all(plan, heads, out):
        try:  # the pool is sized once per process: by the plain learner
            c = compile_arm([*base, *extra], seeds, size_pool=not progs, steps=steps)
        except Exception as e:  # noqa: BLE001 - one arm's failure is a table entry, not a crash
            out[arm] = {"error": [f"{type(e).__name__}: {e}"]}
            print(f"  {case} x{seeds} {arm}: {out[arm]['error'][0]}", file=sys.stderr)
            continue
        env_steps = c.updates * c.steps_per_update * seeds
        per_update = c.cost["flops"] / c.updates
        out[arm] = {"compile_s": c.compile_s, "updates": c.updates, "env_steps": env_steps,
                    **c.cost, "flops_per_update": per_update, "runs_s": []}  # fmt: skip
        if arm == "all":
            out[arm]["heads"] = extra[0][len("head=[") : -1].split(",")
        progs[arm] = (c.compiled, c.state)
    for arm, runs in time_interleaved(progs, repeats).items():
        out[arm]["runs_s"] = runs
    for r in out.values():
        if "runs_s" in r:
            r["run_s"] = statistics.median(r["runs_s"])
            r["steps_per_s"] = r["env_steps"] / r["run_s"]
            r["repeats_steps_per_s"] = [r["env_steps"] / t for t in r["runs_s"]]
    return out


def _with_all(plan: dict[str, list[str]], heads: list[str], out: dict):
    """The solo arms, then `all` over the heads whose solo arm compiled (a head that does not
    apply to this env, e.g. `future` on image observations, is left out and named in
    out["all"]["heads"])."""
    yield from plan.items()
    ok = [h for h in heads if h in out and "error" not in out[h]]
    if len(ok) > 1:
        yield "all", [f"head=[{','.join(ok)}]"]


def worker(kind: str, rest: list[str]) -> dict:
    """Run one measurement of this suite in this process (`experiments.bench --_worker`)."""
    if kind != "heads":
        raise ValueError(f"unknown bench worker {kind!r}")
    case, seeds, steps, repeats, heads, plugins = rest
    split = lambda s: [x for x in s.split(",") if x]
    return _worker(case, int(seeds), int(steps), int(repeats), split(heads), split(plugins))


def ratios(res: dict) -> dict:
    """Per head arm: time ratio, FLOP ratio and quotient against the plain arm of `res`."""
    plain = res.get("plain", {})
    out = {}
    for arm, r in res.items():
        if arm == "plain" or "error" in r or "error" in plain:
            continue
        t = r["run_s"] / plain["run_s"]
        f = r["flops"] / plain["flops"] if plain.get("flops") else None
        out[arm] = {"time_ratio": t, "flop_ratio": f, "quotient": t / f if f else None}
    return out


def run(
    seeds_list: list[int],
    scale: float,
    repeats: int,
    cases: list[str] | None,
    heads: list[str],
    roof: dict,
    plugins: tuple[str, ...] | list[str] = (),
) -> list[dict]:
    """One worker per case x seed count; rows with every arm, its ratios and roofline shares."""
    rows = []
    for name, _, steps in CASES:
        if cases and name not in cases:
            continue
        steps = max(int(steps * scale), 1)
        for seeds in seeds_list:
            res = run_worker(
                [
                    "heads",
                    name,
                    str(seeds),
                    str(steps),
                    str(repeats),
                    ",".join(heads),
                    ",".join(plugins),
                ],  # fmt: skip
                timeout=7200,
                hang_s=300,
            )
            if "error" in res:  # the whole worker failed: every arm carries the error
                res = {arm: res for arm in arms(heads)}
            for r in res.values():
                if "error" not in r:
                    r.update(fractions(r["flops"], r["run_s"], roof))
            row = {"case": name, "seeds": seeds, "steps_per_seed": steps, "arms": res,
                   "ratios": ratios(res)}  # fmt: skip
            rows.append(row)
            for line in format_row(row):
                print(line, file=sys.stderr, flush=True)
    return rows


HEADER = (
    f"{'case':<22} {'seeds':>5} {'arm':<12} {'steps/s':>9} {'time x':>7} {'FLOP x':>7} "
    f"{'quot.':>6} {'MFLOP/upd':>10} {'xla MFLOP':>10} {'roof s':>7} {'roof l':>7} {'compile':>8}"
)


def format_row(row: dict) -> list[str]:
    """One line per arm of a (case, seeds) row."""
    lines = []
    num = lambda x, w, p: f"{x:{w}.{p}f}" if x is not None else f"{'-':>{w}}"
    for arm, r in row["arms"].items():
        label = f"all-{len(r['heads'])}" if "heads" in r else arm  # all: how many heads
        head = f"{row['case']:<22} {row['seeds']:>5} {label:<12}"
        if "error" in r:
            lines.append(f"{head} error: {' '.join(r['error'])}")
            continue
        q = row["ratios"].get(arm, {})
        xla = r["xla_flops"] / r["updates"] / 1e6 if r.get("xla_flops") is not None else None
        lines.append(
            f"{head} {r['steps_per_s'] / 1e3:8.1f}k {num(q.get('time_ratio'), 7, 2)} "
            f"{num(q.get('flop_ratio'), 7, 2)} {num(q.get('quotient'), 6, 2)} "
            f"{r['flops_per_update'] / 1e6:10.1f} {num(xla, 10, 1)} "
            f"{num(r.get('roof_small'), 7, 4)} {num(r.get('roof_large'), 7, 4)} "
            f"{r['compile_s']:8.1f}"
        )
    return lines


def main(
    seeds: list[int],
    scale: float,
    repeats: int,
    cases: list[str] | None,
    heads: list[str] | None,
    json_path: str | None,
    plugins: tuple[str, ...] | list[str] = (),
) -> dict:
    """The heads suite: roofline first, then every case; prints the table, writes the JSON.
    `plugins` (already imported here) are passed to every worker, so their heads join."""
    if heads is None:
        from rl_aux.heads.base import registered_heads

        heads = registered_heads()
    print(HEADER, file=sys.stderr)
    roof = run_worker(["roofline", str(scale)])
    rows = run(seeds, scale, repeats, cases, heads, roof, list(plugins))
    roof = best_of(roof, run_worker(["roofline", str(scale)]))
    for row in rows:  # against the better of the two roofline measurements
        for r in row["arms"].values():
            if "error" not in r:
                r.update(fractions(r["flops"], r["run_s"], roof))
    print("\n" + HEADER)
    for row in rows:
        print("\n".join(format_row(row)))
    print(
        f"(env steps/s after compilation, median of {repeats} interleaved rounds in one process; "
        "time x / FLOP x = against the plain learner; quot. = time x / FLOP x; MFLOP/upd = "
        "FLOPs per update with scans times their length; xla = XLA's cost analysis, loop "
        "bodies once)"
    )
    print(format_roof(roof))
    result = {"suite": "heads", "heads": heads, "plugins": list(plugins), "rows": rows,
              "roofline": roof}  # fmt: skip
    write_json(json_path, result)
    return result
