"""The learners' optimiser: one global clipping norm, one per module, or one per group a
stop-gradient cuts apart (`agent.clip_scope`)."""

import jax
import jax.numpy as jnp
import optax
import pytest

from rl_aux.clipping import ClipGroups, clip_by_module_norm, resolve_scope
from rl_aux.learner import clip_and_adam


def _grads(head_scale: float):
    return {
        "net": {"w": jnp.full((3,), 0.3), "b": jnp.full((2,), 0.1)},
        "heads": {"noise": {"w": jnp.full((4,), head_scale)}, "next_obs": {"w": jnp.ones((2,))}},
    }


def test_per_module_clip_keeps_the_net_step_independent_of_a_head():
    clip = clip_by_module_norm(0.5)
    small, _ = clip.update(_grads(0.01), clip.init(_grads(0.01)))
    huge, _ = clip.update(_grads(100.0), clip.init(_grads(100.0)))
    for a, b in zip(jax.tree.leaves(small["net"]), jax.tree.leaves(huge["net"]), strict=True):
        assert jnp.array_equal(a, b)
    # every module is clipped to the bound on its own
    assert optax.tree.norm(huge["heads"]["noise"]) == pytest.approx(0.5, rel=1e-5)
    assert optax.tree.norm(huge["heads"]["next_obs"]) == pytest.approx(0.5, rel=1e-5)
    net_norm = optax.tree.norm(_grads(0.0)["net"])
    assert optax.tree.norm(huge["net"]) == pytest.approx(min(0.5, float(net_norm)), rel=1e-5)
    # one global norm: the head's gradient shrinks the net's step
    glob = optax.clip_by_global_norm(0.5)
    g, _ = glob.update(_grads(100.0), glob.init(_grads(100.0)))
    assert optax.tree.norm(g["net"]) < 0.01


def test_per_module_equals_global_without_heads():
    g = {"net": _grads(0.0)["net"], "heads": {}}
    for scope in ("global", "per_module"):
        tx = clip_and_adam(1e-3, 0.1, 1e-8, scope)
        u, _ = tx.update(g, tx.init(g), g)
        if scope == "global":
            ref = u
    for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(u), strict=True):
        assert jnp.allclose(a, b)


def test_bad_clip_scope_names_the_field_and_choices():
    with pytest.raises(ValueError, match="agent.clip_scope='layer'.*auto, global, per_module"):
        resolve_scope("layer", ClipGroups())
