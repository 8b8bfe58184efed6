"""Devices and hosts: shard the vmapped seed/grid axis over devices; start multi-host runs.

One run's state has a leading [seeds x grid points] axis on every batched leaf. With several
devices, a 1-D mesh ("runs") splits that axis (`NamedSharding(mesh, P("runs"))`) and leaves
the lock-step counters (vmap axis None) replicated. The programs run under `shard_map`: each
device runs the vmapped program on its own slice with no cross-device communication (left
to the partitioner, XLA:CPU inserted collectives that hung on 2 forced host devices), so
results equal the single-device run. Several hosts join with
`jax.distributed.initialize` first (SLURM: all arguments are detected from the job's env).
"""

from __future__ import annotations

import os
import sys

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "runs"


def maybe_initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    enabled: bool = False,
) -> bool:
    """jax.distributed.initialize when asked (enabled, any argument set, or
    RL_AUX_DISTRIBUTED=1); idempotent.

    Unset arguments come from the environment: under SLURM (srun, one task per host) jax
    reads SLURM_* variables; elsewhere set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and
    JAX_PROCESS_ID."""
    given = (coordinator_address, num_processes, process_id)
    if not (
        enabled or any(a is not None for a in given) or os.environ.get("RL_AUX_DISTRIBUTED") == "1"
    ):
        return False
    if jax.distributed.is_initialized():
        return True
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
    return True


def run_mesh(num_runs: int) -> Mesh | None:
    """A 1-D mesh over the most devices that evenly divide `num_runs` (None for one device).

    On CPU with forced host devices (--xla_force_host_platform_device_count) the sharded
    chunk hangs on jaxlib 0.10.2 when threefry is lowered as jax's rolled CPU loop
    (RL_AUX_ROLLED_THREEFRY=1); with rl_aux's unrolled threefry (the default) it runs and
    equals the one-device run (tests/unit/test_sharding.py). Rolled, CPU runs stay on one device
    unless RL_AUX_SHARD_CPU=1."""
    from rl_aux import THREEFRY_UNROLLED_ON_CPU

    devices = jax.devices()
    if (
        devices[0].platform == "cpu"
        and len(devices) > 1
        and not THREEFRY_UNROLLED_ON_CPU
        and os.environ.get("RL_AUX_SHARD_CPU") != "1"
    ):
        print(
            "rl-aux: rolled threefry on CPU hangs sharded programs; using one device "
            "(set RL_AUX_SHARD_CPU=1 to try anyway)",
            file=sys.stderr,
        )
        return None
    n = max(d for d in range(1, len(devices) + 1) if num_runs % d == 0)
    if n < len(devices):
        print(
            f"rl-aux: {num_runs} seed/grid runs do not split evenly over {len(devices)} "
            f"devices; using {n}",
            file=sys.stderr,
        )
    if n == 1:
        return None
    return Mesh(np.array(devices[:n]), (AXIS,))


def run_shardings(mesh: Mesh, axes):
    """Per-leaf shardings for a vmap axes tree: split axis 0, replicate the shared (None)."""
    split, replicated = (
        NamedSharding(mesh, PartitionSpec(AXIS)),
        NamedSharding(mesh, PartitionSpec()),
    )
    return jax.tree.map(
        lambda a: replicated if a is None else split, axes, is_leaf=lambda a: a is None
    )


def specs(axes):
    """PartitionSpecs for a vmap axes tree: P("runs") for batched leaves, P() for shared."""
    return jax.tree.map(
        lambda a: PartitionSpec() if a is None else PartitionSpec(AXIS),
        axes,
        is_leaf=lambda a: a is None,
    )


def per_device(fn, mesh: Mesh | None, in_specs, out_specs):
    """`fn` (already vmapped over runs) on each device's slice, no communication."""
    if mesh is None:
        return fn
    return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)


def to_host(tree):
    """Device arrays -> numpy on this host; gathers every host's shards in multi-host runs."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)
