"""Run golden cases into a directory and read their metrics without wall-clock columns."""

from __future__ import annotations

import os

import pandas as pd

from tests.golden.cases import CASES, WALL_CLOCK_NAMES, WALL_CLOCK_PREFIXES, order, overrides

DATA = os.path.join(os.path.dirname(__file__), "data")


def deterministic(df: pd.DataFrame) -> pd.DataFrame:
    """The metrics frame without columns that measure the machine's speed."""
    drop = [c for c in df.columns if c in WALL_CLOCK_NAMES or c.startswith(WALL_CLOCK_PREFIXES)]
    return df.drop(columns=drop)


def run_cases(names: list[str], root: str, each=None) -> dict[str, pd.DataFrame]:
    """Train each case (and what it needs) under `root`; returns name -> metrics frame.
    `each(name, frame)` is called as each case finishes."""
    from experiments.cli import main

    run_dirs: dict[str, str] = {}
    frames = {}
    for name in order(names):
        run_dir = os.path.join(root, name)
        rc = main(["train", *overrides(name, run_dirs), f"run_dir={run_dir}"])
        if rc != 0:
            raise RuntimeError(f"golden case {name} exited {rc}")
        run_dirs[name] = run_dir
        frames[name] = deterministic(pd.read_csv(os.path.join(run_dir, "metrics.csv")))
        if each is not None and name in names:
            each(name, frames[name])
    return {n: frames[n] for n in names}


def golden_path(name: str) -> str:
    return os.path.join(DATA, f"{name}.csv")


def host_available() -> bool:
    try:
        import minihack  # noqa: F401
    except ImportError:
        return False
    return True


__all__ = ["CASES", "DATA", "deterministic", "golden_path", "host_available", "run_cases"]
