"""CanonicalConv and PatchConv: nn.Conv's parameters, outputs and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from rl_aux.networks.conv import CanonicalConv
from rl_aux.networks.torsos import PatchConv

CASES = [  # (input [B, H, W, C], features, kernel, stride, padding)
    ((2, 36, 36, 4), 8, 8, 4, "VALID"),  # Nature-CNN's layer kinds, smaller
    ((2, 12, 12, 8), 16, 4, 2, "VALID"),
    ((2, 11, 13, 3), 5, 4, 3, "VALID"),  # rows/columns the forward pass never reads
    ((2, 11, 10, 3), 4, 3, 2, "SAME"),  # IMPALA-CNN's kind
]


@pytest.mark.parametrize("impl", [CanonicalConv, PatchConv])
@pytest.mark.parametrize("shape,features,k,s,padding", CASES)
def test_conv_matches_nn_conv(impl, shape, features, k, s, padding):
    x = jax.random.normal(jax.random.PRNGKey(0), shape)
    ref = nn.Conv(features, (k, k), (s, s), padding)
    ours = impl(features, (k, k), (s, s), padding)
    params = ref.init(jax.random.PRNGKey(1), x)
    assert jax.tree.map(jnp.shape, ours.init(jax.random.PRNGKey(1), x)) == jax.tree.map(
        jnp.shape, params
    )
    out_ref, out = ref.apply(params, x), ours.apply(params, x)
    np.testing.assert_allclose(out, out_ref, rtol=1e-5, atol=1e-5)
    probe = jax.random.normal(jax.random.PRNGKey(2), out_ref.shape)

    def grads(m):
        return jax.grad(lambda p, x: jnp.sum(m.apply(p, x) * probe), argnums=(0, 1))(params, x)

    (gp_ref, gx_ref), (gp, gx) = grads(ref), grads(ours)
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-4, atol=1e-4)
    for a, b in zip(jax.tree.leaves(gp), jax.tree.leaves(gp_ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_canonical_conv_grads_inside_vmapped_scan():
    """The learners' setting: gradients inside lax.scan, vmapped over seeds."""
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 4, 2, 20, 20, 8))  # [seeds, steps, B...]
    ref, ours = nn.Conv(6, (4, 4), (2, 2), "VALID"), CanonicalConv(6, (4, 4), (2, 2), "VALID")
    params = jax.vmap(ref.init)(jax.random.split(jax.random.PRNGKey(1), 3), x[:, 0])

    def run(m):
        def one(p, xs):
            step = lambda p, xi: (jax.tree.map(lambda a, g: a - 0.01 * g, p, jax.grad(
                lambda p: jnp.mean(m.apply(p, xi) ** 2))(p)), None)  # fmt: skip
            return jax.lax.scan(step, p, xs)[0]

        return jax.jit(jax.vmap(one))(params, x)

    for a, b in zip(jax.tree.leaves(run(ours)), jax.tree.leaves(run(ref)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
