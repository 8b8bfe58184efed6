"""rl_aux unrolls threefry on XLA:CPU (rl_aux/cpu_rng.py): same bits, no while loop."""

import jax
import jax.numpy as jnp
import numpy as np
from jax._src.random import threefry2x32 as tf

import rl_aux


def test_unrolled_threefry_gives_jax_bits_without_a_loop():
    assert rl_aux.THREEFRY_UNROLLED_ON_CPU
    k1, k2 = jnp.uint32(0x12345678), jnp.uint32(0x9ABCDEF0)
    x1 = jnp.arange(1000, dtype=jnp.uint32)
    x2 = x1 * jnp.uint32(7) + jnp.uint32(3)
    rolled = jax.jit(lambda *a: tf._threefry2x32_lowering(*a, use_rolled_loops=True))
    ours = jax.jit(lambda *a: tuple(tf.threefry2x32_p.bind(*a)))
    for r, o in zip(rolled(k1, k2, x1, x2), ours(k1, k2, x1, x2), strict=True):
        np.testing.assert_array_equal(np.asarray(r), np.asarray(o))
    hlo = jax.jit(lambda k: jax.random.split(k, 8)).lower(jax.random.PRNGKey(0)).compile()
    assert " while(" not in hlo.as_text()
