"""`rl-aux eval` (experiments/evaluate.py) on tiny trained runs: JSON, determinism, videos,
and the exit-2 messages for bad input."""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from experiments.cli import main
from experiments.compose import load_config
from experiments.evaluate import MINATAR_COLOURS, minatar_frame, video_frames, write_gif
from experiments.train import run


@pytest.fixture(scope="module")
def cartpole_ppo(tmp_path_factory) -> tuple[Path, str]:
    """2 seeds x 2 learning rates of PPO on CartPole, 2048 steps; (run dir, train summary)."""
    rd = tmp_path_factory.mktemp("eval") / "ppo"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        run(
            load_config(
                [
                    "agent=ppo",
                    "total_timesteps=2048",
                    "num_seeds=2",
                    "grid.lr=[0.001,0.0003]",
                    "logger.progress=false",
                    f"run_dir={rd}",
                ]
            )
        )
    return rd, err.getvalue()


@pytest.fixture(scope="module")
def minatar_dqn(tmp_path_factory) -> Path:
    """DQN on Breakout-MinAtar, 1 seed, 1000 steps (learning from step 500)."""
    rd = tmp_path_factory.mktemp("eval") / "minatar"
    over = [
        "agent=dqn",
        "env=gymnax/Breakout-MinAtar",
        "total_timesteps=1000",
        "agent.learning_starts=500",
        "agent.buffer_size=1000",
        "agent.batch_size=16",
        "logger.progress=false",
        f"run_dir={rd}",
    ]
    run(load_config(over), quiet=True)
    return rd


def _eval(args: list[str], capsys) -> tuple[int, str]:
    rc = main(["eval", *args])
    out = capsys.readouterr()
    return rc, out.out + out.err


def test_train_summary_names_grid_points_by_value(cartpole_ppo) -> None:
    _, summary = cartpole_ppo
    lines = [ln for ln in summary.splitlines() if ln.strip().startswith(("0 ", "1 "))]
    assert len(lines) == 4
    assert sum(ln.endswith("lr=1e-3") for ln in lines) == 2
    assert sum(ln.endswith("lr=3e-4") for ln in lines) == 2


def test_cartpole_eval_is_deterministic_and_films_each_seed(cartpole_ppo, capsys) -> None:
    rd, _ = cartpole_ppo
    rc, out = _eval([str(rd), "--episodes", "3", "--video"], capsys)
    assert rc == 0, out
    latest = max(int(p.name) for p in (rd / "checkpoints").iterdir() if p.name.isdigit())
    path = rd / "eval" / f"{latest}.json"
    first = json.loads(path.read_text())
    assert first["checkpoint"] == latest and first["global_step"] == 2048
    assert [(r["grid"], r["seed"]) for r in first["runs"]] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for r in first["runs"]:
        assert len(r["returns"]) == 3 and all(math.isfinite(x) and x >= 1 for x in r["returns"])
        assert r["ci_low"] <= r["mean"] <= r["ci_high"]
        v = r["video"]
        gif = Image.open(v["path"])
        # the obs before each step of the first episode, then its final obs
        assert gif.n_frames == v["frames"] == v["episode_length"] + 1
        assert v["episode_return"] == v["episode_length"]  # CartPole pays 1 per step
    assert [g["label"] for g in first["grid_points"]] == ["lr=1e-3", "lr=3e-4"]
    assert "lr=3e-4" in out and str(path) in out
    rc, _ = _eval([str(rd), "--episodes", "3"], capsys)
    assert rc == 0
    again = json.loads(path.read_text())
    assert [r["returns"] for r in again["runs"]] == [r["returns"] for r in first["runs"]]


