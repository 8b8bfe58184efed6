"""rl-aux: JIT-compiled JAX reinforcement learning with auxiliary heads."""

__version__ = "0.1.0"

# XLA:CPU workarounds, only when this process runs on CPU (rl_aux/backend.py): the
# concurrency-optimized scheduler off (it can deadlock; see apply_cpu_xla_flags) and threefry
# unrolled (rl_aux/cpu_rng.py). The flag must be set before the first computation starts the
# CPU backend, which importing rl_aux does first.
from rl_aux.backend import apply_cpu_xla_flags as _apply_cpu_xla_flags  # noqa: E402

_apply_cpu_xla_flags()

from rl_aux.cpu_rng import use_unrolled_threefry_on_cpu as _unroll  # noqa: E402

THREEFRY_UNROLLED_ON_CPU = _unroll()
