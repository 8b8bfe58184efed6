"""The local run store (`runs/<experiment>/<run>/`) and its wandb mirror.

Files: `config.yaml` (resolved config), `meta.json` (git commit, versions, devices, command),
`metrics.csv` (one row per log step per seed and grid point, flushed at every write),
`status.json` (running/finished/preempted/diverged) and `checkpoints/`. wandb, when enabled,
gets the same rows: one wandb run per seed/grid point.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from typing import IO, Any, cast

import yaml

PACKAGES = (
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "chex",
    "gymnax",
    "gymnasium",
    "orbax-checkpoint",
    "hydra-core",
    "numpy",
    "wandb",
    "rl-aux",
)
# Environment variables never copied anywhere: anything that looks like a credential.
_SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD")


def git_commit(path: str = ".") -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", path, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def run_metadata() -> dict:
    import jax

    versions = {}
    for p in PACKAGES:
        try:
            versions[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            versions[p] = None
    here = os.path.dirname(os.path.abspath(__file__))
    return {
        "git_commit": git_commit(here),
        "command": sys.argv,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "devices": [str(d) for d in jax.devices()],
        "versions": versions,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


class RunStore:
    """Writes one run directory. Nothing logged is lost: every row is flushed when written."""

    def __init__(self, run_dir: str, resume: bool):
        self.run_dir = run_dir
        self.metrics_path = os.path.join(run_dir, "metrics.csv")
        if os.path.exists(self.metrics_path) and not resume:
            raise FileExistsError(
                f"run_dir={run_dir!r} already holds a run (metrics.csv). Pass resume=true to "
                "continue it, or choose another run_dir."
            )
        os.makedirs(run_dir, exist_ok=True)
        self._file = None
        self._writer = None
        self.columns: list[str] = []
        self.rows_written = 0  # rows in metrics.csv (a checkpoint records how many it covers)
        self._wandb_runs: dict[tuple[int, int], Any] = {}

    # ------------------------------------------------------------------ files
    def write_config(self, config: dict) -> None:
        with open(os.path.join(self.run_dir, "config.yaml"), "w") as f:
            yaml.safe_dump(config, f, sort_keys=False)

    def write_meta(self, extra: dict | None = None) -> None:
        meta = run_metadata() | (extra or {})
        path = os.path.join(self.run_dir, "meta.json")
        if os.path.exists(path):  # resumed: keep the history of starts
            with open(path) as f:
                old = json.load(f)
            meta["previous_starts"] = old.get("previous_starts", []) + [old.get("started_at")]
        with open(path, "w") as f:
            json.dump(meta, f, indent=2)

    def write_status(self, status: str, **info: Any) -> None:
        """status.json: running | finished | preempted | diverged (a relaunch skips finished)."""
        path = os.path.join(self.run_dir, "status.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"status": status, **info, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, f)
        os.replace(tmp, path)

    def open_metrics(
        self, columns: list[str], keep_up_to_step: int | None, keep_rows: int | None = None
    ) -> None:
        """Start metrics.csv; on resume keep only the first `keep_rows` rows (the ones a
        checkpoint covers), or the rows with global_step <= keep_up_to_step."""
        self.columns = list(columns)
        kept: list[dict] = []
        if (keep_up_to_step, keep_rows) != (None, None) and os.path.exists(self.metrics_path):
            with open(self.metrics_path, newline="") as f:
                kept = list(csv.DictReader(f))
            if keep_rows is not None:
                kept = kept[:keep_rows]
            else:
                last = cast(int, keep_up_to_step)  # not None: one of the two is set
                kept = [r for r in kept if int(r["global_step"]) <= last]
        self.rows_written = len(kept)
        tmp = self.metrics_path + ".tmp"
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore")
            w.writeheader()
            w.writerows(kept)
        os.replace(tmp, self.metrics_path)
        self._file = open(self.metrics_path, "a", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=self.columns, extrasaction="ignore")

    def log_rows(self, rows: list[dict]) -> None:
        self.rows_written += len(rows)
        writer, file = cast(csv.DictWriter, self._writer), cast(IO[str], self._file)  # open
        for row in rows:
            writer.writerow({k: _fmt(v) for k, v in row.items()})
        file.flush()  # survives the process dying; `sync` survives the machine dying
        for row in rows:
            run = self._wandb_runs.get((int(row["seed"]), int(row["grid"])))
            if run is not None:
                data = {
                    k: v
                    for k, v in row.items()
                    if k not in ("seed", "grid")
                    and isinstance(v, (int, float))
                    and not math.isnan(v)
                }
                run.log(data, step=int(row["global_step"]))

    def sync(self) -> None:
        """fsync metrics.csv (called with every checkpoint)."""
        if self._file is not None:
            os.fsync(self._file.fileno())

    # ------------------------------------------------------------------ wandb
    def start_wandb(
        self,
        mode: str,
        project: str,
        entity: str | None,
        group: str,
        config: dict,
        runs: list[tuple[int, int, dict]],
    ) -> None:
        """One wandb run per (seed, grid point); `runs` = [(seed, grid, hparams)]."""
        if mode == "disabled":
            return
        import wandb

        for seed, grid, hp in runs:
            name = f"{group}-g{grid}-s{seed}" if len(runs) > 1 else f"{group}-s{seed}"
            self._wandb_runs[(seed, grid)] = wandb.init(
                mode=cast(Any, mode),  # a str; wandb's stubs spell its accepted values
                project=project,
                entity=entity,
                group=group,
                name=name,
                id=_wandb_id(self.run_dir, seed, grid),
                resume="allow",
                config=config | {"seed": seed, "grid": grid, "hparams": hp},
                dir=self.run_dir,
                reinit="create_new",
            )

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        for run in self._wandb_runs.values():
            run.finish()
        self._wandb_runs.clear()


def say(quiet: bool, msg: str) -> None:
    """A progress line on stderr (flushed, so logs of long runs show it), unless `quiet`."""
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def run_status(run_dir: str) -> dict:
    """The run's status.json ({} when the run never started)."""
    path = os.path.join(run_dir, "status.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return v


def _wandb_id(run_dir: str, seed: int, grid: int) -> str:
    import hashlib

    h = hashlib.sha1(os.path.abspath(run_dir).encode()).hexdigest()[:10]
    return f"{h}-g{grid}-s{seed}"


def scrub_secrets(config: Any) -> Any:
    """Drop any config entry whose key looks like a credential (defence in depth)."""
    if isinstance(config, dict):
        return {
            k: scrub_secrets(v)
            for k, v in config.items()
            if not any(m in str(k).upper() for m in _SECRET_MARKERS)
        }
    if isinstance(config, list):
        return [scrub_secrets(v) for v in config]
    return config
