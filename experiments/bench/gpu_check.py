"""`rl-aux bench --suite gpu-check` (`make gpu-check`): small core, heads and Atari benches on
whatever device jax runs on, in a few minutes, into one JSON.

Each figure comes from its own worker subprocess (experiments/bench/runner.py): the device's
matmul roofline (measured before and after; the better counts), PPO CartPole in the core suite,
PPO CartPole plain and with one head in the heads suite, and one PPO update on Atari Breakout
(8 envs). The JSON names the device and, per learner, env steps/s, achieved FLOP/s and its
fraction of the roofline. On CPU it says so and the roofline is the CPU's.
"""

from __future__ import annotations

import sys
import time

from experiments.bench import core, heads
from experiments.bench.roofline import best_of, format_roof, fractions
from experiments.bench.runner import run_worker, write_json

CHECK_HEAD = "reward_pred"  # the cheapest head to compile: the heads path, in seconds
ATARI = ["atari_learner", "atari_ppo", "8", "1", "config", "ale", "1", "vmap"]


def _summary(case: str, seeds: int, r: dict) -> dict:
    """The figures the check reports for one learner run (or its error)."""
    if "error" in r:
        return {"case": case, "seeds": seeds, "error": r["error"]}
    keys = ("steps_per_s", "flops_per_s", "roof_small", "roof_large", "compile_s")
    return {"case": case, "seeds": seeds, **{k: r.get(k) for k in keys}}


def main(json_path: str) -> int:
    """Run the check; print one line per learner; write `json_path`. 1 if anything failed."""
    t0 = time.perf_counter()
    roof = run_worker(["roofline", "0.4"])
    if "error" in roof:
        print(f"gpu-check: the roofline worker failed: {roof['error']}", file=sys.stderr)
        return 1
    on_cpu = roof["backend"] == "cpu"
    seeds = [1] if on_cpu else [1, 8]
    print(
        "gpu-check: no GPU/TPU backend: running on CPU with the CPU roofline"
        if on_cpu
        else f"gpu-check: running on {roof['backend']} ({roof['device']})",
        file=sys.stderr,
        flush=True,
    )
    scale = 0.1 if on_cpu else 1.0
    core_rows = core.run_suite("core", seeds, None, sys.executable, scale, False, 1,
                               ["ppo/CartPole-v1"], roof)  # fmt: skip
    heads_rows = heads.run(seeds, 0.1 * scale, 1, ["ppo/CartPole-v1"], [CHECK_HEAD], roof)
    atari = run_worker(ATARI, timeout=1200, hang_s=300)
    roof = best_of(roof, run_worker(["roofline", "0.4"]))
    summary = []
    for row in core_rows:
        if "error" not in row["ours"]:
            row["ours"].update(fractions(row["ours"]["flops"], row["ours"]["run_s"], roof))
        summary.append(_summary(f"core {row['case']}", row["seeds"], row["ours"]))
    for row in heads_rows:
        for arm, r in row["arms"].items():
            if "error" not in r:
                r.update(fractions(r["flops"], r["run_s"], roof))
            summary.append(_summary(f"heads {row['case']} {arm}", row["seeds"], r))
    if "error" not in atari:
        atari.update(fractions(atari["flops"], atari["run_s"], roof))
    summary.append(_summary("atari ppo/Breakout x8 envs", 1, atari))
    wall = time.perf_counter() - t0
    print(f"\n{'case':<36} {'seeds':>5} {'steps/s':>10} {'GFLOP/s':>8} {'roof s':>7} {'roof l':>7}")
    for s in summary:
        if "error" in s:
            print(f"{s['case']:<36} {s['seeds']:>5} error: {' '.join(s['error'])}")
            continue
        num = lambda x, w, p: f"{x:{w}.{p}f}" if x is not None else f"{'-':>{w}}"
        gf = s["flops_per_s"] / 1e9 if s.get("flops_per_s") else None
        print(
            f"{s['case']:<36} {s['seeds']:>5} {s['steps_per_s']:10.0f} {num(gf, 8, 2)} "
            f"{num(s.get('roof_small'), 7, 4)} {num(s.get('roof_large'), 7, 4)}"
        )
    print(format_roof(roof))
    print(f"(gpu-check wall time {wall:.0f} s{'; CPU: no GPU/TPU found' if on_cpu else ''})")
    result = {
        "suite": "gpu-check",
        "device": {"backend": roof["backend"], "device_kind": roof["device"]},
        "on_cpu": on_cpu,
        "note": "no GPU/TPU backend: CPU figures against the CPU roofline" if on_cpu else "",
        "wall_s": wall,
        "summary": summary,
        "roofline": roof,
        "core": core_rows,
        "heads": heads_rows,
        "atari": atari,
    }
    write_json(json_path, result)
    return 1 if any("error" in s for s in summary) else 0
