"""`rl-aux plot --figure NAME`: a paper figure rebuilt from a spec in experiments/figures/.

A spec names its runs (run stores, offline wandb directories, a wandb project), the metric,
the final-score window, a normalisation (e.g. Atari human-normalised) and the panels:
learning curves with 95% bootstrap bands, aggregate IQM / median / mean / optimality gap with
stratified-bootstrap CIs, performance profiles and probability of improvement, computed with
rliable (Agarwal et al. 2021). Every panel is written as PNG and PDF, beside the CSV of every
plotted number. An algorithm is one (run label, grid point); tasks are environments; seeds
are the runs of the score matrix [seeds x tasks].
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from matplotlib.figure import Figure

from experiments import plot
from experiments.hp_labels import wrap_label
from experiments.normalise import normaliser
from experiments.plot import PlotError, Run

FIGURES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")
AGGREGATES = ("iqm", "median", "mean", "optimality_gap")
PANELS = ("curves", "aggregates", "profile", "improvement")


@dataclasses.dataclass(frozen=True)
class FigureSpec:
    """One figure: which runs, which metric, which aggregates and panels."""

    name: str
    sources: list
    title: str = ""
    metric: str = plot.DEFAULT_METRIC
    final_frac: float = plot.DEFAULT_FINAL_FRAC
    normalise: Any = None
    aggregates: tuple = AGGREGATES
    optimality_gamma: float = 1.0  # optimality gap threshold, in normalised units
    panels: tuple = PANELS
    profile_taus: int = 101  # thresholds between the lowest and highest normalised score
    improvement: tuple = ()  # [[X, Y], ...]: P(X > Y); default: every algorithm vs the first
    reps: int = plot.BOOTSTRAP_REPS
    seed: int = plot.RNG_SEED


def load_spec(name: str) -> FigureSpec:
    """experiments/figures/<name>.yaml (or a path to a yaml file), validated."""
    path = name if name.endswith((".yaml", ".yml")) else os.path.join(FIGURES_DIR, f"{name}.yaml")
    if not os.path.isfile(path):
        known = sorted(f[:-5] for f in os.listdir(FIGURES_DIR) if f.endswith(".yaml"))
        raise PlotError(f"--figure {name}: no spec {path}. Known figures: {', '.join(known)}")
    raw = yaml.safe_load(open(path)) or {}
    fields = {f.name for f in dataclasses.fields(FigureSpec)}
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise PlotError(f"{path}: unknown key(s) {unknown}; accepted: {', '.join(sorted(fields))}")
    raw.setdefault("name", Path(path).stem)
    if not raw.get("sources"):
        raise PlotError(
            f"{path}: 'sources' is required (run_store / wandb_offline / wandb_project)"
        )
    for key, allowed in (("aggregates", AGGREGATES), ("panels", PANELS)):
        bad = [v for v in raw.get(key, []) if v not in allowed]
        if bad:
            raise PlotError(f"{path}: {key} {bad} not accepted; accepted: {', '.join(allowed)}")
        if key in raw:
            raw[key] = tuple(raw[key])
    raw["improvement"] = tuple(tuple(p) for p in raw.get("improvement", ()))
    return FigureSpec(**raw)


# ------------------------------------------------------------------ scores
def algorithm_rows(runs: list[Run], metric: str) -> dict[tuple[str, str], pd.DataFrame]:
    """(algorithm, task) -> metric rows; algorithm = run label (+ hp values if several)."""
    out: dict[tuple[str, str], pd.DataFrame] = {}
    for run in runs:
        plot.check_metric(run, metric)
        grids = sorted(int(g) for g in run.metrics["grid"].dropna().unique())
        for grid in grids:
            rows = run.metrics[run.metrics["grid"] == grid]
            label = plot.base_label(run)
            algo = f"{label} {_hp_name(rows, grid)}" if len(grids) > 1 else label
            key = (algo, plot.env_name(run) or "task")
            if key in out:
                clash = set(out[key]["seed"]) & set(rows["seed"])
                if clash:
                    raise PlotError(
                        f"{run.path}: algorithm {algo!r} on {key[1]!r} has seeds {sorted(clash)} "
                        "in another source too; give each run once"
                    )
                rows = pd.concat([out[key], rows])
            out[key] = rows
    return out


def _hp_name(rows: pd.DataFrame, grid: int) -> str:
    """'lr=0.001 a.weight=1': lr first, then the other hp/ columns by name, whichever order
    the source stored them in (a run store and wandb list them differently)."""
    cols = sorted(
        (c for c in rows.columns if c.startswith(plot.HP_PREFIX)), key=lambda c: (c != "hp/lr", c)
    )
    return plot.hp_suffix(rows[[*cols, *(c for c in rows.columns if c not in cols)]], grid)


def score_table(rows: dict, metric: str, final_frac: float, norm) -> pd.DataFrame:
    """scores.csv: algorithm, task, seed, final (raw), score (normalised)."""
    records = []
    for (algo, task), r in rows.items():
        for seed, s in plot.seed_series(r, metric).items():
            final = plot.final_score(s, final_frac)
            records.append(
                {
                    "algorithm": algo,
                    "task": task,
                    "seed": seed,
                    "final": final,
                    "score": norm(task, final),
                }
            )
    return pd.DataFrame(records, columns=["algorithm", "task", "seed", "final", "score"])


def score_matrices(scores: pd.DataFrame) -> dict[str, np.ndarray]:
    """algorithm -> [seeds x tasks] normalised final scores (rliable's layout)."""
    tasks = sorted(scores["task"].unique())
    out = {}
    for algo, d in scores.groupby("algorithm", sort=False):
        cols = []
        for task in tasks:
            col = d[d["task"] == task].sort_values("seed")["score"].to_numpy(float)
            if len(col) == 0:
                raise PlotError(f"algorithm {algo!r} has no runs on task {task!r}")
            cols.append(col)
        if len({len(c) for c in cols}) > 1:
            counts = {t: len(c) for t, c in zip(tasks, cols, strict=True)}
            raise PlotError(f"algorithm {algo!r}: unequal seeds per task {counts}")
        out[algo] = np.stack(cols, axis=1)
    return out


def _aggregate_fns(spec: FigureSpec) -> dict:
    from rliable import metrics

    return {
        "iqm": metrics.aggregate_iqm,
        "median": metrics.aggregate_median,
        "mean": metrics.aggregate_mean,
        "optimality_gap": lambda s: metrics.aggregate_optimality_gap(s, spec.optimality_gamma),
    }


@contextlib.contextmanager
def seeded_global_rng(seed: int):
    """rliable's bootstrap (arch) ignores `random_state` here and draws from np.random's
    global state: seed it for each estimate (so each CI is reproducible alone), then restore."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _intervals(scores: Any, fn, spec: FigureSpec) -> tuple[np.ndarray, np.ndarray]:
    """Point estimate and 95% stratified-bootstrap CI (rliable), one fixed RNG per call."""
    from rliable import library

    with seeded_global_rng(spec.seed):
        point, ci = library.get_interval_estimates(
            {"x": scores}, fn, reps=spec.reps, confidence_interval_size=plot.CI_SIZE
        )
    return np.asarray(point["x"]), np.asarray(ci["x"])


def aggregate_table(mats: dict[str, np.ndarray], spec: FigureSpec) -> pd.DataFrame:
    """aggregates.csv: algorithm, aggregate, value, ci_low, ci_high, n_runs, n_tasks."""
    fns = _aggregate_fns(spec)
    records = []
    for algo, m in mats.items():
        for name in spec.aggregates:  # one bootstrap per aggregate: each CI stands alone
            point, ci = _intervals(m, lambda s, f=fns[name]: np.array([f(s)]), spec)
            records.append(
                {
                    "algorithm": algo,
                    "aggregate": name,
                    "value": point[0],
                    "ci_low": ci[0, 0],
                    "ci_high": ci[1, 0],
                    "n_runs": m.shape[0],
                    "n_tasks": m.shape[1],
                }
            )
    return pd.DataFrame(records)


def profile_table(mats: dict[str, np.ndarray], spec: FigureSpec) -> pd.DataFrame:
    """profile.csv: fraction of runs (all tasks) with normalised score > tau, with 95% CI."""
    allv = np.concatenate([m.ravel() for m in mats.values()])
    taus = np.linspace(allv.min(), allv.max(), spec.profile_taus)
    parts = []
    for algo, m in mats.items():
        point, ci = _intervals(m, lambda s: (s.ravel()[:, None] > taus).mean(0), spec)
        parts.append(
            pd.DataFrame(
                {
                    "algorithm": algo,
                    "tau": taus,
                    "fraction": point,
                    "ci_low": ci[0],
                    "ci_high": ci[1],
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) averaged over tasks (Agarwal et al. 2021, Sec. 4.3): the Mann-Whitney U / (n m)
    of each task, ties counting 1/2. Same value as rliable.metrics.probability_of_improvement,
    vectorised (rliable's per-task scipy call makes 2000 bootstrap reps take minutes)."""
    greater = (x[:, None, :] > y[None, :, :]).mean((0, 1))
    ties = (x[:, None, :] == y[None, :, :]).mean((0, 1))
    return float((greater + 0.5 * ties).mean())


def improvement_table(mats: dict[str, np.ndarray], spec: FigureSpec) -> pd.DataFrame:
    """improvement.csv: P(X > Y) averaged over tasks, with its 95% CI (rliable)."""
    from rliable import library

    algos = list(mats)
    pairs = spec.improvement or tuple((a, algos[0]) for a in algos[1:])
    records = []
    for x, y in pairs:
        for a in (x, y):
            if a not in mats:
                raise PlotError(f"improvement: unknown algorithm {a!r}; known: {algos}")
        with seeded_global_rng(spec.seed):
            point, ci = library.get_interval_estimates(
                {"p": [mats[x], mats[y]]},
                probability_of_improvement,
                reps=spec.reps,
                confidence_interval_size=plot.CI_SIZE,
            )
        lo, hi = np.asarray(ci["p"]).reshape(-1)
        records.append(
            {"x": x, "y": y, "probability": float(point["p"]), "ci_low": lo, "ci_high": hi}
        )
    return pd.DataFrame(records, columns=["x", "y", "probability", "ci_low", "ci_high"])


def curve_table(rows: dict, spec: FigureSpec, norm) -> pd.DataFrame:
    """curves.csv: algorithm, task, global_step, mean, ci_low, ci_high, n_seeds (normalised)."""
    parts = []
    for (algo, task), r in rows.items():
        r = r.assign(**{spec.metric: [norm(task, v) for v in r[spec.metric]]})
        curve = plot.learning_curve(r, spec.metric)
        if curve is not None:
            parts.append(curve.assign(algorithm=algo, task=task))
    cols = ["algorithm", "task", "global_step", "mean", "ci_low", "ci_high", "n_seeds"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


# ------------------------------------------------------------------ drawing
def _curves_fig(curves: pd.DataFrame, algos: list[str], spec: FigureSpec) -> Figure:
    tasks = list(dict.fromkeys(curves["task"]))
    fig = Figure(figsize=(5.0 * len(tasks), 4.0))
    for j, task in enumerate(tasks):
        ax = fig.add_subplot(1, len(tasks), j + 1)
        for i, algo in enumerate(algos):
            c = curves[(curves["algorithm"] == algo) & (curves["task"] == task)]
            ax.plot(c["global_step"], c["mean"], color=f"C{i % 10}", label=wrap_label(algo))
            ax.fill_between(
                c["global_step"], c["ci_low"], c["ci_high"], color=f"C{i % 10}", alpha=0.2
            )
        ax.set_title(task)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
    fig.axes[0].set_ylabel(spec.metric + (" (normalised)" if spec.normalise else ""))
    fig.axes[0].legend(fontsize="small")
    fig.suptitle(spec.title or spec.name)
    fig.tight_layout()
    return fig


def _aggregates_fig(agg: pd.DataFrame, algos: list[str], spec: FigureSpec) -> Figure:
    names = list(spec.aggregates)
    shown = [wrap_label(a) for a in algos]  # whole names over lines, never cut at the edge
    lines = max((a.count("\n") + 1 for a in shown), default=1)
    fig = Figure(figsize=(3.2 * len(names), 1.2 + (0.3 + 0.15 * lines) * len(algos)))
    for j, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), j + 1)
        for i, algo in enumerate(algos):
            r = agg[(agg["algorithm"] == algo) & (agg["aggregate"] == name)].iloc[0]
            y = len(algos) - 1 - i
            ax.barh(
                y, r.ci_high - r.ci_low, left=r.ci_low, height=0.6, color=f"C{i % 10}", alpha=0.75
            )
            ax.vlines(r.value, y - 0.3, y + 0.3, color="black")
        ax.set_yticks(range(len(algos)), shown[::-1] if j == 0 else [""] * len(algos))
        ax.set_title(name.replace("_", " ").upper() if name == "iqm" else name.replace("_", " "))
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(spec.title or spec.name)
    fig.tight_layout()
    return fig


