"""Where a head's time goes: per-kernel XLA:CPU time of the plain learner against a head.

Compiles the plain arm and each head arm of one `rl-aux bench --suite heads` case in this
process, times them in interleaved rounds (experiments/bench/chunks.py: load drifts between
rounds, not between arms), then, with `--profile`, runs each once under `jax.profiler` and
prints the kernels (thunks: fusions, dots, convolutions) that took the most time, each with
its output shape and the jax op it came from (the optimized HLO's metadata), and a split of
the time into torso / head / rest and matmul-or-conv / elementwise-or-copy.

    PYTHONPATH=$PWD python -m scripts.profile_heads ppo/CartPole-v1 plain,pvn \
        --updates 10 --repeats 5 --seeds 8 --profile
"""

from __future__ import annotations

import argparse
import collections
import re
import statistics
import tempfile
from pathlib import Path

HEAD_OPS = ("PsiModule", "ScoreNet", "bta,ba", "Module")  # jax op names of head-side layers
MATMUL_PREFIXES = ("ynn_fusion", "dot", "conv", "custom-call")
CONTAINERS = ("while", "conditional", "call", "ThunkExecutor", "Slinky", "$")


def hlo_ops(hlo_text: str) -> dict[str, tuple[str, str]]:
    """Instruction name -> (output shape, jax op_name) of an optimized HLO module's text."""
    out = {}
    for line in hlo_text.splitlines():
        m = re.match(r"\s*(?:ROOT )?%([\w.\-]+) = (\S+?)(?:\{[^}]*\})? [\w\-]+\(", line)
        if m:
            md = re.search(r'op_name="([^"]+)"', line)
            out[m.group(1)] = (m.group(2), md.group(1) if md else "")
    return out


def kernel_times(trace_dir: str) -> collections.Counter:
    """Summed ns per kernel name over the XLA:CPU worker threads of one saved trace."""
    from jax.profiler import ProfileData

    pb = next(Path(trace_dir).rglob("*.xplane.pb"))
    times: collections.Counter = collections.Counter()
    for plane in ProfileData.from_file(str(pb)).planes:
        for line in plane.lines:
            if not line.name.startswith(("tf_XLAEigen", "tf_XLACpu")):
                continue
            for ev in line.events:
                if not ev.name.startswith(CONTAINERS):  # loops hold the leaf kernels
                    times[ev.name] += ev.duration_ns
    return times


def owner(name: str, op_name: str) -> str:
    """'torso', 'head' or 'rest' (losses, optimizer, env, the head's elementwise terms)."""
    if any(s in op_name for s in HEAD_OPS) and "AgentNetwork" not in op_name:
        return "head"
    return "torso" if "AgentNetwork" in op_name else "rest"


def kind(name: str) -> str:
    """'matmul/conv' for dot, convolution and YNN (matmul) fusions; else 'elementwise/copy'."""
    return "matmul/conv" if name.startswith(MATMUL_PREFIXES) else "elementwise/copy"


def short(op_name: str) -> str:
    """The jax op name without the loop nesting."""
    return re.sub(r"jit\(fn\)/|while/body/|closed_call/", "", op_name)[-100:]


def main() -> None:
    """Compile, time interleaved, optionally profile and print per-kernel tables."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("case", help="a heads-suite case, e.g. ppo/Breakout-MinAtar")
    p.add_argument("arms", help="comma-separated: plain and head names")
    p.add_argument("--updates", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("overrides", nargs="*", help="extra config overrides (plugins=[...], ...)")
    a = p.parse_intermixed_args()

    import jax

    from experiments.bench.chunks import time_interleaved
    from experiments.bench.heads import CASES, compile_arm

    cases = {c[0]: c[1] for c in CASES}
    if a.case not in cases:
        p.error(f"case={a.case!r} is not a heads-suite case. Accepted: {', '.join(sorted(cases))}")
    progs, costs, hlo = {}, {}, {}
    for arm in a.arms.split(","):
        head = [] if arm == "plain" else [f"head={arm}"]
        overrides = [*cases[a.case], *a.overrides, *head]  # the pool: sized by the first arm
        c = compile_arm(overrides, a.seeds, size_pool=not progs, updates=a.updates)
        progs[arm], costs[arm], hlo[arm] = (
            (c.compiled, c.state),
            c.cost,
            hlo_ops(c.compiled.as_text()),
        )
    runs = time_interleaved(progs, a.repeats)
    first = next(iter(progs))
    base_t, base_f = statistics.median(runs[first]), costs[first]["flops"]
    for arm, r in runs.items():
        t, c = statistics.median(r), costs[arm]
        print(
            f"{arm:<18} median {t * 1e3:9.1f} ms  time x {t / base_t:5.2f}  "
            f"FLOP x {c['flops'] / base_f:5.2f}  matmul share of FLOPs "
            f"{c['matmul_flops'] / c['flops']:5.3f}  rounds (ms) {[round(x * 1e3) for x in r]}"
        )
    if not a.profile:
        return
    for arm, (compiled, state) in progs.items():
        with tempfile.TemporaryDirectory() as d:
            with jax.profiler.trace(d):
                jax.block_until_ready(compiled(state))
            times = kernel_times(d)
        total = sum(times.values())
        split: collections.Counter = collections.Counter()
        for name, ns in times.items():
            split[(owner(name, hlo[arm].get(name, ("", ""))[1]), kind(name))] += ns
        print(f"\n== {arm}: leaf kernels {total / 1e6:.1f} ms (profiled run, both threads)")
        for (own, k), ns in sorted(split.items()):
            print(f"   {own:<6} {k:<17} {ns / 1e6:9.1f} ms {100 * ns / total:5.1f}%")
        for name, ns in times.most_common(a.top):
            shape, op_name = hlo[arm].get(name, ("?", ""))
            share = f"{ns / 1e6:9.1f} ms {100 * ns / total:5.1f}%"
            print(f"   {share} {name:<30} {shape:<22} {short(op_name)}")


if __name__ == "__main__":
    main()
