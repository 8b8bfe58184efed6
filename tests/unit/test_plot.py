"""Tests for `rl-aux plot` (experiments/plot.py) on small synthetic run stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import yaml

from experiments import plot

STEPS = list(range(0, 1001, 100))  # 11 log steps per seed
SEEDS = (0, 1, 2)


def value(offset: float, seed: int, step: int) -> float:
    """The synthetic episodic return of one seed at one step."""
    return offset + seed + step / 1000 * (1 + seed)


def write_run(
    run_dir: Path,
    label: str,
    offset: float,
    grid_lrs: tuple[float, ...] = (0.001,),
    nan_cells: tuple[tuple[int, int], ...] = (),
) -> Path:
    """A run store with 3 seeds; `nan_cells` = (seed, step) pairs with no episodic return."""
    run_dir.mkdir(parents=True)
    config = {
        "label": label,
        "experiment": "test",
        "env": {"name": "CartPole-v1"},
        "agent": {"name": "ppo"},
        "num_seeds": len(SEEDS),
        "total_timesteps": STEPS[-1],
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    rows = []
    for grid, lr in enumerate(grid_lrs):
        for step in STEPS:
            for seed in SEEDS:
                ret = value(offset + 10 * grid, seed, step)
                rows.append(
                    {
                        "global_step": step,
                        "seed": seed,
                        "grid": grid,
                        "charts/episodic_return": np.nan if (seed, step) in nan_cells else ret,
                        "charts/episodic_length": 100.0,
                        "eval/episodic_return": ret if step % 500 == 0 else np.nan,
                        "losses/value_loss": 0.5,
                        "hp/lr": lr,
                    }
                )
    pd.DataFrame(rows).to_csv(run_dir / "metrics.csv", index=False)
    return run_dir


@pytest.fixture()
def runs(tmp_path: Path) -> tuple[Path, Path]:
    """Two configurations x 3 seeds; seed 1 of 'ppo' has no return logged at the last step."""
    a = write_run(tmp_path / "runs" / "exp" / "a", "ppo", 0.0, nan_cells=((1, 1000), (2, 300)))
    b = write_run(tmp_path / "runs" / "exp" / "b", "ppo+reward_pred", 5.0)
    return a, b


def test_writes_files_and_curves(runs: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "fig"
    assert plot.main([str(runs[0]), str(runs[1]), "--out", str(out)]) == 0
    for name in ("curves.png", "curves.csv", "final.png", "final.csv"):
        assert (out / name).stat().st_size > 0
    curves = pd.read_csv(out / "curves.csv")
    assert list(curves.columns) == ["config", "global_step", "mean", "ci_low", "ci_high", "n_seeds"]
    assert list(dict.fromkeys(curves["config"])) == ["ppo", "ppo+reward_pred"]
    a = curves[curves["config"] == "ppo"].set_index("global_step")
    assert a.loc[0, "n_seeds"] == 3
    assert a.loc[1000, "n_seeds"] == 2  # seed 1 stops at step 900
    np.testing.assert_allclose(a.loc[0, "mean"], np.mean([value(0.0, s, 0) for s in SEEDS]))
    assert (curves["ci_low"] <= curves["mean"] + 1e-12).all()
    assert (curves["mean"] <= curves["ci_high"] + 1e-12).all()
    printed = capsys.readouterr().out
    assert "ppo+reward_pred" in printed and str(out / "final.csv") in printed


def test_final_iqm_matches_hand_computation(runs: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "fig"
    assert plot.main([str(r) for r in runs] + ["--out", str(out), "--final-frac", "0.1"]) == 0
    final = pd.read_csv(out / "final.csv").set_index("config")
    # 'ppo': seeds 0 and 2 span steps 0..1000 -> last 10% = steps 900, 1000; seed 1 spans
    # 0..900 -> last 10% = steps >= 810 -> step 900 only.
    by_hand = {
        "ppo": [
            np.mean([value(0.0, 0, 900), value(0.0, 0, 1000)]),
            value(0.0, 1, 900),
            np.mean([value(0.0, 2, 900), value(0.0, 2, 1000)]),
        ],
        "ppo+reward_pred": [np.mean([value(5.0, s, 900), value(5.0, s, 1000)]) for s in SEEDS],
    }
    for config, finals in by_hand.items():
        row = final.loc[config]
        expected = scipy.stats.trim_mean(finals, 0.25)
        assert row["n_seeds"] == 3
        np.testing.assert_allclose(row["iqm"], expected, rtol=1e-9)
        np.testing.assert_allclose(row["mean"], np.mean(finals), rtol=1e-9)
        np.testing.assert_allclose(row["median"], np.median(finals), rtol=1e-9)
        assert row["iqm_ci_low"] <= expected <= row["iqm_ci_high"]
        per_seed = [float(v) for v in row["per_seed"].split(";")]
        np.testing.assert_allclose(per_seed, finals, rtol=1e-9)


def test_csvs_are_deterministic(runs: tuple[Path, Path], tmp_path: Path) -> None:
    for out in ("x", "y"):
        assert plot.main([str(tmp_path / "runs"), "--out", str(tmp_path / out)]) == 0
    for name in ("curves.csv", "final.csv"):
        assert (tmp_path / "x" / name).read_bytes() == (tmp_path / "y" / name).read_bytes()


def test_missing_metric_exits_2_listing_columns(runs: tuple[Path, Path], tmp_path, capsys) -> None:
    code = plot.main([str(runs[0]), "--out", str(tmp_path / "fig"), "--metric", "charts/nope"])
    assert code == 2
    err = capsys.readouterr().err
    assert "charts/nope" in err and str(runs[0].resolve()) in err
    for col in ("charts/episodic_return", "charts/episodic_length", "eval/episodic_return"):
        assert col in err
    assert "hp/lr" not in err and "global_step" not in err
    assert not (tmp_path / "fig").exists()


def test_no_metrics_file_exits_2(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert plot.main([str(empty), "--out", str(tmp_path / "fig")]) == 2
    assert str(empty) in capsys.readouterr().err


def test_recursion_from_parent_finds_both_runs(runs: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "fig"
    assert plot.main([str(tmp_path / "runs"), "--out", str(out)]) == 0
    final = pd.read_csv(out / "final.csv")
    assert sorted(final["config"]) == ["ppo", "ppo+reward_pred"]


def test_run_dirs_sort_numbers_by_value(tmp_path: Path) -> None:
    """pvn_T8, pvn_T32, pvn_T128 keep their numeric order in the figures and final.csv."""
    for i, name in enumerate(("pvn_T128", "pvn_T32", "pvn_T8")):
        write_run(tmp_path / "runs" / name, name, float(i))
    found = [p.name for p in plot.find_run_dirs([tmp_path / "runs"])]
    assert found == ["pvn_T8", "pvn_T32", "pvn_T128"]
    out = tmp_path / "fig"
    assert plot.main([str(tmp_path / "runs"), "--out", str(out)]) == 0
    assert list(pd.read_csv(out / "final.csv")["config"]) == ["pvn_T8", "pvn_T32", "pvn_T128"]


def test_grid_points_are_separate_configurations(tmp_path: Path) -> None:
    run = write_run(tmp_path / "sweep", "ppo", 0.0, grid_lrs=(0.001, 0.0003))
    out = tmp_path / "fig"
    assert plot.main([str(run), "--out", str(out)]) == 0
    final = pd.read_csv(out / "final.csv").set_index("config")
    assert list(final.index) == ["ppo lr=1e-3", "ppo lr=3e-4"]
    assert (final["n_seeds"] == 3).all()
    # grid 1 returns are 10 higher than grid 0 at every step.
    np.testing.assert_allclose(
        final.loc["ppo lr=3e-4", "iqm"] - final.loc["ppo lr=1e-3", "iqm"], 10.0
    )
    curves = pd.read_csv(out / "curves.csv")
    assert set(curves["config"]) == {"ppo lr=1e-3", "ppo lr=3e-4"}


def test_sparse_eval_metric(runs: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "fig"
    args = [str(runs[1]), "--out", str(out), "--metric", "eval/episodic_return"]
    assert plot.main(args) == 0
    final = pd.read_csv(out / "final.csv")
    # eval logged at steps 0, 500, 1000: the last 10% holds step 1000 only.
    finals = [value(5.0, s, 1000) for s in SEEDS]
    np.testing.assert_allclose(final["iqm"].iloc[0], scipy.stats.trim_mean(finals, 0.25))
    curves = pd.read_csv(out / "curves.csv")
    np.testing.assert_allclose(curves["mean"].iloc[-1], np.mean(finals))


def test_iqm_with_ci_trims_quartiles() -> None:
    scores = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0])
    point, low, high = plot.iqm_with_ci(scores)
    assert point == pytest.approx(scipy.stats.trim_mean(scores, 0.25)) == pytest.approx(3.5)
    assert low <= point <= high
    assert plot.iqm_with_ci(scores) == (point, low, high)


def test_repeated_labels_are_disambiguated() -> None:
    labels = plot.disambiguate(["ppo", "ppo", "dqn", "ppo"], ["a", "b", "c", "a"])
    assert labels == ["ppo [a]", "ppo [b]", "dqn", "ppo [a] #2"]


def test_format_value() -> None:
    assert [plot.format_value(v) for v in (0.001, 64.0, 3e-4, "relu", 5)] == [
        "0.001",
        "64",
        "0.0003",
        "relu",
        "5",
    ]
