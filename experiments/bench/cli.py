"""`rl-aux bench`: the command line, and the worker entry every measurement subprocess runs.

`python -m experiments.bench --_worker KIND ARGS...` runs one measurement in this process and
prints its JSON (experiments/bench/runner.py); anything else is the user's command. This module
imports the suites; no suite imports it (runner, roofline and chunks sit below every suite).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

SUITE_NAMES = ("atari", "blend", "core", "gpu-check", "heads", "llm", "nethack")


def _worker(kind: str, rest: list[str]) -> dict:
    """Dispatch one worker measurement to the suite that owns its kind."""
    if kind == "roofline":
        from experiments.bench.roofline import measure

        return measure(float(rest[0]) if rest else 1.0)
    if kind.startswith("atari_"):
        from experiments.bench.atari import worker
    elif kind in ("ours", "raw"):
        from experiments.bench.core import worker
    elif kind.startswith("blend"):
        from experiments.bench.blend import worker
    elif kind == "heads":
        from experiments.bench.heads import worker
    elif kind.startswith("nle_"):
        from experiments.bench.nethack import worker
    elif kind.startswith("llm_"):
        from experiments.bench.llm import worker
    else:
        raise ValueError(f"unknown bench worker {kind!r}")
    return worker(kind, rest)


def _fail(msg: str) -> int:
    print(f"rl-aux bench: {msg}", file=sys.stderr)
    return 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rl-aux bench", description="env steps/s, FLOPs and roofline shares of the learners"
    )
    p.add_argument("--suite", default="core", choices=SUITE_NAMES)
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
    p.add_argument("--cleanrl-harness", help="atari suite: CleanRL harness "
                   "(experiments/bench/peers/cleanrl.py, docs/atari.md)")  # fmt: skip
    p.add_argument("--cleanrl-dir", help="atari suite: a CleanRL checkout "
                   "(default: the harness's $CLEANRL_DIR)")  # fmt: skip
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
        help="core suite: also measure ours with XLA's default (deadlock-prone) scheduler",
    )
    p.add_argument("--repeats", type=int, default=3, help="interleaved runs per contender")
    p.add_argument("--cases", help="core/heads: comma-separated case names (default: all)")
    p.add_argument("--heads", help="heads suite: comma-separated heads (default: all registered)")
    p.add_argument("--plugins", help="heads suite: comma-separated plugin files or modules whose "
                   "heads join the table (e.g. examples/plugins/inverse_dynamics.py)")  # fmt: skip
    p.add_argument("--purejaxrl-harness", help="path of a PureJaxRL harness script (see docs)")
    p.add_argument("--peer-python", default=sys.executable, help="python for the harness")
    return p


def _atari(a: argparse.Namespace, seeds: list[int], cases: list[str] | None) -> int:
    from experiments.bench import atari

    envs = [int(n) for n in a.num_envs.split(",")]
    backends = tuple(a.backend.split(","))
    if not set(backends) <= {"ale", "envpool"}:
        return _fail(f"--backend={a.backend!r}: accepted ale, envpool")
    peers = None
    if a.cleanrl_harness and not os.path.isfile(a.cleanrl_harness):
        return _fail(f"--cleanrl-harness={a.cleanrl_harness!r} is not a file; the shipped "
                     "one is experiments/bench/peers/cleanrl.py")  # fmt: skip
    if a.cleanrl_dir and not os.path.isdir(a.cleanrl_dir):
        return _fail(f"--cleanrl-dir={a.cleanrl_dir!r} is not a directory; expected a CleanRL "
                     "checkout (git clone https://github.com/vwxyzjn/cleanrl)")  # fmt: skip
    variants = tuple(a.cleanrl_variants.split(","))
    if not set(variants) <= {"published", "unrolled"}:
        return _fail(f"--cleanrl-variants={a.cleanrl_variants!r}: accepted published, unrolled")
    if a.cleanrl_harness:
        peers = {"harness": a.cleanrl_harness, "peer_python": a.peer_python,
                 "cleanrl_dir": a.cleanrl_dir, "log_dir": a.log_dir,
                 "variants": variants}  # fmt: skip
    raw_steps = max(int(4000 * a.scale), 64)
    algos = tuple(a.algos.split(","))
    if not set(algos) <= {"ppo", "dqn"}:
        return _fail(f"--algos={a.algos!r}: accepted ppo, dqn")
    return atari.main(
        envs, a.conv, raw_steps, a.json, backends, peers, a.repeats, algos, a.multi_seed
    )


def _blend(a: argparse.Namespace, seeds: list[int], cases: list[str] | None) -> int:
    from experiments.bench import blend
    from experiments.bench.runner import write_json

    rows = blend.run_blend_suite(seeds, a.scale, a.repeats)
    blend.print_tables(rows)
    write_json(a.json, {"suite": "blend", "rows": rows})
    return 0


def _heads(a: argparse.Namespace, seeds: list[int], cases: list[str] | None) -> int:
    from experiments.bench import heads

    if cases and not set(cases) <= set(heads.CASE_NAMES):
        bad = sorted(set(cases) - set(heads.CASE_NAMES))
        return _fail(f"--cases {bad} not in suite heads: {heads.CASE_NAMES}")
    plugins = [m for m in (a.plugins or "").split(",") if m]
    if plugins:
        from experiments.compose import import_plugin
        from rl_aux.typed_config import ConfigError

        try:
            for m in plugins:
                import_plugin(m)
        except ConfigError as e:
            return _fail(f"--plugins: {e}")
    chosen = a.heads.split(",") if a.heads else None
    if chosen:
        from rl_aux.heads.base import registered_heads

        unknown = sorted(set(chosen) - set(registered_heads()))
        if unknown:
            return _fail(f"--heads {unknown} not registered: {registered_heads()}")
    heads.main(seeds, a.scale, a.repeats, cases, chosen, a.json, plugins)
    return 0


def _core(a: argparse.Namespace, seeds: list[int], cases: list[str] | None) -> int:
    from experiments.bench import core

    known = [c[0] for c in core.SUITES["core"]]
    if cases and not set(cases) <= set(known):
        return _fail(f"--cases {sorted(set(cases) - set(known))} not in suite core: {known}")
    if a.purejaxrl_harness and not os.path.isfile(a.purejaxrl_harness):
        return _fail(f"--purejaxrl-harness={a.purejaxrl_harness!r} is not a file; the shipped "
                     "one is experiments/bench/peers/purejaxrl.py")  # fmt: skip
    core.main(seeds, a.purejaxrl_harness, a.peer_python, a.scale, a.xla_default, a.repeats,
              cases, a.json)  # fmt: skip
    return 0


def _nethack(a: argparse.Namespace, seeds: list[int], cases: list[str] | None) -> int:
    from experiments.bench import nethack

    return nethack.main(a.scale, a.json)


def _llm(a: argparse.Namespace, seeds: list[int], cases: list[str] | None) -> int:
    from experiments.bench import llm

    return llm.main(a.scale, a.json)


def _gpu_check(a: argparse.Namespace, seeds: list[int], cases: list[str] | None) -> int:
    from experiments.bench import gpu_check

    return gpu_check.main(a.json or "gpu-check.json")


SUITE_MAINS = {"core": _core, "heads": _heads, "atari": _atari, "blend": _blend,
               "nethack": _nethack, "llm": _llm, "gpu-check": _gpu_check}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """`rl-aux bench ...` (exit 2 on bad input, before any compile), or one worker."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--_worker":
        print(json.dumps(_worker(argv[1], argv[2:])))
        return 0
    a = _parser().parse_args(argv)
    try:
        seeds = [int(s) for s in a.seeds.split(",")]
    except ValueError:
        return _fail(f"--seeds={a.seeds!r} must be comma-separated integers")
    if a.repeats < 1:
        return _fail(f"--repeats={a.repeats} must be >= 1")
    if a.scale <= 0:
        return _fail(f"--scale={a.scale} must be > 0")
    cases = a.cases.split(",") if a.cases else None
    return SUITE_MAINS[a.suite](a, seeds, cases)
