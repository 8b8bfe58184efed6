"""Which XLA backend this process runs on, so CPU-only workarounds stay on CPU.

rl-aux carries workarounds for XLA:CPU (the concurrency-scheduler flag below, unrolled
threefry in rl_aux/cpu_rng.py, the pool size in rl_aux/cpu_threads.py, the `patches`/
`canonical` convolutions in rl_aux/networks/conv.py). Some must be set before jax starts a
backend, so `default_backend` answers without starting one: once a backend runs it is
`jax.default_backend()`; before, it is the platform jax will pick: the first of JAX_PLATFORMS,
else a GPU/TPU when its jax plugin is installed and its device node exists, else CPU.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys

CPU_SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
_PLATFORM_ALIASES = {"cuda": "gpu", "rocm": "gpu", "gpu": "gpu", "tpu": "tpu", "cpu": "cpu"}


def platform_before_start(jax_platforms: str, plugins: list[str], devices: list[str]) -> str:
    """The backend jax will start, from JAX_PLATFORMS, installed jax plugin names and the
    device nodes present ('nvidiactl', 'kfd', 'accel0'); 'cpu' when nothing else fits."""
    first = jax_platforms.split(",")[0].strip().lower()
    if first:
        return _PLATFORM_ALIASES.get(first, first)
    names = " ".join(plugins).lower()
    if ("cuda" in names and "nvidiactl" in devices) or ("rocm" in names and "kfd" in devices):
        return "gpu"
    if "tpu" in names and any(d.startswith("accel") or d.startswith("vfio") for d in devices):
        return "tpu"
    return "cpu"


def _installed_plugins() -> list[str]:
    names = [ep.name for ep in importlib.metadata.entry_points(group="jax_plugins")]
    if importlib.util.find_spec("libtpu") is not None:
        names.append("libtpu")
    return names


def default_backend() -> str:
    """'cpu', 'gpu' or 'tpu' (see the module docstring); never starts a backend."""
    if "jax" in sys.modules:
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized():
            import jax

            return jax.default_backend()
    try:
        devices = os.listdir("/dev")
    except OSError:
        devices = []
    return platform_before_start(os.environ.get("JAX_PLATFORMS", ""), _installed_plugins(), devices)


def on_cpu() -> bool:
    """True when the XLA:CPU workarounds apply (this process runs, or will run, on CPU)."""
    return default_backend() == "cpu"


def apply_cpu_xla_flags(environ: dict | None = None) -> bool:
    """On CPU, turn XLA:CPU's concurrency-optimized scheduler off in XLA_FLAGS. True if set.

    That scheduler (jaxlib 0.10.2) can deadlock a compiled program: every thread idles and the
    run never finishes (seen with a vmapped PPO update whose separate critic torso runs beside
    an auxiliary head, and by a peer on MinAtar). Off is the safe default; it costs throughput
    on small MLPs (`rl-aux bench --xla-default`). RL_AUX_XLA_CONCURRENT_SCHEDULER=1, or the
    flag already in XLA_FLAGS, keeps the user's choice; off CPU nothing is set."""
    env = os.environ if environ is None else environ
    if env.get("RL_AUX_XLA_CONCURRENT_SCHEDULER") == "1" or CPU_SCHEDULER_FLAG in env.get(
        "XLA_FLAGS", ""
    ):
        return False
    if not on_cpu():
        return False
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {CPU_SCHEDULER_FLAG}=false".strip()
    return True