def _profile_fig(prof: pd.DataFrame, algos: list[str], spec: FigureSpec) -> Figure:
    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.add_subplot()
    for i, algo in enumerate(algos):
        p = prof[prof["algorithm"] == algo]
        ax.plot(p["tau"], p["fraction"], color=f"C{i % 10}", label=wrap_label(algo))
        ax.fill_between(p["tau"], p["ci_low"], p["ci_high"], color=f"C{i % 10}", alpha=0.2)
    ax.set_xlabel(f"normalised score threshold tau ({spec.metric})")
    ax.set_ylabel("fraction of runs with score > tau")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    ax.set_title(spec.title or spec.name)
    fig.tight_layout()
    return fig


def _improvement_fig(imp: pd.DataFrame, spec: FigureSpec) -> Figure:
    shown = [wrap_label(f"P({r.x} > {r.y})") for r in imp.itertuples()]
    lines = max((a.count("\n") + 1 for a in shown), default=1)
    fig = Figure(figsize=(6.0, 1.2 + (0.3 + 0.15 * lines) * len(imp)))
    ax = fig.add_subplot()
    for i, r in enumerate(imp.itertuples(index=False)):
        y = len(imp) - 1 - i
        ax.barh(y, r.ci_high - r.ci_low, left=r.ci_low, height=0.6, color=f"C{i % 10}", alpha=0.75)
        ax.vlines(r.probability, y - 0.3, y + 0.3, color="black")
    ax.set_yticks(range(len(imp)), shown[::-1])
    ax.set_xlim(0, 1)
    ax.axvline(0.5, color="grey", linestyle="--")
    ax.set_xlabel("probability of improvement")
    ax.set_title(spec.title or spec.name)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ main
