"""Orbax save/restore of the whole training state (params, optimiser, env, replay, keys)."""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


class Checkpointer:
    """Keeps the last `keep` checkpoints of a run under `<run_dir>/checkpoints/<chunk>/`."""

    def __init__(self, directory: str, keep: int = 2):
        self.directory = os.path.abspath(directory)
        self._mgr = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=keep, enable_async_checkpointing=False
            ),
        )

    def save(self, step: int, state: Any, meta: dict) -> None:
        """Synchronous save: when this returns, the checkpoint is complete on disk."""
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        self._mgr.save(step, args=args, force=True)
        self._mgr.wait_until_finished()

    def latest_step(self) -> int | None:
        return self._mgr.latest_step()

    def restore(self, step: int, like: Any) -> tuple[Any, dict]:
        """Restore into the structure/shape/dtype of `like` (a state or its eval_shape)."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        args = ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
        )
        out = self._mgr.restore(step, args=args)
        return out["state"], dict(out["meta"])

    def close(self) -> None:
        self._mgr.close()
