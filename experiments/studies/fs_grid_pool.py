"""Pool several `fs_grid_transfer` summaries (seed batches) and compare each arm with model-free.

Per arm and phase: the AUC mean over all pooled seeds with its 95% bootstrap CI, and for every
non-baseline arm the difference of means (arm minus baseline) with a 95% bootstrap CI (seeds
resampled independently per arm: the arms' seeds are separate networks) and P = the bootstrap
probability that the difference is <= 0. Prints a table and writes the JSON.

    PYTHONPATH=. python -m experiments.studies.fs_grid_pool runs/a/summary.json \
        runs/b/summary.json --out runs/pooled.json
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from experiments.plot import RNG_SEED

PHASES = ("phase1", "phase2")
REPS = 10_000  # more than the plots' 2,000: the P values sit near the thresholds


def load_aucs(paths: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """arm -> phase -> per-seed AUCs, concatenated over the summaries in order."""
    pooled: dict[str, dict[str, list]] = {}
    for path in paths:
        with open(path) as f:
            arms = json.load(f)["arms"]
        for arm, phases in arms.items():
            for phase in PHASES:
                pooled.setdefault(arm, {p: [] for p in PHASES})[phase] += phases[phase][
                    "auc_per_seed"
                ]
    sizes = {arm: len(v["phase1"]) for arm, v in pooled.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"arms have different seed counts across the summaries: {sizes}")
    return {arm: {p: np.asarray(v[p]) for p in PHASES} for arm, v in pooled.items()}


def boot_means(x: np.ndarray, rng: np.random.Generator, reps: int) -> np.ndarray:
    """Bootstrap distribution of the mean of `x` (seeds resampled with replacement)."""
    return x[rng.integers(0, len(x), size=(reps, len(x)))].mean(1)


def compare(
    aucs: dict[str, dict[str, np.ndarray]],
    baseline: str = "mf",
    reps: int = REPS,
    seed: int = RNG_SEED,
) -> dict:
    """Means, CIs and differences against `baseline` per arm and phase (see module doc)."""
    if baseline not in aucs:
        raise ValueError(f"--baseline {baseline!r} is not an arm; accepted: {', '.join(aucs)}")
    rng = np.random.default_rng(seed)
    out: dict = {}
    for phase in PHASES:
        base_boot = boot_means(aucs[baseline][phase], rng, reps)
        for arm, per_phase in aucs.items():
            x = per_phase[phase]
            boot = base_boot if arm == baseline else boot_means(x, rng, reps)
            row = {
                "n_seeds": len(x),
                "auc_mean": float(x.mean()),
                "auc_ci95": np.percentile(boot, [2.5, 97.5]).tolist(),
            }
            if arm != baseline:
                diff = boot - base_boot
                row["diff_mean"] = float(x.mean() - aucs[baseline][phase].mean())
                row["diff_ci95"] = np.percentile(diff, [2.5, 97.5]).tolist()
                row["p_diff_le_0"] = float(np.mean(diff <= 0))
            out.setdefault(arm, {})[phase] = row
    return out


def table(result: dict, baseline: str) -> str:
    """One line per arm: AUC [CI] per phase, and the difference against the baseline."""
    lines = [f"{'arm':<18} {'phase':<7} {'AUC [95% CI]':<24} difference vs {baseline} [95% CI], P"]
    for arm, phases in result.items():
        for phase, r in phases.items():
            lo, hi = r["auc_ci95"]
            diff = ""
            if "diff_mean" in r:
                dlo, dhi = r["diff_ci95"]
                diff = f"{r['diff_mean']:+.3f} [{dlo:+.3f}, {dhi:+.3f}], P {r['p_diff_le_0']:.3f}"
            auc = f"{r['auc_mean']:.3f} [{lo:.3f}, {hi:.3f}]"
            lines.append(f"{arm:<18} {phase:<7} {auc:<24} {diff}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("summaries", nargs="+", help="summary.json files of fs_grid_transfer runs")
    ap.add_argument("--baseline", default="mf")
    ap.add_argument("--reps", type=int, default=REPS, help="bootstrap resamples")
    ap.add_argument("--out", default="", help="write the pooled comparison as JSON here")
    args = ap.parse_args(argv)
    aucs = load_aucs(args.summaries)
    result = compare(aucs, args.baseline, args.reps)
    print(table(result, args.baseline))
    if args.out:
        with open(args.out, "w") as f:
            meta = {"summaries": args.summaries, "baseline": args.baseline, "reps": args.reps}
            json.dump({**meta, "arms": result}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
