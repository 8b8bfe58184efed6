"""Orbax save/restore of the whole training state (params, optimiser, env, replay, keys).

Writes are atomic: orbax writes a step into `<step>.orbax-checkpoint-tmp/` and renames it to
`<step>/` once complete, lists only renamed steps, and removes a leftover tmp dir (a write
killed mid-way) before it writes that step again; `cleanup_tmp_directories` also clears
leftovers when a run reopens its checkpoints. A killed write therefore leaves the previous
checkpoint as the latest one.

Damage after the rename (a truncated or deleted file: a full disk, a crash before the data
reached the disk, a user's cleanup) is caught on resume: every step records the size of each
of its files in `rl_aux_files.json`, and `restore_latest` takes the newest step whose files
match and which restores, moving damaged newer steps aside to `<run_dir>/checkpoints_damaged/`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from typing import Any

import jax
import orbax.checkpoint as ocp

from rl_aux.multihost import barrier

MANIFEST = "rl_aux_files.json"  # {relative path: size in bytes} of a finished step
DAMAGED_DIR = "checkpoints_damaged"  # sibling of the checkpoint dir: damaged steps moved here


class CheckpointDamaged(ValueError):
    """Every checkpoint of a run is damaged, so it cannot resume (exit code 2)."""


@dataclasses.dataclass(frozen=True)
class Damage:
    """One damaged checkpoint step: where it is and what is wrong with it."""

    step: int
    path: str
    problems: tuple[str, ...]  # e.g. "state/d/ab12: 0 bytes, 9749 written", "x: missing"

    def describe(self) -> str:
        return f"{self.path}: {'; '.join(self.problems)}"


@dataclasses.dataclass(frozen=True)
class Restored:
    """What `restore_latest` found: the step restored (None: none saved) and the damage seen."""

    step: int | None
    state: Any
    meta: dict
    damaged: tuple[Damage, ...]
    moved_to: str | None  # where the damaged steps now are


def _files(step_dir: str) -> dict[str, int]:
    """{path relative to step_dir: size} of every file under step_dir (but the manifest)."""
    out = {}
    for root, _, names in os.walk(step_dir):
        for name in names:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, step_dir)
            if rel not in (MANIFEST, MANIFEST + ".tmp"):
                out[rel] = os.path.getsize(path)
    return out


class Checkpointer:
    """Keeps the last `keep` checkpoints of a run under `<run_dir>/checkpoints/<chunk>/`."""

    def __init__(self, directory: str, keep: int = 2):
        self.directory = os.path.abspath(directory)
        self._mgr = self._manager(keep)
        self._keep = keep

    def _manager(self, keep: int) -> ocp.CheckpointManager:
        return ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=keep, enable_async_checkpointing=False, cleanup_tmp_directories=True
            ),
        )

    def save(self, step: int, state: Any, meta: dict) -> None:
        """Synchronous save: when this returns, the checkpoint is complete on disk."""
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        self._mgr.save(step, args=args, force=True)
        self._mgr.wait_until_finished()
        if jax.process_index() != 0:  # multi-process: orbax saved every shard; 0 writes the rest
            return
        step_dir = self.step_dir(step)
        files = _files(step_dir)
        tmp = os.path.join(step_dir, MANIFEST + ".tmp")
        with open(tmp, "w") as f:
            json.dump(files, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(step_dir, MANIFEST))  # a killed write leaves no manifest

    def step_dir(self, step: int) -> str:
        return os.path.join(self.directory, str(step))

    def latest_step(self) -> int | None:
        return self._mgr.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self._mgr.all_steps())

    def check(self, step: int) -> list[str]:
        """Files of `step` that are missing or of another size than written ([] = intact).

        A step without a manifest (killed between orbax's rename and the manifest write, or
        written before manifests existed) passes here; `restore_latest` still restores it."""
        step_dir = self.step_dir(step)
        path = os.path.join(step_dir, MANIFEST)
        if not os.path.exists(path):
            return []
        try:
            with open(path) as f:
                written = json.load(f)
        except (OSError, ValueError) as e:
            return [f"{MANIFEST}: unreadable ({e})"]
        have = _files(step_dir)
        problems = []
        for rel, size in sorted(written.items()):
            if rel not in have:
                problems.append(f"{rel}: missing")
            elif have[rel] != size:
                problems.append(f"{rel}: {have[rel]} bytes, {size} written")
        return problems

    def restore(self, step: int, like: Any) -> tuple[Any, dict]:
        """Restore into the structure/shape/dtype of `like` (a state or its eval_shape)."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        args = ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
        )
        out = self._mgr.restore(step, args=args)
        return out["state"], dict(out["meta"])

    def restore_latest(self, like: Any) -> Restored:
        """The newest intact checkpoint; damaged newer ones are moved aside.

        Raises CheckpointDamaged (naming every step's bad files) when steps exist but none is
        intact; nothing is moved then, so the run dir stays as it was for inspection."""
        damaged: list[Damage] = []
        for step in reversed(self.all_steps()):
            problems = self.check(step)
            if not problems:
                try:
                    state, meta = self.restore(step, like)
                except Exception as e:  # tensorstore/json/orbax errors: any means unreadable
                    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
                    problems = [f"does not restore ({type(e).__name__}: {first})"]
                else:
                    moved = self._move_aside(damaged) if damaged else None
                    return Restored(step, state, meta, tuple(damaged), moved)
            damaged.append(Damage(step, self.step_dir(step), tuple(problems)))
        if damaged:
            lines = "\n  ".join(d.describe() for d in damaged)
            raise CheckpointDamaged(
                f"every checkpoint in {self.directory} is damaged, so the run cannot resume:\n"
                f"  {lines}\nRestore the files, or move {self.directory} away and resume=true "
                "to restart the run from step 0 (its metrics.csv rows are rewritten), or "
                "train into a new run_dir."
            )
        return Restored(None, like, {}, (), None)

    def _move_aside(self, damaged: list[Damage]) -> str:
        """Move damaged steps out of orbax's directory (it would refuse to re-save them).

        Multi-process: every process found the same damage; process 0 moves, the rest wait."""
        dest_root = os.path.join(os.path.dirname(self.directory), DAMAGED_DIR)
        for d in damaged if jax.process_index() == 0 else ():
            os.makedirs(dest_root, exist_ok=True)
            dest = os.path.join(dest_root, str(d.step))
            if os.path.exists(dest):  # damaged once before: keep both
                dest = f"{dest}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
            shutil.move(d.path, dest)
        barrier("rl-aux: damaged checkpoints moved")
        self._mgr.close()
        self._mgr = self._manager(self._keep)
        return dest_root

    def close(self) -> None:
        self._mgr.close()
