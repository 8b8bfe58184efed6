"""The envpool Atari backend: same spec and TimeStep as the ale backend, the same trajectory
on a fixed action sequence, vmapped seeds, bad backend names and a missing envpool explain
themselves."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rl_aux  # noqa: F401  (XLA flags before any backend)

pytest.importorskip("ale_py")
pytest.importorskip("envpool")

from envs.atari import AtariConfig, AtariVecEnv  # noqa: E402
from envs.atari_envpool import EnvpoolAtariVecEnv  # noqa: E402


def _rollout(env, actions):
    @jax.jit
    def run(key):
        state, ts0 = env.reset(key)

        def body(state, a):
            return env.step(state, a, key)

        return ts0, jax.lax.scan(body, state, jnp.asarray(actions, jnp.int32))[1]

    return jax.device_get(run(jax.random.PRNGKey(0)))


def test_envpool_matches_ale_backend_on_fixed_actions():
    """Sticky actions off and FIRE on reset in both (envpool cannot run zero no-op frames
    otherwise): same spec, dtypes and shapes, and the same frames, rewards, terminations and
    episode statistics over 400 steps with two game overs. Only the padding of an episode's
    first stack differs (envpool repeats the first frame, ale-py pads with zeros)."""
    cfg = AtariConfig(sticky_actions=0.0, fire_reset=True)
    ep, ale = EnvpoolAtariVecEnv("Breakout", 1, cfg), AtariVecEnv("Breakout", 1, cfg)
    assert ep.spec == ale.spec
    actions = np.random.default_rng(0).integers(0, ep.spec.num_actions, (400, 1))
    actions[::7] = 1  # FIRE often: the ball launches, bricks score, lives run out
    (e0, e), (a0, a) = _rollout(ep, actions), _rollout(ale, actions)
    same = lambda x, y: (x.shape, x.dtype) == (y.shape, y.dtype)  # noqa: E731
    assert jax.tree.all(jax.tree.map(same, (e0, e), (a0, a)))
    np.testing.assert_array_equal(e0.obs[..., -1], a0.obs[..., -1])
    np.testing.assert_array_equal(e0.obs[..., :-1], np.repeat(e0.obs[..., -1:], 3, -1))
    for f in ("reward", "terminated", "truncated"):
        np.testing.assert_array_equal(getattr(e, f), getattr(a, f), err_msg=f)
    for f in ("score", "episode_return", "episode_length", "game_over"):
        np.testing.assert_array_equal(e.extras[f], a.extras[f], err_msg=f)
    assert e.terminated.sum() == 2 and e.extras["score"].sum() > 0
    np.testing.assert_array_equal(e.obs[..., -1], a.obs[..., -1])
    np.testing.assert_array_equal(e.extras["next_obs"][..., -1], a.extras["next_obs"][..., -1])
    full = (e.extras["episode_length"] >= 3) & ~e.done  # stacks free of first-frame padding
    np.testing.assert_array_equal(e.obs[full], a.obs[full])


def test_envpool_vmapped_seeds_share_one_pool():
    """vmap over 2 seeds steps one envpool of 2 x num_envs; the 30-step cap truncates."""
    env = EnvpoolAtariVecEnv("Pong", 2, AtariConfig(max_frames=4 * 30))

    def run(key):
        state, ts = env.reset(key)

        def body(state, k):
            a = jax.random.randint(k, (2,), 0, env.spec.num_actions)
            state, ts = env.step(state, a, k)
            return state, (ts.truncated, ts.extras["episode_length"], ts.obs)

        return jax.lax.scan(body, state, jax.random.split(key, 40))[1]

    trunc, length, obs = jax.jit(jax.vmap(run))(jax.random.split(jax.random.PRNGKey(1), 2))
    assert sorted(env._instances) == [1, 2] and obs.shape == (2, 40, 2, 84, 84, 4)
    np.testing.assert_array_equal(np.asarray(trunc).sum(1), 1)
    assert np.all(np.asarray(length)[np.asarray(trunc)] == 30)
    assert not np.array_equal(obs[0, -1], obs[1, -1])  # the seeds' emulators differ


def test_bad_backend_exits_2_naming_field_and_choices():
    out = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "train", "env=atari/Breakout",
         "env.options.backend=gym"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert "env.options.backend='gym'" in out.stderr and "ale, envpool" in out.stderr


def test_missing_envpool_says_what_to_install(monkeypatch):
    from experiments.compose import ConfigError, load_config

    monkeypatch.setitem(sys.modules, "envpool", None)  # import envpool -> ImportError
    with pytest.raises(ConfigError, match=r"needs envpool: pip install 'rl-aux\[atari\]'"):
        load_config(["env=atari/Breakout", "env.options.backend=envpool"])


def test_envpool_resume_warns_it_is_not_exact(capsys):
    """envpool cannot save its emulators: no action history is kept, and resume says so."""
    env = EnvpoolAtariVecEnv("Pong", 2, AtariConfig(max_frames=4 * 30))
    state, _ = jax.jit(env.reset)(jax.random.PRNGKey(0))
    assert env.history_capacity == 0 and state.actions.shape == (2, 0)
    env.restore_host_state(state, None)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "backend=envpool" in err[0] and "will not equal" in err[0], err
