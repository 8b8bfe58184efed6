"""rl-aux: JIT-compiled JAX reinforcement learning with auxiliary heads."""

import os as _os

__version__ = "0.1.0"

# XLA:CPU's concurrency-optimized scheduler (jaxlib 0.10.2) can deadlock a compiled program:
# every thread idles and the run never finishes (seen here with a vmapped PPO update whose
# separate critic torso runs beside an auxiliary head, and by a peer on MinAtar). Turning it
# off is the safe default; it costs throughput on small MLPs (see `rl-aux bench`). Set
# RL_AUX_XLA_CONCURRENT_SCHEDULER=1 to keep XLA's default at your own risk. This must run
# before the first computation initialises the CPU backend, which importing rl_aux does.
_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
if _os.environ.get("RL_AUX_XLA_CONCURRENT_SCHEDULER") != "1" and _FLAG not in _os.environ.get(
    "XLA_FLAGS", ""
):
    _os.environ["XLA_FLAGS"] = f"{_os.environ.get('XLA_FLAGS', '')} {_FLAG}=false".strip()

from rl_aux.cpu_rng import use_unrolled_threefry_on_cpu as _unroll  # noqa: E402

THREEFRY_UNROLLED_ON_CPU = _unroll()
