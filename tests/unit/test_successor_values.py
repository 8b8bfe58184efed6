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


def test_successor_values_take_a_pytree_of_successors_for_a_recurrent_core():
    """Successors given as (final obs, carry after the step): the gathered pytree reaches
    `value_fn` whole, and truncated steps get V(final obs | carry), as a full pass gives."""
    t, n, d, h = 12, 4, 3, 5
    k_obs, k_carry, k_w = jax.random.split(jax.random.PRNGKey(1), 3)
    w_obs, w_carry = jax.random.normal(k_w, (d,)), jnp.arange(h, dtype=jnp.float32)
    value_fn = lambda s: jnp.tanh(s[0] @ w_obs + 0.1 * s[1] @ w_carry)
    next_obs = jax.random.normal(k_obs, (t, n, d))
    carry = jax.random.normal(k_carry, (t, n, h))
    trunc = np.zeros((t, n), bool)
    trunc[4::5] = True  # a time limit of 5 steps
    full = np.asarray(value_fn((next_obs.reshape(t * n, d), carry.reshape(t * n, h)))).reshape(t, n)
    value = jnp.asarray(np.roll(full, 1, 0))  # value[t + 1] = V of step t's successor
    last = jnp.asarray(full[-1])
    got = successor_values(value, last, jnp.asarray(trunc), (next_obs, carry), value_fn,
                           truncations_per_env(t, 5))  # fmt: skip
    np.testing.assert_allclose(np.asarray(got)[trunc], full[trunc], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(got)[:-1][~trunc[:-1]], full[:-1][~trunc[:-1]])
