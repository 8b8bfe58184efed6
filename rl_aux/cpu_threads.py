"""Size XLA:CPU's intra-op thread pool to the workload before the CPU backend starts.

XLA:CPU hands independent thunks and partitioned kernels to a pool of one thread per core.
For small MLP programs (CartPole-scale PPO/DQN) each thunk is a few microseconds, so the
hand-offs cost more than the parallel work saves, and such programs run faster on one pool
thread; convolutional torsos (MinAtar, Atari) and MLPs with large gradient batches (PPO on
MinAtar: 1,024 samples per step) do gain from the second core (measured with `rl-aux bench`:
docs/results/core-bench.md). So `cpu_threads=auto` sizes the pool by the work of one gradient
step, which the config tells before any jax code runs: one thread for an MLP torso whose
gradient batch is under `PARALLEL_BATCH` samples, every core otherwise. The pool is sized
once, when jax first touches the CPU backend (`PJRT_NPROC`, read by XLA's PjRt CPU client);
a user's own PJRT_NPROC always wins.
"""

from __future__ import annotations

import os
import warnings

from rl_aux.typed_config import ConfigError

ENV_VAR = "PJRT_NPROC"
PARALLEL_BATCH = 512  # samples per gradient step from which an MLP gains from every core


def resolve_cpu_threads(setting: str | int, torso: str, gradient_batch: int = 0) -> int | None:
    """`auto` -> 1 for an MLP torso with a gradient batch under PARALLEL_BATCH samples, None
    (all cores) otherwise; an int >= 1 is taken as is."""
    if setting == "auto":
        return 1 if torso == "mlp" and gradient_batch < PARALLEL_BATCH else None
    try:
        n = int(setting)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or str(setting).strip() != str(n):
        raise ConfigError(
            f"cpu_threads={setting!r} is not accepted. Accepted: auto, or an integer >= 1"
        )
    return n


def configure_cpu_threads(setting: str | int, torso: str, gradient_batch: int = 0) -> int | None:
    """Set the pool size for this process if the backend has not started; returns it.

    Returns the thread count now in force when known (None: XLA's default, one per core).
    Off CPU (a GPU/TPU process, rl_aux/backend.py) nothing is set: the pool serves only the
    host side there.
    """
    from rl_aux import backend

    n = resolve_cpu_threads(setting, torso, gradient_batch)
    if not backend.on_cpu():
        return None
    if ENV_VAR in os.environ:  # the user's choice
        return int(os.environ[ENV_VAR]) if os.environ[ENV_VAR].isdigit() else None
    from jax._src import xla_bridge

    if xla_bridge.backends_are_initialized():
        if n is not None:
            warnings.warn(
                f"cpu_threads={setting}: the jax backend already started, so XLA:CPU keeps its "
                f"default thread pool; set {ENV_VAR}={n} before starting Python instead",
                stacklevel=2,
            )
        return None
    if n is not None:
        os.environ[ENV_VAR] = str(n)
    return n
