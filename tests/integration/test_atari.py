"""Atari through ale-py's XLA vector env: the preprocessing equals gymnasium's wrappers, seeds
vmap onto one emulator batch, bad names and missing extras explain themselves."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rl_aux  # noqa: F401  (XLA flags before any backend)

pytest.importorskip("ale_py")

from envs.atari import AtariConfig, AtariVecEnv  # noqa: E402


def _gym_env(max_frames: int):
    import ale_py
    import gymnasium as gym
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

    pytest.importorskip("cv2")
    gym.register_envs(ale_py)
    g = gym.make(
        "ALE/Breakout-v5",
        frameskip=1,
        repeat_action_probability=0.0,
        max_num_frames_per_episode=max_frames,
    )
    g = AtariPreprocessing(
        g, noop_max=0, frame_skip=4, screen_size=84, terminal_on_life_loss=False,
        grayscale_obs=True, scale_obs=False,
    )  # fmt: skip
    return FrameStackObservation(g, 4, padding_type="zero")


def test_preprocessing_matches_gymnasium_wrappers():
    """Same obs, rewards, terminations and truncations as AtariPreprocessing +
    FrameStackObservation on a fixed action sequence (sticky actions off in both), across a
    frame-cap truncation, a game over and the resets that follow."""
    steps, cap = 700, 4 * 250
    env = AtariVecEnv("Breakout", 1, AtariConfig(sticky_actions=0.0, max_frames=cap))
    actions = np.random.default_rng(0).integers(0, env.spec.num_actions, steps)
    actions[::7] = 1  # FIRE often, so balls launch, bricks score and lives run out

    @jax.jit
    def rollout(key):
        state, ts = env.reset(key)

        def body(state, a):
            state, ts = env.step(state, a[None], key)
            return state, ts

        _, tss = jax.lax.scan(body, state, jnp.asarray(actions, jnp.int32))
        return ts.obs[0], tss

    first, tss = rollout(jax.random.PRNGKey(0))
    g = _gym_env(cap)
    o, _ = g.reset(seed=0)
    np.testing.assert_array_equal(np.asarray(first), np.moveaxis(o, 0, -1))
    ends = {"term": 0, "trunc": 0}
    total = 0.0
    for t in range(steps):
        o, r, term, trunc, _ = g.step(int(actions[t]))
        np.testing.assert_array_equal(
            np.asarray(tss.extras["next_obs"][t, 0]), np.moveaxis(o, 0, -1)
        )
        assert float(tss.extras["score"][t, 0]) == r, t
        assert float(tss.reward[t, 0]) == np.sign(r), t
        assert bool(tss.terminated[t, 0]) == term and bool(tss.truncated[t, 0]) == trunc, t
        total += r
        if term or trunc:
            ends["term" if term else "trunc"] += 1
            o, _ = g.reset()
            np.testing.assert_array_equal(np.asarray(tss.obs[t, 0]), np.moveaxis(o, 0, -1))
        else:
            np.testing.assert_array_equal(
                np.asarray(tss.obs[t, 0]), np.asarray(tss.extras["next_obs"][t, 0])
            )
    assert ends["term"] >= 1 and ends["trunc"] >= 1 and total > 0, (ends, total)


def test_vmapped_seeds_share_one_emulator_batch():
    """vmap over 2 seeds steps one ale-py env of 2 x num_envs; seeds differ, stats add up."""
    env = AtariVecEnv("Pong", 2, AtariConfig(max_frames=4 * 30))
    keys = jax.random.split(jax.random.PRNGKey(1), 2)

    def run(key):
        state, ts = env.reset(key)

        def body(state, k):
            a = jax.random.randint(k, (2,), 0, env.spec.num_actions)
            state, ts = env.step(state, a, k)
            return state, (ts.done, ts.extras["episode_length"], ts.obs)

        return jax.lax.scan(body, state, jax.random.split(key, 40))[1]

    done, length, obs = jax.jit(jax.vmap(run))(keys)
    assert sorted(env._instances) == [1, 2]  # the vmapped run built a 4-emulator env
    assert done.shape == (2, 40, 2) and obs.shape == (2, 40, 2, 84, 84, 4)
    np.testing.assert_array_equal(np.asarray(done).sum(1), 1)  # capped at 30 steps
    assert np.all(np.asarray(length)[np.asarray(done)] == 30)


def test_bad_game_lists_close_matches_and_exits_2():
    out = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "train", "env=atari/NotAGame"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert "atari/NameThisGame" in out.stderr and "not a registered environment" in out.stderr


def test_missing_extra_says_what_to_install(monkeypatch):
    from experiments.compose import ConfigError, load_config

    monkeypatch.setitem(sys.modules, "ale_py", None)  # import ale_py -> ImportError
    with pytest.raises(ConfigError, match=r"pip install 'rl-aux\[atari\]'"):
        load_config(["env=atari/Breakout"])


def test_bad_protocol_option_names_the_field():
    from experiments.compose import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"env.options.sticky_actions=2.0 is out of range"):
        load_config(["env=atari/Breakout", "env.options.sticky_actions=2.0"])


def test_run_batching_map_refuses_host_emulators(tmp_path):
    from experiments.compose import load_config
    from experiments.train import run

    over = ["experiment=atari_dqn", "num_seeds=2", "run_batching=map", f"run_dir={tmp_path}"]
    with pytest.raises(ValueError, match=r"run_batching=map.*accepted here: vmap"):
        run(load_config([*over, "total_timesteps=64"]), quiet=True)
