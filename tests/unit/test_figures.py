"""`rl-aux plot --figure`: spec-driven rliable figures, numbers checked by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import yaml
from rliable import library, metrics

from experiments import figure_spec, normalise, sources
from experiments.cli import plot_main

SEEDS = (0, 1, 2, 3)
STEPS = list(range(100, 1001, 100))


def write_store(path: Path, label: str, env: str, offset: float, lrs=(0.001,)) -> None:
    """A run store: 4 seeds x len(lrs) grid points of a synthetic increasing return."""
    path.mkdir(parents=True)
    config = {"label": label, "experiment": "t", "env": {"name": env}, "agent": {"name": "ppo"}}
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    rows = [
        {"global_step": s, "seed": seed, "grid": g, "hp/lr": lr,
         "charts/episodic_return": offset + 7 * g + seed * seed + s / 100 + (seed % 2) * s / 300}
        for g, lr in enumerate(lrs) for s in STEPS for seed in SEEDS
    ]  # fmt: skip
    pd.DataFrame(rows).to_csv(path / "metrics.csv", index=False)


def hand_final_scores(metrics_csv: Path, metric: str, frac: float) -> dict[tuple, float]:
    """(grid, seed) -> mean of `metric` over the last `frac` of that seed's logged steps."""
    df = pd.read_csv(metrics_csv)
    out = {}
    for (g, s), d in df.groupby(["grid", "seed"]):
        d = d.dropna(subset=[metric]).sort_values("global_step")
        first, last = d["global_step"].iloc[0], d["global_step"].iloc[-1]
        out[(int(g), int(s))] = d[d["global_step"] >= last - frac * (last - first)][metric].mean()
    return out


