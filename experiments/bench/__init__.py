"""`rl-aux bench`: throughput, FLOPs and roofline shares of the learners, one suite per module.

Imports run one way: `cli` (the command and the worker entry) -> the suites (`core`, `heads`,
`blend`, `atari` -> `atari_peers`, `nethack`, `llm`; `gpu_check` -> core, heads) -> the
shared layer (`chunks` -> `roofline`, `runner`). `main` is `cli.main`.
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """`rl-aux bench ...`: see experiments/bench/cli.py."""
    from experiments.bench.cli import main as cli_main

    return cli_main(argv)
