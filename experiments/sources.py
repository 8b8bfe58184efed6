"""Where a figure's runs come from: local run stores, offline wandb directories, a wandb project.

Every source yields `plot.Run`s (a config dict + a metrics frame with global_step, seed, grid,
hp/* and metric columns), so a figure computes the same numbers whichever source it reads.
wandb holds one run per seed/grid point; those are regrouped into one Run per trained
configuration (experiment, label, env), as the run store keeps them.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from experiments.plot import PlotError, Run, find_run_dirs, load_run

_WANDB_IDENT = b":W&B"
_WANDB_BLOCK = 32768  # the .wandb file is a LevelDB-style log: 32 KiB blocks of records
_WANDB_FULL, _WANDB_FIRST, _WANDB_MIDDLE, _WANDB_LAST = 1, 2, 3, 4
_WANDB_INTERNAL = ("_timestamp", "_runtime", "_step", "_wandb")


def run_store_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Run directories (metrics.csv + config.yaml) at or below each path."""
    return [load_run(d) for d in find_run_dirs(list(paths))]


# ------------------------------------------------------------------ offline wandb
def _wandb_records(path: Path) -> Iterator[bytes]:
    """The raw protobuf records of one offline `run-<id>.wandb` file."""
    data = path.read_bytes()
    if data[:4] != _WANDB_IDENT:
        raise PlotError(f"{path}: not a wandb run file")
    pos, pending = 7, b""  # header: ident, magic (2 bytes), version (1 byte)
    while pos + 7 <= len(data):
        if _WANDB_BLOCK - pos % _WANDB_BLOCK < 7:  # block trailer too short for a header
            pos += _WANDB_BLOCK - pos % _WANDB_BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        pos += 7
        chunk, pos = data[pos : pos + length], pos + length
        if kind == _WANDB_FULL:
            yield chunk
        elif kind == _WANDB_FIRST:
            pending = chunk
        elif kind == _WANDB_MIDDLE:
            pending += chunk
        elif kind == _WANDB_LAST:
            yield pending + chunk
        elif length == 0:  # zero padding at the end of a block
            pos += (_WANDB_BLOCK - pos % _WANDB_BLOCK) % _WANDB_BLOCK


def _item_key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def read_offline_wandb_run(path: Path) -> tuple[dict, list[dict]]:
    """(config, history rows) of one offline wandb run file."""
    from wandb.proto import wandb_internal_pb2 as pb

    config: dict = {}
    rows: list[dict] = []
    for raw in _wandb_records(path):
        rec = pb.Record()
        rec.ParseFromString(raw)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            config.update({_item_key(i): json.loads(i.value_json) for i in rec.run.config.update})
        elif kind == "config":
            config.update({_item_key(i): json.loads(i.value_json) for i in rec.config.update})
        elif kind == "history":
            row = {_item_key(i): json.loads(i.value_json) for i in rec.history.item}
            rows.append({k: v for k, v in row.items() if k not in _WANDB_INTERNAL})
    config.pop("_wandb", None)
    return config, rows


def offline_wandb_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Runs rebuilt from `wandb/offline-run-*/run-*.wandb` files at or below each path."""
    found = []
    for p in paths:
        root = Path(p)
        if not root.exists():
            raise PlotError(f"{root}: no such file or directory")
        hits = sorted(root.rglob("offline-run-*/run-*.wandb"))
        if not hits:
            raise PlotError(f"{root}: no offline wandb runs (wandb/offline-run-*) below it")
        found.extend(hits)
    return group_wandb_runs(
        (str(f.parent), *read_offline_wandb_run(f)) for f in dict.fromkeys(found)
    )


def group_wandb_runs(runs: Iterable[tuple[str, dict, list[dict]]]) -> list[Run]:
    """One Run per (experiment, label, env) from wandb's one-run-per-seed/grid-point."""
    groups: dict[tuple, tuple[dict, list[pd.DataFrame]]] = {}
    for name, config, rows in runs:
        if "seed" not in config:
            raise PlotError(f"{name}: wandb config has no 'seed' (not an rl-aux run?)")
        env = config.get("env", {})
        key = (
            config.get("experiment"),
            config.get("label"),
            env.get("name") if isinstance(env, dict) else env,
        )
        frame = pd.DataFrame(rows).assign(seed=int(config["seed"]), grid=int(config.get("grid", 0)))
        base = {k: v for k, v in config.items() if k not in ("seed", "grid", "hparams")}
        groups.setdefault(key, (base, []))[1].append(frame)
    out = []
    for (experiment, label, _), (config, frames) in groups.items():
        df = pd.concat(frames, ignore_index=True)
        df = df.sort_values(["global_step", "grid", "seed"], kind="stable").reset_index(drop=True)
        out.append(Run(path=Path(f"wandb:{experiment}/{label}"), config=config, metrics=df))
    return out


