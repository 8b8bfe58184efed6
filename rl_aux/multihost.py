"""Several processes, one run: every process runs the same programs; process 0 writes the files.

After `jax.distributed.initialize` (rl_aux.sharding.maybe_initialize_distributed) each process
holds its slice of the seed/grid axis, and every compiled program, every gather of metrics
(`rl_aux.sharding.to_host`) and every orbax checkpoint save/restore is collective: all processes
must call it, in the same order, or they wait for each other forever. Only the host-side
writes of a run store (metrics.csv, status.json, meta.json, config.yaml, wandb) are process
0's; the others open a `FollowerStore` that reads what process 0 reads and writes nothing.
A decision taken on the host (stop on a signal) is agreed by all processes (`agree_max`)
before any of them acts on it, so they all take the same branch.
"""

from __future__ import annotations

import csv
import os
from typing import Any

import jax
import numpy as np

from rl_aux.run_store import RunStore
from rl_aux.typed_config import ConfigError


def is_primary() -> bool:
    """True on the process that writes the run's files (process 0; the only one by default)."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process reaches the barrier `name` (no-op in a one-process run)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def agree_max(value: int) -> int:
    """The largest `value` over all processes (a collective; `value` itself with one)."""
    if jax.process_count() == 1:
        return value
    from jax.experimental import multihost_utils

    got = multihost_utils.process_allgather(np.asarray(value, np.int32))
    return int(np.max(got))


def check_split(num_runs: int, refused: tuple[str, ...] = ()) -> None:
    """Multi-process runs: the runs split evenly over every device, and no per-process files.

    `refused` names the settings of this run that keep state or files on one host (host-stepped
    envs, offline learners, saved transitions), which a multi-process run does not support."""
    if not jax.distributed.is_initialized():
        return
    n, procs = jax.device_count(), jax.process_count()
    if refused:
        raise ConfigError(
            f"{refused[0]}: not supported in a multi-process run ({procs} jax processes, "
            "distributed.*): it keeps host state or files per process. Accepted there: JAX envs "
            "(gymnax/*, memory/*, fsgrid/*, four_rooms/*, barfi/*) with online agents"
        )
    if num_runs % n:
        raise ConfigError(
            f"num_seeds x grid points = {num_runs} runs do not split evenly over the {n} devices "
            f"of {procs} jax processes (distributed.num_processes); accepted: a multiple of {n}"
        )


class FollowerStore(RunStore):
    """The run store of a process other than 0: same checks on open, no writes."""

    def __init__(self, run_dir: str, resume: bool):
        super().__init__(run_dir, resume)

    def write_config(self, config: dict) -> None:
        """Process 0 writes config.yaml."""

    def write_meta(self, extra: dict | None = None) -> None:
        """Process 0 writes meta.json."""

    def write_status(self, status: str, **info: Any) -> None:
        """Process 0 writes status.json."""

    def open_metrics(
        self, columns: list[str], keep_up_to_step: int | None, keep_rows: int | None = None
    ) -> None:
        """Count the rows process 0 keeps (checkpoint metas agree); it rewrites metrics.csv."""
        self.columns = list(columns)
        kept: list[dict] = []
        if (keep_up_to_step, keep_rows) != (None, None) and os.path.exists(self.metrics_path):
            with open(self.metrics_path, newline="") as f:  # replaced atomically by process 0
                kept = list(csv.DictReader(f))
            if keep_rows is not None:
                kept = kept[:keep_rows]
            elif keep_up_to_step is not None:
                kept = [r for r in kept if int(r["global_step"]) <= keep_up_to_step]
        self.rows_written = len(kept)

    def log_rows(self, rows: list[dict]) -> None:
        """Process 0 logs the rows (every process holds all of them after the gather)."""
        self.rows_written += len(rows)

    def start_wandb(self, *args: Any, **kwargs: Any) -> None:
        """Process 0 owns the wandb runs."""


def open_run_store(run_dir: str, resume: bool) -> RunStore:
    """This process's store of `run_dir`: RunStore on process 0, FollowerStore elsewhere.

    Every process checks the directory (an existing run without resume=true fails on all of
    them alike) before a barrier, and process 0 writes only after it, so no process reads a
    file that process 0 has already begun to rewrite."""
    store = (RunStore if is_primary() else FollowerStore)(run_dir, resume)
    barrier("rl-aux: run store checked")
    return store
