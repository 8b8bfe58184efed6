"""Unrolled threefry on XLA:CPU: one fused kernel per random call instead of a 5-trip loop.

jax lowers threefry2x32 on CPU as a rolled `fori_loop` (to save compile time). In an RL step
each `split`/`categorical`/env-reset draw then costs a while loop of ~80 small thunks; with
six draws per env step that is most of the work of a small-MLP PPO or DQN step. GPU/TPU
already use the unrolled form. The bits are identical (same algorithm, same order), so results
do not change; only the CPU program does. Set RL_AUX_ROLLED_THREEFRY=1 to keep jax's default.
"""

from __future__ import annotations

import os
import warnings


def use_unrolled_threefry_on_cpu() -> bool:
    """Register jax's own unrolled threefry lowering for the CPU platform. True if applied
    (only when this process runs on CPU: GPU/TPU lowerings are unrolled already)."""
    from rl_aux import backend

    if os.environ.get("RL_AUX_ROLLED_THREEFRY") == "1" or not backend.on_cpu():
        return False
    try:
        from jax._src.interpreters import mlir
        from jax._src.random import threefry2x32 as tf

        mlir.register_lowering(
            tf.threefry2x32_p, tf._threefry2x32_lowering_rule, platform="cpu", inline=False
        )
    except (ImportError, AttributeError) as e:  # jax internals moved: keep the default
        warnings.warn(
            f"rl_aux: could not unroll threefry on CPU ({e}); using jax's default", stacklevel=2
        )
        return False
    return True
