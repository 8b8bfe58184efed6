"""PVN offline path: dataset format, RLDS conversion, `rl-aux train` pre-training and linear
evaluation from its checkpoint, logger.save_transitions, the paper-scale Atari configs."""

import json
import os

import flax
import jax
import numpy as np
import pytest

import rl_aux  # noqa: F401
from experiments.cli import main as cli
from rl_aux.dataset import TransitionWriter, load_transitions
from scripts.rlds_to_transitions import episode_transitions


def _write_random(path, n, shape, num_actions, dtype="float32", seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.integers(0, 2, (n,) + shape).astype(dtype)
    w = TransitionWriter(path, shape, dtype, num_actions, "synthetic", store_dtype="auto")
    w.write(
        {
            "obs": obs,
            "action": rng.integers(0, num_actions, n),
            "reward": rng.normal(size=n),
            "terminated": rng.random(n) < 0.05,
            "truncated": np.zeros(n, bool),
            "next_obs": np.roll(obs, -1, 0),
        }
    )
    w.close()
    return obs


def test_dataset_roundtrip_and_rlds_episode(tmp_path):
    obs = _write_random(str(tmp_path / "d"), 50, (3, 3, 2), 4)
    tr, meta = load_transitions(str(tmp_path / "d"))
    assert meta["store_dtype"] == "uint8" and tr.obs.dtype == np.float32
    np.testing.assert_array_equal(tr.obs, obs)
    steps = 5
    frames = np.arange(steps, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 1), np.uint8)
    term = np.array([0, 0, 0, 0, 1], bool)
    out = episode_transitions(frames, np.eye(3)[[0, 1, 2, 0, 0]], np.arange(5.0), term, term, 2)
    assert out["obs"].shape == (4, 2, 2, 2) and list(out["action"]) == [0, 1, 2, 0]
    np.testing.assert_array_equal(out["next_obs"][0, 0, 0], [0, 1])  # frames t-1, t
    assert list(out["terminated"]) == [0, 0, 0, 1] and not out["truncated"].any()


@pytest.mark.slow
def test_pretrain_cli_then_linear_eval_frozen(tmp_path):
    data = str(tmp_path / "data")
    _write_random(data, 500, (11, 11, 2), 4)
    pre_dir = str(tmp_path / "pre")
    rc = cli(
        [
            "train",
            "experiment=pvn_pretrain",
            f"agent.dataset={data}",
            f"run_dir={pre_dir}",
            "total_timesteps=40",
            "agent.warmup_steps=20",
            "agent.batch_size=16",
            "num_seeds=2",
            "heads.pvn.num_tasks=8",
            "heads.pvn.tasks_per_module=4",
            "logger.progress=false",
        ]
    )
    assert rc == 0
    import pandas as pd

    m = pd.read_csv(os.path.join(pre_dir, "metrics.csv"))
    assert {"pvn/td", "pvn/fire_rate", "pvn/qr"} <= set(m.columns) and len(m) == 2 * 40
    assert m[m.global_step <= 20]["pvn/td_on"].max() == 0 and m["pvn/td_on"].iloc[-1] == 1
    with open(os.path.join(pre_dir, "pvn_params.msgpack"), "rb") as f:
        torso = flax.serialization.msgpack_restore(f.read())["net"]["params"]["torso"]
    ev_dir = str(tmp_path / "ev")
    rc = cli(
        [
            "train",
            "experiment=pvn_linear_eval",
            f"agent.pretrained={pre_dir}",
            "agent.pretrained_seed=1",
            f"run_dir={ev_dir}",
            "total_timesteps=400",
            "agent.learning_starts=100",
            "eval.episodes=4",
            "logger.progress=false",
        ]
    )
    assert rc == 0
    from agents.pvn import PVNLinearEval
    from experiments.compose import load_config
    from experiments.train import build_agent, stack_hparams
    from rl_aux.vectorize import vmapped_chunk, vmapped_init

    over = [f"agent.pretrained={pre_dir}", "agent.pretrained_seed=1", "agent.learning_starts=8"]
    cfg = load_config(["experiment=pvn_linear_eval", *over])
    _, agent = build_agent(cfg)
    assert isinstance(agent, PVNLinearEval)
    hp = agent.default_hparams()
    init_fn, axes = vmapped_init(agent, jax.random.PRNGKey(0), hp)
    state = init_fn(jax.random.split(jax.random.PRNGKey(0), 1), stack_hparams([hp]))
    q0 = np.array(state.params["net"]["params"]["q"]["kernel"])
    state, _ = vmapped_chunk(agent, axes, 20)(state)
    assert np.abs(state.params["net"]["params"]["q"]["kernel"] - q0).max() > 0  # Q learns
    after = state.params["net"]["params"]["torso"]
    # frozen: the trained run's torso is exactly pre-training seed 1's torso
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a[0], b[1]), after, torso)


