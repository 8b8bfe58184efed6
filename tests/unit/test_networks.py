"""Networks: every torso/core builds; a recurrent reset mid-sequence equals a fresh start."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rl_aux.networks.network import NetworkConfig, make_network, network_initial_carry


@pytest.mark.parametrize(
    "cfg,shape,kind",
    [
        (NetworkConfig(separate_critic=True), (4,), "actor_critic"),
        (NetworkConfig(torso="nature_cnn"), (84, 84, 4), "q"),
        (NetworkConfig(torso="impala_cnn", features=64), (32, 32, 3), "actor_critic"),
        (NetworkConfig(core="gru", core_hidden=16), (10, 10, 4), "q"),
    ],
)
def test_one_apply_returns_every_output(cfg, shape, kind):
    net = make_network(cfg, 3, shape, kind)
    carry = network_initial_carry(cfg, 2)
    obs = jnp.zeros((2, *shape))
    params = net.init(jax.random.PRNGKey(0), obs, carry, jnp.ones(2, bool))
    out, _ = net.apply(params, obs, carry, jnp.ones(2, bool))
    assert set(out) >= {"z", "h"}
    assert ({"logits", "value"} <= set(out)) if kind == "actor_critic" else ("q" in out)
    assert out["h"].shape[0] == 2


@pytest.mark.parametrize("core", ["lstm", "gru"])
def test_reset_mid_sequence_equals_fresh_start(core):
    cfg = NetworkConfig(core=core, core_hidden=8, hidden=(16,))
    net = make_network(cfg, 2, (3,), "actor_critic")
    obs = jax.random.normal(jax.random.PRNGKey(1), (6, 1, 3))
    carry0 = network_initial_carry(cfg, 1)
    params = net.init(jax.random.PRNGKey(0), obs[0], carry0, jnp.ones(1, bool))

    def run(obs_seq, first_seq):
        def step(c, x):
            out, c = net.apply(params, x[0], c, x[1])
            return c, out["logits"]

        return jax.lax.scan(step, carry0, (obs_seq, first_seq))[1]

    first = jnp.zeros((6, 1), bool).at[0].set(True).at[3].set(True)  # episode restarts at t=3
    mid = run(obs, first)
    fresh = run(obs[3:], jnp.zeros((3, 1), bool).at[0].set(True))
    np.testing.assert_allclose(np.asarray(mid[3:]), np.asarray(fresh), rtol=1e-6, atol=1e-6)
    no_reset = run(obs, jnp.zeros((6, 1), bool).at[0].set(True))
    assert not np.allclose(np.asarray(no_reset[3:]), np.asarray(fresh))


def test_decoupled_features_get_no_rl_gradient():
    """rl_reads_sg_features: the policy/value outputs give zero gradient to the torso."""
    cfg = NetworkConfig(rl_reads_sg_features=True)
    net = make_network(cfg, 2, (3,), "actor_critic")
    params = net.init(jax.random.PRNGKey(0), jnp.ones((2, 3)))
    g = jax.grad(
        lambda p: sum(jnp.sum(net.apply(p, jnp.ones((2, 3)))[0][k]) for k in ("logits", "value"))
    )(params)
    torso = jax.tree.leaves(g["params"]["torso"])
    assert all(float(jnp.abs(x).max()) == 0.0 for x in torso)
    assert float(jnp.abs(g["params"]["policy"]["kernel"]).max()) > 0


@pytest.mark.parametrize(
    "cfg,shape",
    [
        (NetworkConfig(core="lstm", core_hidden=8, hidden=(16,), separate_critic=True), (3,)),
        (NetworkConfig(core="gru", core_hidden=8, torso="small_cnn", hidden=(16,)), (5, 5, 2)),
        (
            NetworkConfig(core="lstm", core_hidden=8, torso="minihack", features=16),
            (("glyphs_crop", (9, 9)), ("blstats", (27,))),
        ),
    ],
)
def test_unroll_equals_stepping(cfg, shape):
    """`unroll` (torso and heads batched over T x B, core scanned) = T calls of apply, in the
    outputs, the carries after each step and the gradients, with resets mid-sequence."""
    from rl_aux.networks.network import unroll

    t, b = 5, 3
    net = make_network(cfg, 4, shape, "actor_critic")
    k = jax.random.split(jax.random.PRNGKey(1), 3)
    if isinstance(shape[0], tuple):
        obs = {
            "glyphs_crop": jax.random.randint(k[0], (t, b, 9, 9), 0, 5976).astype(jnp.int16),
            "blstats": jax.random.normal(k[1], (t, b, 27)),
        }
    else:
        obs = jax.random.normal(k[0], (t, b, *shape))
    first = jax.random.bernoulli(k[2], 0.3, (t, b)).at[0].set(True)
    carry0 = network_initial_carry(cfg, b)
    params = net.init(jax.random.PRNGKey(0), jax.tree.map(lambda x: x[0], obs), carry0, first[0])

    def stepped(p):
        def step(c, x):
            o, f = x
            out, c = net.apply(p, o, c, f)
            return c, (out, c)

        return jax.lax.scan(step, carry0, (obs, first))[1]

    def loss(fn, p):
        out, carries = fn(p)
        leaves = jax.tree.leaves(carries)
        return (out["logits"] ** 2).sum() + out["value"].sum() + sum(c.sum() for c in leaves)

    (o1, c1), (o2, c2) = stepped(params), unroll(net, params, obs, carry0, first)
    for a, b_ in zip(jax.tree.leaves((o1, c1)), jax.tree.leaves((o2, c2)), strict=True):
        np.testing.assert_allclose(a, b_, rtol=1e-5, atol=1e-5)
    g1 = jax.grad(lambda p: loss(stepped, p))(params)
    g2 = jax.grad(lambda p: loss(lambda q: unroll(net, q, obs, carry0, first), p))(params)
    for a, b_ in zip(jax.tree.leaves(g1), jax.tree.leaves(g2), strict=True):
        np.testing.assert_allclose(a, b_, rtol=1e-4, atol=1e-5)