def build_figure(spec: FigureSpec, out_dir: str | Path, base_dir: str | Path = ".") -> list[Path]:
    """Compute every panel's numbers, write <panel>.csv/.png/.pdf and scores.csv."""
    from experiments.sources import load_sources

    runs = load_sources(spec.sources, base_dir)
    norm = normaliser(spec.normalise)
    rows = algorithm_rows(runs, spec.metric)
    scores = score_table(rows, spec.metric, spec.final_frac, norm)
    if scores.empty:
        raise PlotError(f"figure {spec.name}: no values of {spec.metric!r} in any run")
    mats = score_matrices(scores)
    algos = list(mats)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables: dict[str, tuple[pd.DataFrame, Figure | None]] = {"scores": (scores, None)}
    if "curves" in spec.panels:
        curves = curve_table(rows, spec, norm)
        tables["curves"] = (curves, _curves_fig(curves, algos, spec))
    if "aggregates" in spec.panels:
        agg = aggregate_table(mats, spec)
        tables["aggregates"] = (agg, _aggregates_fig(agg, algos, spec))
    if "profile" in spec.panels:
        prof = profile_table(mats, spec)
        tables["profile"] = (prof, _profile_fig(prof, algos, spec))
    if "improvement" in spec.panels and len(algos) > 1:
        imp = improvement_table(mats, spec)
        tables["improvement"] = (imp, _improvement_fig(imp, spec))
    written = []
    for name, (table, fig) in tables.items():
        table.to_csv(out / f"{name}.csv", index=False, float_format=plot.CSV_FLOAT_FORMAT)
        written.append(out / f"{name}.csv")
        if fig is not None:
            for ext in ("png", "pdf"):
                fig.savefig(out / f"{name}.{ext}", dpi=150)
                written.append(out / f"{name}.{ext}")
    return written


def main(argv: list[str]) -> int:
    """`rl-aux plot --figure NAME [--out DIR] [--base DIR]`; exit 2 on bad input."""
    p = argparse.ArgumentParser(prog="rl-aux plot --figure", description=__doc__.split("\n")[0])
    p.add_argument("--figure", required=True, help="experiments/figures/<NAME>.yaml or a path")
    p.add_argument("--out", default=None, help="output directory (default: figures/<NAME>)")
    p.add_argument("--base", default=".", help="directory the spec's source paths start from")
    args = p.parse_args(argv)
    try:
        spec = load_spec(args.figure)
        written = build_figure(spec, args.out or os.path.join("figures", spec.name), args.base)
    except PlotError as err:
        print(f"rl-aux plot: error: {err}", file=sys.stderr)
        return 2
    agg = Path(written[0]).parent / "aggregates.csv"
    if agg.exists():
        print(pd.read_csv(agg).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    for path in written:
        print(f"wrote {path}")
    return 0