@pytest.mark.slow
def test_save_transitions_from_dqn_run(tmp_path):
    run = str(tmp_path / "dqn")
    rc = cli(
        [
            "train",
            "agent=dqn",
            "env=gymnax/CartPole-v1",
            "total_timesteps=600",
            "agent.learning_starts=200",
            "agent.buffer_size=1000",
            "logger.log_interval=100",
            "logger.save_transitions=true",
            f"run_dir={run}",
            "logger.progress=false",
            "eval.episodes=2",
        ]
    )
    assert rc == 0
    tr, meta = load_transitions(os.path.join(run, "transitions"))
    assert meta["count"] == 600 and tr.obs.shape == (600, 4)
    # consecutive steps of one env: next_obs of a non-final step is the next row's obs
    ten = tr.obs.reshape(60, 10, 4)
    nxt = tr.next_obs.reshape(60, 10, 4)
    done = (tr.terminated | tr.truncated).reshape(60, 10)
    ok = ~done[:-1]
    np.testing.assert_allclose(nxt[:-1][ok], ten[1:][ok])


@pytest.mark.slow
def test_atari_paper_scale_pretrain_smoke(tmp_path):
    """IMPALA x8 / 4096 features / 100 rnd tasks on synthetic 84x84x4 uint8 frames."""
    data = str(tmp_path / "atari")
    _write_random(data, 64, (84, 84, 4), 18, dtype="uint8")
    run = str(tmp_path / "pre")
    rc = cli(
        [
            "train",
            "experiment=pvn_pretrain_atari",
            f"agent.dataset={data}",
            f"run_dir={run}",
            "total_timesteps=2",
            "agent.batch_size=4",
            "logger.log_interval=1",
            "logger.progress=false",
        ]
    )
    assert rc == 0
    with open(os.path.join(run, "pvn_params.json")) as f:
        meta = json.load(f)
    assert meta["network"]["features"] == 4096 and meta["network"]["impala_width"] == 8.0


@pytest.mark.slow
def test_minatar_pipeline_smoke(tmp_path):
    """experiments/studies/pvn_minatar.py end to end at toy scale: DQN logs transitions, PVN
    pre-trains on them, both linear arms read the same torso shape, and the plot/summary has all
    3 arms."""
    from experiments.studies.pvn_minatar import main

    out = str(tmp_path / "pm")
    args = ["--out", out, "--steps", "1600", "--seeds", "2", "--pretrain-steps", "20"]
    assert main([*args, "--eval-every", "800"]) == 0
    _, meta = load_transitions(os.path.join(out, "dqn", "transitions"))
    assert meta["count"] == 1600 and tuple(meta["obs_shape"]) == (10, 10, 4)
    with open(os.path.join(out, "summary.json")) as f:
        finals = json.load(f)["final"]
    assert [r["config"] for r in finals] == ["dqn", "pvn_frozen", "random_frozen"]
    assert all(r["n_seeds"] == 2 for r in finals)
    assert os.path.exists(os.path.join(out, "plots", "final.png"))


@pytest.mark.slow
def test_atari_paper_scale_linear_eval_smoke(tmp_path):
    """pvn_linear_eval_atari on Breakout (IMPALA x8, 4096 features, frame replay): a few steps."""
    pytest.importorskip("ale_py")
    run = str(tmp_path / "lin")
    rc = cli(
        [
            "train",
            "experiment=pvn_linear_eval_atari",
            "agent.pretrained=",
            "total_timesteps=200",
            "agent.buffer_size=1000",
            "agent.learning_starts=100",
            "eval.episodes=1",
            "eval.max_steps=50",
            f"run_dir={run}",
            "logger.progress=false",
        ]
    )
    assert rc == 0
    import pandas as pd

    m = pd.read_csv(os.path.join(run, "metrics.csv"))
    assert m["global_step"].iloc[-1] == 200 and m["losses/td"].notna().any()