@pytest.mark.slow
def test_minatar_eval_films_the_grid(minatar_dqn, capsys) -> None:
    rc, out = _eval([str(minatar_dqn), "--episodes", "2", "--epsilon", "0.1", "--video"], capsys)
    assert rc == 0, out
    (path,) = (minatar_dqn / "eval").glob("*.json")
    result = json.loads(path.read_text())
    assert result["epsilon"] == 0.1 and result["env"] == "gymnax/Breakout-MinAtar"
    (r,) = result["runs"]
    assert all(math.isfinite(x) for x in r["returns"])
    gif = Image.open(r["video"]["path"])
    assert gif.n_frames == r["video"]["episode_length"] + 1 >= 2
    assert gif.size == (160, 160 + 14)  # 10x10 cells of 16 px under a 14 px step strip
    assert Path(r["video"]["path"]).stat().st_size > 0


def test_minatar_frames_draw_each_channel_and_the_final_obs(tmp_path) -> None:
    obs = np.zeros((3, 10, 10, 4), np.float32)  # 3 steps of a 10x10 grid with 4 channels
    for t in range(3):
        obs[t, 9, t, 0] = 1.0  # channel 0 moves right along the bottom row
        obs[t, 5, 5, 1] = 1.0  # channel 1 stays put
    next_obs = obs[:, ::-1]
    alive = np.array([1.0, 1.0, 0.0])  # the first episode ends after 2 steps
    frames = video_frames(obs, next_obs, alive, minatar_frame)
    assert len(frames) == 3 and all(f.shape == (160, 160, 3) for f in frames)
    cell = lambda f, r, c: tuple(int(x) for x in f[r * 16 + 8, c * 16 + 8])
    assert cell(frames[0], 9, 0) == tuple(MINATAR_COLOURS[0]) == cell(frames[1], 9, 1)
    assert cell(frames[0], 5, 5) == tuple(MINATAR_COLOURS[1])
    assert cell(frames[0], 0, 0) == (0, 0, 0)
    assert np.array_equal(frames[2], minatar_frame(next_obs[1]))  # the 2nd step's outcome
    # identical frames stay separate frames (GIF writers merge repeats): the step strip
    assert write_gif(str(tmp_path / "v.gif"), [frames[0], frames[0]]) == 2
    assert Image.open(tmp_path / "v.gif").n_frames == 2


def test_bad_input_exits_2_naming_the_value(cartpole_ppo, tmp_path, capsys) -> None:
    rd, _ = cartpole_ppo
    rc, out = _eval([str(tmp_path / "nope")], capsys)
    assert rc == 2 and "nope" in out and "no such directory" in out
    steps = sorted(int(p.name) for p in (rd / "checkpoints").iterdir() if p.name.isdigit())
    rc, out = _eval([str(rd), "--checkpoint", "12345"], capsys)
    assert rc == 2 and "--checkpoint=12345" in out
    assert all(f"{s} (global_step " in out for s in steps)
    rc, out = _eval([str(rd), "--episodes", "0"], capsys)
    assert rc == 2 and "--episodes" in out and "'0'" in out and ">= 1" in out
    rc, out = _eval([str(rd), "--epsilon", "1.5"], capsys)
    assert rc == 2 and "--epsilon" in out and "[0, 1]" in out

    bare = tmp_path / "no_ckpt"
    bare.mkdir()
    shutil.copy(rd / "config.yaml", bare / "config.yaml")
    rc, out = _eval([str(bare)], capsys)
    assert rc == 2 and "no checkpoints" in out and str(bare) in out

    other = tmp_path / "acrobot"
    other.mkdir()
    cfg = yaml.safe_load((rd / "config.yaml").read_text())
    cfg["env"]["name"] = "gymnax/Acrobot-v1"
    (other / "config.yaml").write_text(yaml.safe_dump(cfg))
    rc, out = _eval([str(other), "--video"], capsys)
    assert rc == 2 and "gymnax/Acrobot-v1" in out and "gymnax/*-MinAtar" in out

    cfg["env"] = {"name": "minihack/Room-5x5-v0"}
    (other / "config.yaml").write_text(yaml.safe_dump(cfg))
    rc, out = _eval([str(other)], capsys)
    assert rc == 2 and "minihack/Room-5x5-v0" in out and "no checkpoints" in out
