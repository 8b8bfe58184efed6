"""`rl-aux plot`: learning curves and final-performance IQMs from logged run directories.

Reads the run store written by the trainer (`config.yaml` + `metrics.csv` per run) and writes
`curves.png/.csv` (mean over seeds with a 95% bootstrap band) and `final.png/.csv` (IQM of the
per-seed final scores with a 95% stratified-bootstrap CI, as in rliable). A configuration is one
(run directory, grid point); seeds are the independent samples.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats
import yaml
from matplotlib.figure import Figure

from experiments import hp_labels

DEFAULT_METRIC = "charts/episodic_return"
DEFAULT_FINAL_FRAC = 0.1
NUM_CURVE_POINTS = 100
BOOTSTRAP_REPS = 2000
CI_SIZE = 0.95
RNG_SEED = 0
IQM_TRIM = 0.25
INDEX_COLUMNS = ("global_step", "seed", "grid")
HP_PREFIX = "hp/"
CSV_FLOAT_FORMAT = "%.10g"


class PlotError(Exception):
    """A user-facing problem with the inputs (bad path, missing metric); exits with code 2."""


class UnreadableRun(PlotError):
    """A run whose metrics.csv or config.yaml cannot be parsed (bad bytes): it is skipped."""


@dataclass(frozen=True)
class Run:
    """One run directory: its resolved config and its metrics table."""

    path: Path
    config: dict[str, Any]
    metrics: pd.DataFrame


@dataclass(frozen=True)
class Configuration:
    """One curve / one table line: the rows of a single grid point of a single run."""

    label: str
    env: str
    rows: pd.DataFrame


@dataclass(frozen=True)
class FinalStats:
    """Final-performance summary of one configuration."""

    per_seed: np.ndarray
    iqm: float
    iqm_ci_low: float
    iqm_ci_high: float


# ---------------------------------------------------------------------------------- discovery
def natural_key(path: Path) -> list:
    """Sort key that orders numbers by value: pvn_T8 < pvn_T32 < pvn_T128 (not T128 < T32)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def find_run_dirs(paths: Sequence[str | Path]) -> list[Path]:
    """Run directories (holding metrics.csv) at or below each path, in argument order, and in
    natural order within a path."""
    found: list[Path] = []
    for raw in paths:
        root = Path(raw)
        if not root.exists():
            raise PlotError(f"{root}: no such file or directory")
        if root.is_file():
            root = root.parent if root.name == "metrics.csv" else root
        hits = sorted((p.parent for p in root.rglob("metrics.csv") if p.is_file()), key=natural_key)
        if not hits:
            raise PlotError(f"{root}: no metrics.csv found in this directory or below it")
        found.extend(hits)
    return list(dict.fromkeys(p.resolve() for p in found))


def load_run(run_dir: Path) -> Run:
    """Read one run's config.yaml (optional) and metrics.csv."""
    config_path = run_dir / "config.yaml"
    config: dict[str, Any] = {}
    if config_path.is_file():
        try:
            loaded = yaml.safe_load(config_path.read_text())
        except (UnicodeDecodeError, yaml.YAMLError) as err:
            why = str(err).splitlines()[0]
            raise UnreadableRun(f"{config_path}: not readable YAML ({why})") from None
        config = loaded if isinstance(loaded, dict) else {}
    try:
        metrics = pd.read_csv(run_dir / "metrics.csv")
    except pd.errors.EmptyDataError:
        metrics = pd.DataFrame(columns=list(INDEX_COLUMNS))
    except (UnicodeDecodeError, pd.errors.ParserError) as err:
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UnreadableRun(f"{run_dir / 'metrics.csv'}: not a readable CSV ({why})") from None
    missing = [c for c in ("global_step", "seed") if c not in metrics.columns]
    if missing:
        raise PlotError(f"{run_dir / 'metrics.csv'}: missing required column(s) {missing}")
    if "grid" not in metrics.columns:
        metrics = metrics.assign(grid=0)
    return Run(path=run_dir, config=config, metrics=metrics)


def metric_columns(metrics: pd.DataFrame) -> list[str]:
    """The plottable columns: everything except the index columns and hyperparameters."""
    return [c for c in metrics.columns if c not in INDEX_COLUMNS and not c.startswith(HP_PREFIX)]


