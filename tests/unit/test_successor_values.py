"""PPO's successor values from the rollout's own values equal V of every true next obs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rl_aux.rl_math import successor_values, truncations_per_env


def test_truncations_per_env_bounds_time_limit_ends():
    assert truncations_per_env(128, 500) == 1
    assert truncations_per_env(128, 128) == 1
    assert truncations_per_env(129, 128) == 2
    assert truncations_per_env(10, 3) == 4  # steps 2, 5, 8 (and never more)
    assert truncations_per_env(10, None) == 10


@pytest.mark.parametrize("limit", [3, 5, 12])
def test_successor_values_equal_a_full_pass_on_time_limited_episodes(limit):
    """Random episodes that end by termination anywhere and by truncation every `limit` steps:
    V(next_obs) at truncations, V(obs[t + 1]) elsewhere, as a pass over all next_obs gives."""
    t, n, d = 24, 6, 3
    k_obs, k_term, k_w = jax.random.split(jax.random.PRNGKey(0), 3)
    w = jax.random.normal(k_w, (d,))
    value_fn = lambda o: jnp.tanh(o @ w)
    fresh = jax.random.normal(k_obs, (t + 1, n, d))  # obs[t] and the final obs of ended steps
    term = np.asarray(jax.random.bernoulli(k_term, 0.05, (t, n)))
    trunc = np.zeros((t, n), bool)
    age = np.zeros(n, int)
    for s in range(t):
        age += 1
        trunc[s] = (age >= limit) & ~term[s]
        age[term[s] | trunc[s]] = 0
    obs = np.asarray(fresh[:t])
    next_obs = np.where((term | trunc)[..., None], -np.asarray(fresh[1:]), np.asarray(fresh[1:]))
    value, last = value_fn(jnp.asarray(obs)), value_fn(fresh[t])
    got = successor_values(value, last, jnp.asarray(trunc), jnp.asarray(next_obs), value_fn,
                           truncations_per_env(t, limit))  # fmt: skip
    want = np.asarray(value_fn(jnp.asarray(next_obs)))
    live = ~term  # a terminated step's successor value is cut by GAE
    np.testing.assert_allclose(np.asarray(got)[live], want[live], rtol=1e-6, atol=1e-6)
    assert trunc.any()