# ------------------------------------------------------------------ wandb project (public API)
def wandb_project_runs(
    project: str,
    cache_dir: str | Path,
    filters: dict | None = None,
    refresh: bool = False,
    api: Any = None,
) -> list[Run]:
    """Runs of an online wandb project, through a local cache so figures rebuild offline.

    Finished runs are cached once (`<cache_dir>/<entity>_<project>/<run id>.json`) and read
    from the cache afterwards; with a complete cache (`index.json`) and refresh=false the
    network is not touched at all."""
    cache = Path(cache_dir) / project.replace("/", "_")
    index = cache / "index.json"
    if index.exists() and not refresh:
        ids = json.loads(index.read_text())["runs"]
        return group_wandb_runs(_cached(cache, i) for i in ids)
    if api is None:
        import wandb

        api = wandb.Api()
    cache.mkdir(parents=True, exist_ok=True)
    loaded, ids, complete = [], [], True
    for run in api.runs(project, filters=filters or {}):
        path = cache / f"{run.id}.json"
        if path.exists() and not refresh:
            loaded.append(_cached(cache, run.id))
        else:
            config = {k: v for k, v in dict(run.config).items() if not k.startswith("_")}
            rows = [
                {k: v for k, v in r.items() if k not in _WANDB_INTERNAL and _is_number(v)}
                for r in run.scan_history()
            ]
            loaded.append((f"wandb:{project}/{run.id}", config, rows))
            if run.state == "finished":
                path.write_text(json.dumps({"config": config, "rows": rows}))
        ids.append(run.id)
        complete &= run.state == "finished"
    if complete:
        index.write_text(json.dumps({"project": project, "filters": filters, "runs": ids}))
    return group_wandb_runs(loaded)


def _cached(cache: Path, run_id: str) -> tuple[str, dict, list[dict]]:
    data = json.loads((cache / f"{run_id}.json").read_text())
    return f"wandb-cache:{cache.name}/{run_id}", data["config"], data["rows"]


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def load_sources(sources: list[dict], base_dir: str | Path = ".") -> list[Run]:
    """All runs of a figure spec's `sources` list (relative paths from base_dir)."""
    runs: list[Run] = []
    for i, src in enumerate(sources):
        if not isinstance(src, dict) or len(src) != 1:
            raise PlotError(
                f"sources[{i}]={src!r}: give one of run_store: PATH, wandb_offline: PATH, "
                "wandb_project: {path: ENTITY/PROJECT, cache: DIR}"
            )
        ((kind, arg),) = src.items()
        if kind in ("run_store", "wandb_offline"):
            paths = [arg] if isinstance(arg, str) else list(arg)
            paths = [os.path.join(base_dir, p) for p in paths]
            runs += run_store_runs(paths) if kind == "run_store" else offline_wandb_runs(paths)
        elif kind == "wandb_project":
            arg = {"path": arg} if isinstance(arg, str) else dict(arg)
            cache = os.path.join(base_dir, arg.get("cache", ".cache/wandb"))
            runs += wandb_project_runs(
                arg["path"], cache, arg.get("filters"), bool(arg.get("refresh", False))
            )
        else:
            raise PlotError(
                f"sources[{i}]: unknown source {kind!r}; accepted: run_store, wandb_offline, "
                "wandb_project"
            )
    return runs