def check_metric(run: Run, metric: str) -> None:
    """Fail with the list of available metrics when `metric` is not a column of this run."""
    if metric not in run.metrics.columns:
        available = ", ".join(metric_columns(run.metrics)) or "(none)"
        raise PlotError(
            f"{run.path / 'metrics.csv'}: no column {metric!r}; available metric columns: "
            f"{available}"
        )


# ----------------------------------------------------------------------------- configurations
def format_value(value: Any) -> str:
    """Compact display of a hyperparameter value (0.001, 64, relu)."""
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else f"{float(value):g}"
    return str(value)


def hp_suffix(rows: pd.DataFrame, grid: int) -> str:
    """'lr=0.001 clip=0.2' from the hp/ columns of one grid point ('grid=i' when there are none)."""
    parts = []
    for col in (c for c in rows.columns if c.startswith(HP_PREFIX)):
        values = rows[col].dropna()
        if len(values):
            parts.append(f"{col[len(HP_PREFIX) :]}={format_value(values.iloc[0])}")
    return " ".join(parts) if parts else f"grid={grid}"


def base_label(run: Run) -> str:
    """The configuration's display name from config.yaml, falling back to the directory name."""
    label = run.config.get("label")
    if not label:
        agent = run.config.get("agent")
        label = agent.get("name") if isinstance(agent, dict) else None
    return str(label or run.path.name)


def env_name(run: Run) -> str:
    """The environment name from config.yaml ('' when absent)."""
    env = run.config.get("env")
    if isinstance(env, dict):
        return str(env.get("name") or "")
    return str(env or "")


def grid_point_values(rows: pd.DataFrame) -> dict[str, Any]:
    """{'hp/lr': 0.001, ...}: the first logged value of each hp/ column of one grid point."""
    out = {}
    for col in (c for c in rows.columns if c.startswith(HP_PREFIX)):
        values = rows[col].dropna()
        if len(values):
            out[col] = values.iloc[0]
    return out


def split_configurations(run: Run) -> list[Configuration]:
    """One configuration per grid point; when there are several, the label names the
    hyperparameters that tell them apart ('ppo lr=1e-3, next_latent.weight=0.1')."""
    grids = sorted(int(g) for g in run.metrics["grid"].dropna().unique())
    label = base_label(run)
    parts = [run.metrics[run.metrics["grid"] == grid] for grid in grids]
    points = [grid_point_values(rows) for rows in parts]
    names = hp_labels.grid_labels(points) if len(grids) > 1 else [""] * len(grids)
    out = []
    for grid, rows, name in zip(grids, parts, names, strict=True):
        full = f"{label} {name or f'grid={grid}'}" if len(grids) > 1 else label
        out.append(Configuration(label=full, env=env_name(run), rows=rows))
    return out


def disambiguate(labels: Sequence[str], keys: Sequence[str]) -> list[str]:
    """Append the run directory name to repeated labels, then a counter if still repeated."""
    counts = Counter(labels)
    pairs = zip(labels, keys, strict=True)
    named = [f"{lab} [{key}]" if counts[lab] > 1 else lab for lab, key in pairs]
    seen: Counter[str] = Counter()
    unique = []
    for lab in named:
        seen[lab] += 1
        unique.append(lab if seen[lab] == 1 else f"{lab} #{seen[lab]}")
    return unique


def collect_configurations(runs: Sequence[Run]) -> list[Configuration]:
    """All configurations of all runs, in run order then grid order, with unique labels."""
    configs: list[Configuration] = []
    keys: list[str] = []
    for run in runs:
        for cfg in split_configurations(run):
            configs.append(cfg)
            keys.append(run.path.name)
    labels = disambiguate([c.label for c in configs], keys)
    pairs = zip(labels, configs, strict=True)
    return [Configuration(label=lab, env=c.env, rows=c.rows) for lab, c in pairs]


# ------------------------------------------------------------------------------------ series
def seed_series(rows: pd.DataFrame, metric: str) -> dict[int, pd.Series]:
    """Per seed, the metric indexed by global_step (NaN rows dropped, repeated steps averaged)."""
    data = rows[["seed", "global_step", metric]].dropna()
    data = data.astype({"seed": int, "global_step": float, metric: float})
    out = {}
    for seed, group in data.groupby("seed", sort=True):
        out[int(seed)] = group.groupby("global_step", sort=True)[metric].mean()
    return out


