"""Per-head balancers: PCGrad, GCS, uncertainty, AuxiNash, GradNorm; Bloop's toy (EMA matters)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.studies.bloop_toy import run as bloop_toy
from rl_aux.balancers import (
    auxinash,
    balanced_grads,
    gcs,
    gradnorm,
    gradnorm_loss,
    make_balancer,
    nash_alpha,
    pcgrad,
    uncertainty,
)

TARGETS = {"good": 2.0, "bad": -3.0}


def _losses(p):
    """Main pulls w to 1; head 'good' to 2 (agrees), head 'bad' to -3 (conflicts)."""
    main = jnp.sum((p["w"] - 1.0) ** 2)
    m = {f"aux/{k}/weighted_loss": 0.5 * jnp.sum((p["w"] - t) ** 2) for k, t in TARGETS.items()}
    return (main, sum(m.values())), m


P = {"w": jnp.array([0.0, 0.5])}
G_MAIN = jax.grad(lambda q: _losses(q)[0][0])(P)["w"]
G_AUX = {
    k: jax.grad(lambda q, k=k: _losses(q)[1][f"aux/{k}/weighted_loss"])(P)["w"] for k in TARGETS
}


def _apply(bal):
    g, state, _ = jax.jit(lambda p, s: balanced_grads(_losses, p, bal, s))(P, bal.tx.init(P))
    return np.asarray(g["w"]), state


def test_pcgrad_projects_only_the_conflicting_head():
    g, _ = _apply(pcgrad())
    gm, bad = np.asarray(G_MAIN), np.asarray(G_AUX["bad"])
    assert float(np.dot(bad, gm)) < 0 < float(np.dot(np.asarray(G_AUX["good"]), gm))
    bad_proj = bad - np.dot(bad, gm) / np.dot(gm, gm) * gm
    np.testing.assert_allclose(g, gm + np.asarray(G_AUX["good"]) + bad_proj, rtol=1e-5)


def test_gcs_drops_the_conflicting_head():
    g, _ = _apply(gcs())
    np.testing.assert_allclose(g, np.asarray(G_MAIN + G_AUX["good"]), rtol=1e-6)


def test_uncertainty_weights_start_fixed_and_move_with_loss():
    g, state = _apply(uncertainty(lr=0.1, num_aux=2))
    np.testing.assert_allclose(g, np.asarray(G_MAIN + G_AUX["good"] + G_AUX["bad"]), rtol=1e-6)
    # heads sorted by name: bad (L = 10.6) then good (L = 3.1); dL/ds = 1 - e^-s L < 0, so both
    # s_i grow (weights shrink) on losses above 1.
    losses = np.array([0.5 * (9 + 12.25), 0.5 * (4 + 2.25)])
    np.testing.assert_allclose(np.asarray(state.log_var), -0.1 * (1.0 - losses), rtol=1e-5)


def test_nash_alpha_solves_the_bargaining_conditions():
    g = jax.random.normal(jax.random.PRNGKey(0), (3, 10))
    gram = g @ g.T
    p = jnp.array([2.0, 1.0, 0.5])
    a = nash_alpha(gram, p, iters=50)
    m = gram / jnp.linalg.norm(gram)
    assert bool(jnp.all(a > 0))
    np.testing.assert_allclose(np.asarray(m @ a), np.asarray(p / a), rtol=1e-3)


def test_auxinash_combines_all_gradients_with_positive_weights():
    g, _ = _apply(auxinash())
    stack = np.stack([np.asarray(G_MAIN), np.asarray(G_AUX["bad"]), np.asarray(G_AUX["good"])])
    alpha = np.linalg.lstsq(stack.T, g, rcond=None)[0]  # 2-D: exact but not unique; check span
    np.testing.assert_allclose(stack.T @ alpha, g, rtol=1e-4, atol=1e-5)


def test_unknown_balancer_names_the_accepted_values():
    with pytest.raises(ValueError, match=r"balancer='nope'.*Accepted \(\d+\): .*weighted_sum"):
        make_balancer("nope")


def test_bloop_toy_ema_is_what_makes_projection_work():
    """Hsieh et al. 2024 Sec. 5: at lambda=0.01 Bloop's L_main < 0.5x the summed loss's; the
    projection onto the minibatch main gradient (no EMA) is not (measured 0.024 / 0.207 / 0.235)."""
    res = {
        m: bloop_toy(m, 0.01, seed=0, steps=12_000)["L_main"] for m in ("mixed", "project", "bloop")
    }
    assert res["bloop"] < 0.5 * res["mixed"], res
    assert res["project"] > 0.5 * res["mixed"], res


def test_gradnorm_loss_matches_eq_2_by_hand():
    """Task 0's loss fell less (r = 4/3), so its target norm is larger: 8/3 vs 4/3 (mean G = 2)."""
    args = (jnp.array([1.0, 3.0]), jnp.array([2.0, 1.0]), jnp.array([1.0, 1.0]), 1.0)
    w = jnp.ones(2)
    np.testing.assert_allclose(float(gradnorm_loss(w, *args)), 10.0 / 3.0, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(jax.grad(gradnorm_loss)(w, *args)), [-1.0, 3.0])


