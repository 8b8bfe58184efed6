"""The Env contract: auto-reset, distinct termination/truncation, true next_obs, statistics."""

import jax
import jax.numpy as jnp
import numpy as np

from envs import make_env
from envs.core import JaxVecEnv
from envs.jax_envs import GymnaxEnv


def _roll(env, steps, action_fn, seed=0):
    state, ts = env.reset(jax.random.PRNGKey(seed))

    def body(c, k):
        s, obs = c
        s, ts = env.step(s, action_fn(obs), k)
        return (s, ts.obs), ts

    _, traj = jax.lax.scan(body, (state, ts.obs), jax.random.split(jax.random.PRNGKey(1), steps))
    return traj


def test_truncation_is_not_termination():
    env = JaxVecEnv(GymnaxEnv("CartPole-v1", max_steps_in_episode=20), 3)
    # a balancing heuristic keeps the pole up for 20 steps: every episode ends by time limit
    traj = _roll(env, 45, lambda obs: (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(jnp.int32))
    assert not bool(traj.terminated.any())
    trunc_rows = np.nonzero(np.asarray(traj.truncated[:, 0]))[0]
    np.testing.assert_array_equal(trunc_rows, [19, 39])
    np.testing.assert_allclose(np.asarray(traj.extras["episode_length"][19]), 20)
    np.testing.assert_allclose(np.asarray(traj.extras["episode_return"][19]), 20.0)


def test_auto_reset_and_true_next_obs():
    env = make_env("gymnax/CartPole-v1", 4)
    traj = _roll(env, 60, lambda obs: jnp.zeros(obs.shape[0], jnp.int32))
    done = np.asarray(traj.terminated)
    assert done.any()
    t, i = np.argwhere(done)[0]
    next_obs = np.asarray(traj.extras["next_obs"][t, i])
    reset_obs = np.asarray(traj.obs[t, i])
    assert abs(next_obs[2]) > 0.2  # the final obs has the pole past the threshold...
    assert np.all(np.abs(reset_obs) <= 0.05)  # ...the returned obs is a fresh start
    # where not done, next_obs is the obs the agent sees next
    nd = ~np.asarray(traj.done)
    np.testing.assert_array_equal(np.asarray(traj.extras["next_obs"])[nd], np.asarray(traj.obs)[nd])


def test_unknown_env_lists_close_matches():
    try:
        make_env("gymnax/CartPol-v1", 2)
    except ValueError as e:
        assert "gymnax/CartPole-v1" in str(e) and "Accepted" in str(e)
    else:
        raise AssertionError("expected ValueError")