def step_grid(series: dict[int, pd.Series], num_points: int = NUM_CURVE_POINTS) -> np.ndarray:
    """Common integer env-step grid spanning all seeds (at most `num_points` points)."""
    lo = min(s.index.min() for s in series.values())
    hi = max(s.index.max() for s in series.values())
    return np.unique(np.round(np.linspace(lo, hi, num_points)))


def interpolate_seeds(series: dict[int, pd.Series], grid: np.ndarray) -> np.ndarray:
    """[n_seeds, n_points] linear interpolation, NaN outside each seed's own step range."""
    out = np.full((len(series), len(grid)), np.nan)
    for i, s in enumerate(series.values()):
        x, y = s.index.to_numpy(float), s.to_numpy(float)
        inside = (grid >= x[0]) & (grid <= x[-1])
        out[i, inside] = np.interp(grid[inside], x, y)
    return out


def nan_mean_over_seeds(values: np.ndarray, axis: int) -> np.ndarray:
    """Mean over the seed axis ignoring NaN; NaN where no seed has a value (no warning)."""
    valid = ~np.isnan(values)
    count = valid.sum(axis=axis)
    total = np.where(valid, values, 0.0).sum(axis=axis)
    return np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0)


def bootstrap_mean_band(
    values: np.ndarray,
    reps: int = BOOTSTRAP_REPS,
    size: float = CI_SIZE,
    seed: int = RNG_SEED,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds and its percentile-bootstrap CI (seeds resampled) at every grid point."""
    n_seeds = values.shape[0]
    mean = nan_mean_over_seeds(values, axis=0)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_seeds, size=(reps, n_seeds))
    boot = nan_mean_over_seeds(values[idx], axis=1)  # [reps, n_points]
    alpha = (1.0 - size) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (gaps between seeds)
        low, high = np.nanpercentile(boot, [100 * alpha, 100 * (1 - alpha)], axis=0)
    return mean, low, high


def learning_curve(rows: pd.DataFrame, metric: str) -> pd.DataFrame | None:
    """global_step, mean, ci_low, ci_high, n_seeds for one configuration (None without data)."""
    series = seed_series(rows, metric)
    if not series:
        return None
    grid = step_grid(series)
    values = interpolate_seeds(series, grid)
    mean, low, high = bootstrap_mean_band(values)
    return pd.DataFrame(
        {
            "global_step": grid.astype(np.int64),
            "mean": mean,
            "ci_low": low,
            "ci_high": high,
            "n_seeds": (~np.isnan(values)).sum(axis=0).astype(np.int64),
        }
    )


# ------------------------------------------------------------------------------------- finals
def final_score(series: pd.Series, final_frac: float) -> float:
    """Mean of the metric over the last `final_frac` of this seed's measured step range."""
    steps = series.index.to_numpy(float)
    start = steps[-1] - final_frac * (steps[-1] - steps[0])
    return float(series[steps >= start].mean())


def final_scores(rows: pd.DataFrame, metric: str, final_frac: float) -> np.ndarray:
    """Per-seed final scores, in seed order."""
    return np.array([final_score(s, final_frac) for s in seed_series(rows, metric).values()])


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean: the 25% trimmed mean (rliable's aggregate_iqm)."""
    return float(scipy.stats.trim_mean(scores, proportiontocut=IQM_TRIM, axis=None))


def _iqm_ci_rliable(scores: np.ndarray, reps: int, size: float, seed: int) -> tuple[float, float]:
    """Stratified-bootstrap CI via rliable, which draws from np.random's global state: seed it."""
    from rliable import library, metrics

    state = np.random.get_state()
    np.random.seed(seed)
    try:
        _, intervals = library.get_interval_estimates(
            {"x": scores.reshape(-1, 1)},
            metrics.aggregate_iqm,
            reps=reps,
            confidence_interval_size=size,
        )
    finally:
        np.random.set_state(state)
    low, high = np.asarray(intervals["x"]).reshape(-1)
    return float(low), float(high)


def iqm_with_ci(
    scores: np.ndarray,
    reps: int = BOOTSTRAP_REPS,
    size: float = CI_SIZE,
    seed: int = RNG_SEED,
) -> tuple[float, float, float]:
    """IQM of per-seed scores and its 95% stratified-bootstrap CI (scores as a [seeds, 1] task)."""
    scores = np.asarray(scores, dtype=float)
    low, high = _iqm_ci_rliable(scores, reps, size, seed)
    return iqm(scores), low, high


def final_stats(rows: pd.DataFrame, metric: str, final_frac: float) -> FinalStats | None:
    """Per-seed finals and their IQM with CI for one configuration (None without data)."""
    per_seed = final_scores(rows, metric, final_frac)
    if len(per_seed) == 0:
        return None
    point, low, high = iqm_with_ci(per_seed)
    return FinalStats(per_seed=per_seed, iqm=point, iqm_ci_low=low, iqm_ci_high=high)


# ------------------------------------------------------------------------------------- tables
def curves_table(configs: Sequence[Configuration], metric: str) -> pd.DataFrame:
    """curves.csv: config, global_step, mean, ci_low, ci_high, n_seeds."""
    parts = []
    for cfg in configs:
        curve = learning_curve(cfg.rows, metric)
        if curve is not None:
            parts.append(curve.assign(config=cfg.label))
    columns = ["config", "global_step", "mean", "ci_low", "ci_high", "n_seeds"]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def final_table(configs: Sequence[Configuration], metric: str, final_frac: float) -> pd.DataFrame:
    """final.csv: config, n_seeds, iqm, iqm_ci_low, iqm_ci_high, mean, median, per_seed."""
    records = []
    for cfg in configs:
        stats = final_stats(cfg.rows, metric, final_frac)
        if stats is None:
            continue
        records.append(
            {
                "config": cfg.label,
                "n_seeds": len(stats.per_seed),
                "iqm": stats.iqm,
                "iqm_ci_low": stats.iqm_ci_low,
                "iqm_ci_high": stats.iqm_ci_high,
                "mean": float(np.mean(stats.per_seed)),
                "median": float(np.median(stats.per_seed)),
                "per_seed": ";".join(CSV_FLOAT_FORMAT % v for v in stats.per_seed),
            }
        )
    columns = ["config", "n_seeds", "iqm", "iqm_ci_low", "iqm_ci_high", "mean", "median"]
    return pd.DataFrame(records, columns=[*columns, "per_seed"])


# ------------------------------------------------------------------------------------ figures
def _color(i: int) -> str:
    """Matplotlib's default cycle colour i, so a configuration has one colour in both figures."""
    return f"C{i % 10}"


def plot_curves(curves: pd.DataFrame, labels: Sequence[str], metric: str, title: str) -> Figure:
    """One mean line with a shaded 95% band per configuration."""
    fig = Figure(figsize=(7.0, 4.5))
    ax = fig.add_subplot()
    for i, label in enumerate(labels):
        c = curves[curves["config"] == label]
        if c.empty:
            continue
        name = hp_labels.wrap_label(label)
        ax.plot(c["global_step"], c["mean"], color=_color(i), label=name, linewidth=1.6)
        ax.fill_between(c["global_step"], c["ci_low"], c["ci_high"], color=_color(i), alpha=0.2)
    ax.set_xlabel("env steps")
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return fig


def plot_finals(finals: pd.DataFrame, metric: str, final_frac: float, title: str) -> Figure:
    """rliable-style interval plot: IQM tick and 95% CI bar per configuration (first on top)."""
    n = len(finals)
    names = [hp_labels.wrap_label(str(c)) for c in finals["config"]]
    lines = max((name.count("\n") + 1 for name in names), default=1)
    fig = Figure(figsize=(7.0, 1.2 + (0.3 + 0.15 * lines) * n))
    ax = fig.add_subplot()
    for i, row in enumerate(finals.itertuples(index=False)):
        y = n - 1 - i
        ax.barh(
            y,
            row.iqm_ci_high - row.iqm_ci_low,
            left=row.iqm_ci_low,
            height=0.6,
            color=_color(i),
            alpha=0.75,
        )
        ax.vlines(row.iqm, y - 0.3, y + 0.3, color="black", linewidth=1.5)
    ax.set_yticks(range(n), names[::-1], fontsize="small")
    # pad the x range so a CI of width 0 at the data's edge (e.g. success 1.0) stays visible
    # (bars' sticky edges defeat ax.margins)
    lo, hi = float(finals["iqm_ci_low"].min()), float(finals["iqm_ci_high"].max())
    pad = 0.05 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.05
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_xlabel(f"IQM of final {metric} (last {final_frac:.0%} of steps), 95% CI")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def default_title(configs: Sequence[Configuration], metric: str) -> str:
    """The distinct env names in order of appearance, else the metric name."""
    envs = list(dict.fromkeys(c.env for c in configs if c.env))
    return ", ".join(envs) if envs else metric


# --------------------------------------------------------------------------------------- main
def make_plots(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    metric: str = DEFAULT_METRIC,
    final_frac: float = DEFAULT_FINAL_FRAC,
    title: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, list[Path]]:
    """Write curves.png/.csv and final.png/.csv; return (curves, finals, written paths)."""
    if not 0.0 < final_frac <= 1.0:
        raise PlotError(f"--final-frac must be in (0, 1], got {final_frac}")
    runs = []
    for d in find_run_dirs(paths):
        try:
            runs.append(load_run(d))
        except UnreadableRun as err:  # one bad file must not hide the good runs
            print(f"warning: {err}; skipped", file=sys.stderr)
    if not runs:
        raise PlotError(f"no readable metrics.csv in {list(map(str, paths))}")
    for run in runs:
        check_metric(run, metric)
    configs = collect_configurations(runs)
    curves = curves_table(configs, metric)
    finals = final_table(configs, metric, final_frac)
    if finals.empty:
        raise PlotError(f"no values of {metric!r} in any configuration of {list(map(str, paths))}")
    for cfg in configs:
        if cfg.label not in set(finals["config"]):
            print(f"warning: {cfg.label!r} has no values of {metric!r}; skipped", file=sys.stderr)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    title = title if title is not None else default_title(configs, metric)
    written = [out / "curves.csv", out / "curves.png", out / "final.csv", out / "final.png"]
    curves.to_csv(written[0], index=False, float_format=CSV_FLOAT_FORMAT)
    plot_curves(curves, [c.label for c in configs], metric, title).savefig(written[1], dpi=150)
    finals.to_csv(written[2], index=False, float_format=CSV_FLOAT_FORMAT)
    plot_finals(finals, metric, final_frac, title).savefig(written[3], dpi=150)
    return curves, finals, written


def format_table(finals: pd.DataFrame) -> str:
    """The final.csv summary as aligned text (per-seed values left to the CSV)."""
    shown = finals.drop(columns=["per_seed"])
    return shown.to_string(index=False, float_format=lambda v: f"{v:.4g}")


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of `rl-aux plot`."""
    p = argparse.ArgumentParser(
        prog="rl-aux plot",
        description="Learning curves (mean, 95% bootstrap band over seeds) and final "
        "performance (IQM with 95% stratified-bootstrap CI) from logged runs.",
    )
    p.add_argument(
        "runs",
        nargs="+",
        metavar="RUN_DIR",
        help="run directories or any directory above them (searched recursively)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output directory for the figures")
    p.add_argument(
        "--metric",
        default=DEFAULT_METRIC,
        help=f"metrics.csv column to plot (default: {DEFAULT_METRIC})",
    )
    p.add_argument(
        "--final-frac",
        type=float,
        default=DEFAULT_FINAL_FRAC,
        help="fraction of each seed's step range averaged for its final score "
        f"(default: {DEFAULT_FINAL_FRAC})",
    )
    p.add_argument("--title", default=None, help="figure title (default: the env name(s))")
    return p


def main(argv: list[str] | None = None) -> int:
    """`rl-aux plot RUN_DIR... --out DIR` (--figure goes to figure_spec); exit 2 on bad input."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        _, finals, written = make_plots(
            args.runs, args.out, args.metric, args.final_frac, args.title
        )
    except PlotError as err:
        print(f"rl-aux plot: error: {err}", file=sys.stderr)
        return 2
    print(f"final {args.metric} (IQM over seeds, 95% CI):")
    print(format_table(finals))
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