def test_gradnorm_step_downweights_the_large_gradient_and_renormalises():
    g, state = _apply(gradnorm(alpha=1.5, lr=0.1, learn_main=True, num_aux=2))
    # first step: w = 1, so d is the plain sum (like weighted_sum)
    np.testing.assert_allclose(g, np.asarray(G_MAIN + G_AUX["good"] + G_AUX["bad"]), rtol=1e-6)
    # tasks [main, bad, good]: norms [sqrt 5, sqrt 21.25, 2.5], mean 3.12; at t=0 r_i = 1, so
    # only 'bad' is above the target. Adam's first step is -lr * sign(grad); then sum to 3.
    w = np.array([1.1, 0.9, 1.1]) * 3.0 / 3.1
    np.testing.assert_allclose(np.asarray(state.weights), w, rtol=1e-5)
    np.testing.assert_allclose(float(state.weights.sum()), 3.0, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(state.loss0), [1.25, 10.625, 3.125], rtol=1e-6)
    # second step applies the learned weights
    bal = gradnorm(alpha=1.5, lr=0.1, learn_main=True, num_aux=2)
    g2, _, _ = balanced_grads(_losses, P, bal, state)
    want = w[0] * G_MAIN + w[1] * G_AUX["bad"] + w[2] * G_AUX["good"]
    np.testing.assert_allclose(np.asarray(g2["w"]), np.asarray(want), rtol=1e-4, atol=1e-5)
    # default (auxiliary learning): w_0 stays 1, the aux weights move the same way and sum to 2
    _, state = _apply(gradnorm(alpha=1.5, lr=0.1, num_aux=2))
    np.testing.assert_allclose(np.asarray(state.weights), [1.0, 0.9, 1.1], rtol=1e-5)


def test_gradnorm_runs_in_jitted_ppo_cartpole_with_two_heads():
    from experiments.compose import load_config
    from experiments.train import build_agent
    from rl_aux.vectorize import init_seeds, vmapped_chunk

    cfg = load_config(
        [
            "experiment=ppo_cartpole",
            "num_seeds=1",
            "head=[next_obs,noise_target]",
            "agent.balancer=gradnorm",
            "agent.balancer.alpha=1.5",
            "agent.num_steps=16",
            "agent.update_epochs=1",
            "agent.num_minibatches=2",
        ]
    )
    _, agent = build_agent(cfg)
    state, axes = init_seeds(agent, 1)
    state, m = vmapped_chunk(agent, axes, 2)(state)
    w = np.asarray(state.bal_state.weights)[0]
    assert w.shape == (3,) and np.all(np.isfinite(w)) and np.all(w > 0), w
    np.testing.assert_allclose(w[0], 1.0)  # default: main weight fixed, aux weights sum to K
    np.testing.assert_allclose(w[1:].sum(), 2.0, rtol=1e-5)
    assert not np.allclose(w, 1.0), w  # 2 updates x 2 minibatch steps moved the weights
    assert all(np.all(np.isfinite(np.asarray(v))) for v in jax.tree.leaves(state.params))


def test_noise_target_random_fn_is_a_fixed_function_of_the_obs():
    """target=iid draws fresh noise per key; target=random_fn does not depend on the key, and
    differs between observations (a consistent, task-irrelevant regression target)."""
    from rl_aux.heads.base import HeadInputs
    from rl_aux.heads.noise_target import NoiseTarget, NoiseTargetConfig
    from rl_aux.types import EnvSpec

    spec = EnvSpec("toy", (4,), jnp.float32, 2, 10)
    obs = jax.random.normal(jax.random.PRNGKey(0), (16, 4))
    z = jnp.zeros(16)
    inp = HeadInputs(obs, z.astype(int), z, z > 0, z > 0, obs, {"h": obs}, 2)
    k1, k2 = jax.random.PRNGKey(1), jax.random.PRNGKey(2)
    for target, same in (("iid", False), ("random_fn", True)):
        head = NoiseTarget(NoiseTargetConfig(target=target), spec)
        params = head.init(jax.random.PRNGKey(3), inp)
        l1, l2 = float(head.loss(params, inp, k1)[0]), float(head.loss(params, inp, k2)[0])
        assert (abs(l1 - l2) < 1e-7) == same
    head = NoiseTarget(NoiseTargetConfig(target="random_fn"), spec)
    params = head.init(jax.random.PRNGKey(3), inp)
    # the target moves with the observation (the head and its features are unchanged)
    moved = inp.replace(obs=obs + 1.0)
    assert float(head.loss(params, inp, k1)[0]) != float(head.loss(params, moved, k1)[0])