def hand_iqm_ci(matrix: np.ndarray, reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """IQM (25% trimmed mean over all runs x tasks) and rliable's stratified-bootstrap CI."""
    np.random.seed(seed)  # rliable's bootstrap draws from numpy's global RNG
    _, ci = library.get_interval_estimates(
        {"a": matrix}, lambda s: np.array([metrics.aggregate_iqm(s)]), reps=reps
    )
    return scipy.stats.trim_mean(matrix, 0.25, axis=None), ci["a"][0, 0], ci["a"][1, 0]


def check_iqm_against_hand(out: Path, stores: dict[tuple[str, str], Path], lo: float, hi: float):
    """aggregates.csv IQM and CI == recomputed from each store's metrics.csv by hand."""
    agg = pd.read_csv(out / "aggregates.csv")
    agg = agg[agg["aggregate"] == "iqm"].set_index("algorithm")
    tasks = sorted({t for _, t in stores})
    for label in sorted({a for a, _ in stores}):
        finals = {
            t: hand_final_scores(stores[(label, t)] / "metrics.csv", "charts/episodic_return", 0.1)
            for t in tasks
        }
        grids = sorted({g for g, _ in finals[tasks[0]]})
        for g in grids:
            m = np.array([[(finals[t][(g, s)] - lo) / (hi - lo) for t in tasks] for s in SEEDS])
            name = [
                a
                for a in agg.index
                if a.split(" ")[0] == label
                and (
                    len(grids) == 1
                    or f"grid={g}" in a
                    or a.endswith(_lr_tag(stores, label, tasks[0], g))
                )
            ]
            assert len(name) == 1, (label, g, list(agg.index))
            point, low, high = hand_iqm_ci(m)
            row = agg.loc[name[0]]
            np.testing.assert_allclose(
                [row["value"], row["ci_low"], row["ci_high"]], [point, low, high], rtol=1e-9
            )
            assert row["n_runs"] == len(SEEDS) and row["n_tasks"] == len(tasks)


def _lr_tag(stores, label, task, grid) -> str:
    df = pd.read_csv(stores[(label, task)] / "metrics.csv")
    lr = df[df["grid"] == grid]["hp/lr"].iloc[0]
    return f"lr={lr:g}"


@pytest.fixture()
def two_algos_two_tasks(tmp_path: Path) -> dict:
    stores = {}
    for label, off in (("ppo", 0.0), ("ppo+aux", 3.0)):
        for env in ("ALE/Pong-v5", "ALE/Breakout-v5"):
            path = tmp_path / "runs" / label / env.split("/")[1]
            write_store(path, label, env, off, lrs=(0.001, 0.0003) if label == "ppo" else (0.001,))
            stores[(label, env)] = path
    return stores


def test_figure_spec_numbers_equal_a_hand_computation(two_algos_two_tasks, tmp_path):
    spec = {"sources": [{"run_store": "runs"}], "normalise": {"min": -5, "max": 20},
            "title": "t", "improvement": [["ppo+aux", "ppo lr=0.001"]]}  # fmt: skip
    (tmp_path / "fig.yaml").write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    args = ["--figure", str(tmp_path / "fig.yaml"), "--out", str(out), "--base", str(tmp_path)]
    assert plot_main(args) == 0
    for panel in ("curves", "aggregates", "profile", "improvement"):
        for ext in ("png", "pdf", "csv"):
            assert (out / f"{panel}.{ext}").stat().st_size > 0
    check_iqm_against_hand(out, two_algos_two_tasks, -5, 20)
    agg = pd.read_csv(out / "aggregates.csv")
    assert set(agg["aggregate"]) == {"iqm", "median", "mean", "optimality_gap"}
    assert (agg["ci_low"] <= agg["value"] + 1e-12).all() and (
        agg["value"] <= agg["ci_high"] + 1e-12
    ).all()
    imp = pd.read_csv(out / "improvement.csv")
    assert imp.iloc[0]["probability"] > 0.5  # +3 offset beats the base at the same lr
    prof = pd.read_csv(out / "profile.csv")
    assert (prof.groupby("algorithm")["fraction"].apply(lambda f: f.is_monotonic_decreasing)).all()


def test_atari_human_normalisation_and_the_shipped_table():
    table = normalise.atari_reference()
    assert len(table) == 57
    # Badia et al. 2020 (Agent57) Random / Human columns, a few games checked by hand.
    assert table["alien"] == (227.8, 7127.7)
    assert table["breakout"] == (1.7, 30.5)
    assert table["pong"] == (-20.7, 14.6)
    assert table["montezuma_revenge"] == (0.0, 4753.3)
    assert table["skiing"] == (-17098.1, -4336.9)
    assert table["video_pinball"] == (16256.9, 17667.9)
    pairs = [("ALE/MsPacman-v5", "ms_pacman"), ("UpNDownNoFrameskip-v4", "up_n_down")]
    pairs += [("atari/kung_fu_master", "kung_fu_master"), ("envpool/Pong-v5", "pong")]
    for task, game in pairs:
        assert normalise.atari_game(task) == game
    f = normalise.normaliser("atari_human")
    assert f("ALE/Pong-v5", 14.6) == pytest.approx(1.0) and f("ALE/Pong-v5", -20.7) == 0.0
    with pytest.raises(Exception, match="57 Atari games"):
        f("gymnax/CartPole-v1", 1.0)


def test_wandb_project_source_caches_runs_for_offline_rebuilds(two_algos_two_tasks, tmp_path):
    """A wandb project read through the public API once, then rebuilt with no network."""
    store = two_algos_two_tasks[("ppo+aux", "ALE/Pong-v5")]
    df = pd.read_csv(store / "metrics.csv")

    class FakeRun:  # the fields rl-aux reads from wandb.apis.public.Run
        def __init__(self, seed):
            self.id, self.state = f"r{seed}", "finished"
            self.config = {"label": "ppo+aux", "experiment": "t", "env": {"name": "ALE/Pong-v5"},
                           "seed": seed, "grid": 0, "_wandb": {}}  # fmt: skip
            rows = df[df["seed"] == seed].drop(columns=["seed", "grid"])
            self._rows = [
                {**r, "_step": r["global_step"], "_runtime": 1.0} for r in rows.to_dict("records")
            ]

        def scan_history(self):
            return iter(self._rows)

    class FakeApi:
        calls = 0

        def runs(self, path, filters=None):
            FakeApi.calls += 1
            assert path == "ent/proj"
            return [FakeRun(s) for s in SEEDS]

    class NoNetwork:
        def runs(self, *a, **k):
            raise AssertionError("the cache should have been used")

    cache = tmp_path / "cache"
    online = sources.wandb_project_runs("ent/proj", cache, api=FakeApi())
    offline = sources.wandb_project_runs("ent/proj", cache, api=NoNetwork())
    assert (
        FakeApi.calls == 1 and json.loads((cache / "ent_proj" / "index.json").read_text())["runs"]
    )
    for runs in (online, offline):
        assert len(runs) == 1
        got = runs[0].metrics.sort_values(["seed", "global_step"]).reset_index(drop=True)
        want = df.sort_values(["seed", "global_step"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False)


def test_unknown_figure_lists_known_specs(capsys):
    assert plot_main(["--figure", "nope"]) == 2
    assert "sweep_cartpole" in capsys.readouterr().err


def test_shipped_specs_load():
    for name in ("sweep_cartpole", "atari57_human"):
        spec = figure_spec.load_spec(name)
        assert spec.sources and set(spec.panels) <= set(figure_spec.PANELS)
