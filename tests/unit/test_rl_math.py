"""GAE and n-step replay targets against plain-Python references."""

import jax
import jax.numpy as jnp
import numpy as np

from rl_aux.replay import replay_add, replay_init, replay_sample
from rl_aux.rl_math import gae
from rl_aux.types import Transition


def _gae_ref(r, v, nv, term, done, gamma, lam):
    T, N = r.shape
    adv = np.zeros((T, N))
    for n in range(N):
        a = 0.0
        for t in reversed(range(T)):
            delta = r[t, n] + gamma * (1 - term[t, n]) * nv[t, n] - v[t, n]
            a = delta + gamma * lam * (1 - done[t, n]) * a
            adv[t, n] = a
    return adv


def test_gae_matches_reference():
    rng = np.random.default_rng(0)
    T, N = 17, 3
    r, v, nv = rng.normal(size=(3, T, N))
    term = rng.random((T, N)) < 0.1
    trunc = (rng.random((T, N)) < 0.1) & ~term
    done = term | trunc
    adv, ret = gae(
        jnp.array(r), jnp.array(v), jnp.array(nv), jnp.array(term), jnp.array(done), 0.97, 0.9
    )
    ref = _gae_ref(r, v, nv, term, done, 0.97, 0.9)
    np.testing.assert_allclose(np.asarray(adv), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(ret), ref + v, rtol=1e-5, atol=1e-5)


def test_gae_is_differentiable_in_reward_and_gamma():
    r = jnp.ones((5, 2))
    z = jnp.zeros((5, 2))
    f = lambda r, g: gae(r, z, z, z, z, g, 0.95)[0].sum()
    gr, gg = jax.grad(f, argnums=(0, 1))(r, 0.9)
    assert np.all(np.asarray(gr) > 0) and float(gg) > 0


def test_nstep_sampling_cuts_at_episode_ends():
    """Rows: one env, rewards 1..8, terminal at t=2, truncation at t=5; n=3, gamma=0.5."""
    n_rows, gamma = 8, 0.5
    obs = jnp.arange(n_rows, dtype=jnp.float32)[:, None, None]
    term = jnp.zeros((n_rows, 1), bool).at[2, 0].set(True)
    trunc = jnp.zeros((n_rows, 1), bool).at[5, 0].set(True)
    ex = Transition(
        obs=obs[0],
        action=jnp.zeros(1, jnp.int32),
        reward=jnp.zeros(1),
        terminated=term[0],
        truncated=trunc[0],
        next_obs=obs[0],
    )
    buf = replay_init(ex, n_rows)
    for t in range(n_rows):
        tr = Transition(
            obs=obs[t],
            action=jnp.full(1, t, jnp.int32),
            reward=jnp.full(1, t + 1.0),
            terminated=term[t],
            truncated=trunc[t],
            next_obs=obs[t] + 100.0,
        )
        buf = replay_add(buf, tr)
    tr, disc = replay_sample(buf, jax.random.PRNGKey(0), 256, 3, gamma)
    for i in range(256):
        t = int(tr.action[i])
        # reference: walk forward until an episode end or n steps
        g, k = 0.0, 0
        while True:
            g += gamma**k * (t + k + 1)
            ended_term, ended = bool(term[t + k, 0]), bool(term[t + k, 0] or trunc[t + k, 0])
            k += 1
            if ended or k == 3:
                break
        assert abs(float(tr.reward[i]) - g) < 1e-5
        exp_disc = 0.0 if ended_term else gamma**k
        assert abs(float(disc[i]) - exp_disc) < 1e-6
        assert float(tr.next_obs[i, 0]) == t + k - 1 + 100.0
    assert int(tr.action.max()) <= n_rows - 3  # windows never run past the newest row


def test_one_step_sampling_returns_stored_transitions():
    """The n=1 fast path: reward, next_obs and discount = gamma * (1 - terminated)."""
    rows = 6
    ex = Transition(
        obs=jnp.zeros((2, 1)),
        action=jnp.zeros(2, jnp.int32),
        reward=jnp.zeros(2),
        terminated=jnp.zeros(2, bool),
        truncated=jnp.zeros(2, bool),
        next_obs=jnp.zeros((2, 1)),
    )
    buf = replay_init(ex, rows)
    for t in range(rows):
        term = jnp.array([t == 2, False])
        buf = replay_add(
            buf,
            Transition(
                obs=jnp.full((2, 1), t, jnp.float32),
                action=jnp.array([t, 10 + t], jnp.int32),
                reward=jnp.full(2, t + 0.5),
                terminated=term,
                truncated=jnp.zeros(2, bool),
                next_obs=jnp.full((2, 1), t + 100.0),
            ),
        )
    tr, disc = replay_sample(buf, jax.random.PRNGKey(3), 64, 1, 0.9)
    t = np.asarray(tr.obs[:, 0]).astype(int)
    np.testing.assert_allclose(np.asarray(tr.reward), t + 0.5)
    np.testing.assert_allclose(np.asarray(tr.next_obs[:, 0]), t + 100.0)
    is_env0 = np.asarray(tr.action) < 10
    expect = np.where(is_env0 & (t == 2), 0.0, 0.9)
    np.testing.assert_allclose(np.asarray(disc), expect, rtol=1e-6)
