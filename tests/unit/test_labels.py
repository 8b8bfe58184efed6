"""Grid-point labels (experiments/hp_labels.py) in `rl-aux plot` figures and tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg

from experiments import plot
from experiments.hp_labels import format_number, grid_labels, wrap_label


def test_numbers_take_their_shortest_exact_form() -> None:
    got = [format_number(v) for v in (0.001, 2.5e-4, 0.1, 64.0, 1e5, 1e-5, 0.0025, 0.0, -0.001)]
    assert got == ["1e-3", "2.5e-4", "0.1", "64", "1e5", "1e-5", "0.0025", "0", "-1e-3"]
    assert format_number(0.123456789) != format_number(0.123456788)  # never rounded together


def test_grid_labels_name_what_differs() -> None:
    points = [
        {"hp/lr": 1e-3, "hp/next_latent.weight": 0.1, "hp/reward_pred.weight": 1.0},
        {"hp/lr": 1e-3, "hp/next_latent.weight": 1.0, "hp/reward_pred.weight": 1.0},
        {"hp/lr": 3e-4, "hp/next_latent.weight": 0.1, "hp/reward_pred.weight": 1.0},
    ]
    assert grid_labels(points) == [
        "lr=1e-3, next_latent.weight=0.1",
        "lr=1e-3, next_latent.weight=1",
        "lr=3e-4, next_latent.weight=0.1",
    ]
    # one point, or points that share everything: every value is named
    assert grid_labels(points[:1]) == ["lr=1e-3, next_latent.weight=0.1, reward_pred.weight=1"]


def test_wrapping_keeps_every_character() -> None:
    text = (
        "ppo+next_latent+reward_prediction lr=2.5e-4, next_latent.weight=0.1, "
        "a_very_long_head_name_without_breaks.weight=1"
    )
    wrapped = wrap_label(text, width=24)
    assert wrapped.count("\n") >= 2
    assert wrapped.replace("\n", " ") == text  # lines break at spaces, nothing cut
    assert all(len(line) <= 24 or " " not in line for line in wrapped.split("\n"))


def _run(run_dir: Path, weights: tuple[float, ...]) -> Path:
    """A 3-grid-point run store whose points differ only in one head weight."""
    run_dir.mkdir(parents=True)
    config = {"label": "ppo+next_latent+reward_pred", "env": {"name": "gymnax/CartPole-v1"}}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    rows = [
        {
            "global_step": step,
            "seed": seed,
            "grid": g,
            "hp/lr": 2.5e-4,
            "hp/next_latent.weight": w,
            "hp/reward_pred.weight": 1.0,
            "charts/episodic_return": 10.0 * g + seed + step / 100,
        }
        for g, w in enumerate(weights)
        for seed in (0, 1, 2)
        for step in (100, 200, 300)
    ]
    pd.DataFrame(rows).to_csv(run_dir / "metrics.csv", index=False)
    return run_dir


def test_plot_labels_grid_points_by_their_values(tmp_path: Path) -> None:
    run = _run(tmp_path / "run", (0.1, 0.3, 1.0))
    _, finals, _ = plot.make_plots([run], tmp_path / "out")
    assert list(finals["config"]) == [
        "ppo+next_latent+reward_pred next_latent.weight=0.1",
        "ppo+next_latent+reward_pred next_latent.weight=0.3",
        "ppo+next_latent+reward_pred next_latent.weight=1",
    ]
    fig = plot.plot_finals(finals, plot.DEFAULT_METRIC, 0.1, "t")
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    # the figure's rows (first on top) show whole, wrapped labels: three distinct rows
    assert [t.replace("\n", " ") for t in ticks[::-1]] == list(finals["config"])
    assert len(set(ticks)) == 3
    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # every label lies inside the figure (no cut-off at the left edge)
    renderer = canvas.get_renderer()
    for label in fig.axes[0].get_yticklabels():
        assert label.get_window_extent(renderer).x0 >= 0
    curves = pd.read_csv(tmp_path / "out" / "curves.csv")
    assert set(curves["config"]) == set(finals["config"])
    assert np.isfinite(finals["iqm"]).all()
