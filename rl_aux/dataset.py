"""A directory of logged transitions: what offline PVN pre-training reads (docs/pvn.md).

Format "rl-aux-transitions/1": `<dir>/meta.json` plus shards `<dir>/shard_00000.npz`, ...
Each shard holds equal-length arrays
    obs [n, *obs_shape], next_obs [n, *obs_shape]   (stored in `store_dtype`)
    action [n] int32, reward [n] float32, terminated [n] bool, truncated [n] bool
where next_obs is the true successor of obs under action (never an auto-reset observation),
`terminated` cuts the bootstrap and `truncated` does not. meta.json: format, obs_shape,
obs_dtype (what the agent sees; stored arrays are cast back to it), store_dtype, num_actions,
env, count, and free-form `source`.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Any

import numpy as np

from rl_aux.types import Transition

FORMAT = "rl-aux-transitions/1"
FIELDS = ("obs", "action", "reward", "terminated", "truncated", "next_obs")


class TransitionWriter:
    """Appends batches of transitions as shards; `close()` writes meta.json (count included)."""

    def __init__(
        self,
        directory: str,
        obs_shape: tuple,
        obs_dtype: str,
        num_actions: int,
        env: str = "",
        store_dtype: str | None = None,
        source: str = "",
    ):
        os.makedirs(directory, exist_ok=True)
        if glob.glob(os.path.join(directory, "shard_*.npz")):
            raise FileExistsError(f"{directory} already holds transition shards")
        self.directory = directory
        self.meta = {
            "format": FORMAT,
            "obs_shape": list(obs_shape),
            "obs_dtype": str(np.dtype(obs_dtype)),
            # "auto": uint8 when the first batch's observations are whole numbers in [0, 255]
            "store_dtype": "auto"
            if store_dtype == "auto"
            else str(np.dtype(store_dtype or obs_dtype)),
            "num_actions": int(num_actions),
            "env": env,
            "count": 0,
            "source": source,
        }
        self.shards = 0

    def write(self, batch: dict) -> None:
        """batch: FIELDS -> arrays with a common leading length n."""
        missing = [f for f in FIELDS if f not in batch]
        if missing:
            raise KeyError(f"transition batch lacks {missing}; needs {list(FIELDS)}")
        n = len(batch["action"])
        shape = tuple(self.meta["obs_shape"])
        if self.meta["store_dtype"] == "auto":
            o = np.asarray(batch["obs"])
            whole = np.all((o >= 0) & (o <= 255) & (np.round(o) == o))
            self.meta["store_dtype"] = "uint8" if whole else self.meta["obs_dtype"]
        store = np.dtype(self.meta["store_dtype"])
        arrays = {}
        for f in FIELDS:
            a = np.asarray(batch[f])
            if len(a) != n:
                raise ValueError(f"transition field {f} has {len(a)} rows, action has {n}")
            if f in ("obs", "next_obs"):
                if a.shape[1:] != shape:
                    raise ValueError(f"{f} shape {a.shape[1:]} != obs_shape {shape}")
                stored = a.astype(store)
                if not np.array_equal(stored.astype(a.dtype), a):
                    raise ValueError(f"{f} is not exactly representable as {store}")
                a = stored
            arrays[f] = a
        arrays["action"] = arrays["action"].astype(np.int32)
        arrays["reward"] = arrays["reward"].astype(np.float32)
        arrays["terminated"] = arrays["terminated"].astype(bool)
        arrays["truncated"] = arrays["truncated"].astype(bool)
        path = os.path.join(self.directory, f"shard_{self.shards:05d}.npz")
        np.savez(path, **arrays)
        self.shards += 1
        self.meta["count"] += n
        self._write_meta()

    def _write_meta(self) -> None:
        tmp = os.path.join(self.directory, "meta.json.tmp")
        with open(tmp, "w") as f:
            json.dump(self.meta, f, indent=1)
        os.replace(tmp, os.path.join(self.directory, "meta.json"))

    def close(self) -> None:
        self._write_meta()


def read_meta(directory: str) -> dict:
    path = os.path.join(directory, "meta.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: not a transition dataset (no meta.json); see docs/pvn.md")
    with open(path) as f:
        meta = json.load(f)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    return meta


def load_transitions(directory: str, limit: int | None = None) -> tuple[Transition, dict]:
    """All (or the first `limit`) transitions as numpy arrays, obs cast to meta obs_dtype."""
    meta = read_meta(directory)
    shards = sorted(glob.glob(os.path.join(directory, "shard_*.npz")))
    parts: dict[str, list] = {f: [] for f in FIELDS}
    total = 0
    for path in shards:
        with np.load(path) as z:
            for f in FIELDS:
                parts[f].append(z[f])
            total += len(z["action"])
        if limit is not None and total >= limit:
            break
    if not total:
        raise ValueError(f"{directory}: no transitions")
    # host numpy arrays in the Transition: jax takes them wherever it expects a jax.Array
    data: dict[str, Any] = {f: np.concatenate(parts[f])[:limit] for f in FIELDS}
    dt = np.dtype(meta["obs_dtype"])
    data["obs"] = data["obs"].astype(dt)
    data["next_obs"] = data["next_obs"].astype(dt)
    return Transition(**data), meta
