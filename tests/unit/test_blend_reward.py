"""BARFI blend: starts as naive shaping, reads r_aux from extras, clear errors; grid env rules."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs.barfi_grid import BarfiGrid
from envs.registry import make_env
from rl_aux.rewards import reward_class
from rl_aux.rewards.blend import BlendConfig, BlendReward
from rl_aux.types import Transition


def _tr(extras):
    z = jnp.zeros(3)
    return Transition(
        obs=z,
        action=z.astype(jnp.int32),
        reward=jnp.array([1.0, -0.1, 0.0]),
        terminated=z,
        truncated=z,
        next_obs=z,
        extras=extras,
    )


def test_blend_initialises_as_naive_shaping_and_penalises():
    mod = BlendReward(BlendConfig(sources=("a", "b"), gamma_l2=0.5, reward_l2=0.1), 0.99)
    feats = jax.random.normal(jax.random.PRNGKey(0), (3, 6))
    phi = mod.init(jax.random.PRNGKey(1), None, 6)
    ra, rb = jnp.array([5.0, 0.0, 2.0]), jnp.array([-1.0, -2.0, 0.5])
    r, gamma = mod.reward(phi, _tr({"features": feats, "r_aux/a": ra, "r_aux/b": rb}))
    np.testing.assert_allclose(np.asarray(r), np.array([1.0, -0.1, 0.0]) + ra + rb, rtol=1e-6)
    np.testing.assert_allclose(float(gamma), 0.99, rtol=1e-6)
    np.testing.assert_allclose(float(mod.penalty(phi)), 0.5 * 0.99, rtol=1e-5)  # W = 0 at init
    mlp = BlendReward(BlendConfig(sources=("a",), hidden=4), 0.99)
    phi = mlp.init(jax.random.PRNGKey(2), None, 6)
    r, _ = mlp.reward(phi, _tr({"features": feats, "r_aux/a": ra}))
    np.testing.assert_allclose(np.asarray(r), np.array([1.0, -0.1, 0.0]) + ra, rtol=1e-6)


def test_blend_without_bias_has_no_b_and_no_gradient_into_it():
    """reward.learn_bias=false: r_phi = r_p + w . r_aux whatever the bias column holds."""
    mod = BlendReward(BlendConfig(sources=("a",), learn_bias=False), 0.99)
    feats = jax.random.normal(jax.random.PRNGKey(0), (3, 6))
    phi = mod.init(jax.random.PRNGKey(1), None, 6)
    phi = {**phi, "W": phi["W"].at[:, 0].set(1.0), "c": phi["c"].at[0].set(3.0)}
    ra = jnp.array([5.0, 0.0, 2.0])
    tr = _tr({"features": feats, "r_aux/a": ra})
    r, _ = mod.reward(phi, tr)
    np.testing.assert_allclose(np.asarray(r), np.array([1.0, -0.1, 0.0]) + ra, rtol=1e-6)
    g = jax.grad(lambda p: mod.reward(p, tr)[0].sum())(phi)
    assert float(jnp.abs(g["W"][:, 0]).max()) == 0.0 and float(g["c"][0]) == 0.0
    assert float(jnp.abs(g["W"][:, 1]).max()) > 0.0


def test_missing_aux_source_and_unknown_module_are_named():
    mod = BlendReward(BlendConfig(sources=("subgoal",)), 0.99)
    phi = mod.init(jax.random.PRNGKey(0), None, 2)
    with pytest.raises(KeyError, match="subgoal.*present: none"):
        mod.reward(phi, _tr({"features": jnp.zeros((3, 2))}))
    with pytest.raises(ValueError, match="reward='blnd'.*Close matches: blend"):
        reward_class("blnd")


def test_barfi_grid_rewards_and_registry():
    env = BarfiGrid()
    state, obs = env.reset(jax.random.PRNGKey(0))
    assert obs.shape == (49,) and int(obs.argmax()) == 0
    assert float(env.aux_reward("centre", jnp.array([3, 3]))) == 5.0
    assert float(env.aux_reward("centre", jnp.array([1, 3]))) == 0.0
    assert float(env.aux_reward("distance", jnp.array([0, 0]))) == pytest.approx(-1.2)
    near = state.replace(pos=jnp.array([6, 5]))
    hits = [env.step(jax.random.PRNGKey(i), near, 3) for i in range(20)]  # right, 10% slip
    assert sum(bool(h[3]) for h in hits) >= 15
    term = [h for h in hits if bool(h[3])][0]
    assert float(term[2]) == pytest.approx(99.9)
    assert make_env("barfi/Grid7x7", 2).spec.num_actions == 4
