"""`reward=blend` in PPO (rl_aux/rewards/hook.py): reward=env unchanged, the blend's r and gamma
reach the PPO loss (against a hand computation), its config errors, and the CLI path."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.ppo import PPO, PPOConfig
from envs import make_env
from experiments.compose import ConfigError, load_config
from experiments.train import build_agent
from rl_aux.networks.network import NetworkConfig
from rl_aux.rewards import reward_class
from rl_aux.rewards.blend import BlendConfig, BlendReward
from rl_aux.rewards.hook import HookBatch
from rl_aux.types import Rollout, Transition

TINY = PPOConfig(
    num_envs=4,
    num_steps=8,
    update_epochs=1,
    num_minibatches=1,
    network=NetworkConfig(hidden=(8,), separate_critic=True),
)


def _agent(reward=None, cfg=TINY, env="barfi/grid-centre"):
    return PPO(cfg, make_env(env, cfg.num_envs), [], total_updates=10, reward=reward)


def _blend(**kw):
    return BlendReward(BlendConfig(sources=("centre",), **kw), TINY.gamma)


def _traj(agent, seed=0):
    """A synthetic time-major rollout [T, N] on the 7x7 grid (one-hot cells, r_aux/centre)."""
    rng = np.random.default_rng(seed)
    t, n = agent.cfg.num_steps, agent.cfg.num_envs
    cells = rng.integers(0, 49, (t + 1, n))
    obs = np.eye(49, dtype=np.float32)[cells]
    term = rng.random((t, n)) < 0.1
    trunc = ~term & (rng.random((t, n)) < 0.1)
    tr = Transition(
        obs=jnp.asarray(obs[:-1]),
        action=jnp.asarray(rng.integers(0, 4, (t, n)), jnp.int32),
        reward=jnp.asarray(np.where(term, 100.0, 0.0) - 0.1, jnp.float32),
        terminated=jnp.asarray(term),
        truncated=jnp.asarray(trunc),
        next_obs=jnp.asarray(obs[1:]),
        extras={"r_aux/centre": jnp.asarray(rng.choice([0.0, 5.0], (t, n)), jnp.float32)},
    )
    f = lambda *s: jnp.asarray(rng.normal(size=s), jnp.float32)
    return Rollout(
        tr=tr,
        first=jnp.zeros((t, n), bool),
        logp=jnp.log(jnp.full((t, n), 0.25)) + 0.1 * f(t, n),
        value=f(t, n),
        next_value=f(t, n),
        ep_return=f(t, n),
        ep_length=jnp.ones((t, n), jnp.int32),
    )


def _same(a, b):
    leaves = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return all(np.array_equal(x, y) for x, y in leaves)


def test_reward_env_keeps_the_default_path():
    """reward=env builds PPO without a hook (main's code path: same params, bit for bit), the
    rollout carries no extra leaves, and the env module through the hook is the identity."""
    cfg = load_config(["env=barfi/grid-centre", "agent.num_envs=4", "agent.num_steps=8"])
    _, agent = build_agent(cfg)
    assert agent.reward is None
    state = jax.eval_shape(agent.init, jax.random.PRNGKey(0), agent.default_hparams())
    _, traj = jax.eval_shape(agent._rollout, state)
    assert traj.tr.extras == {} and state.reward is None
    hook = _agent(reward_class("env")(reward_class("env").Config(), TINY.gamma)).reward
    tj = _traj(hook.agent)
    rstate, r, gamma, m = hook(None, None, None, tj)
    assert rstate is None and m == {} and float(gamma) == np.float32(TINY.gamma)
    assert np.array_equal(r, tj.tr.reward)


def test_naive_blend_reaches_the_ppo_update():
    """The naive blend (hypergrad=none: w=1, b=0, gamma_init) gives the same update as PPO on
    r_p + r_aux with that gamma; a different b_phi gives a different update."""
    naive = _agent(_blend(hypergrad="none", gamma_init=0.9, learn_gamma=False))
    plain = _agent(cfg=dataclasses.replace(TINY, gamma=0.9))
    tj = _traj(naive)
    tj_shaped = tj.replace(tr=tj.tr.replace(reward=tj.tr.reward + tj.tr.extras["r_aux/centre"]))
    learn_naive = jax.jit(naive.learn)
    state = naive.init(jax.random.PRNGKey(0), naive.default_hparams())
    s_blend, m = learn_naive(state, tj)
    s_plain, _ = jax.jit(plain.learn)(state.replace(reward=None), tj_shaped)
    leaves = zip(jax.tree.leaves(s_blend.params), jax.tree.leaves(s_plain.params), strict=True)
    for x, y in leaves:
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    assert float(m["reward/gamma"]) == pytest.approx(0.9)
    assert float(m["reward/w_centre_mean"]) == 1.0  # outer step off: phi stays at init
    phi = {**state.reward.phi, "c": state.reward.phi["c"] + 1.0}  # b_phi = 1, w_phi = 2
    s_bumped, _ = learn_naive(state.replace(reward=state.reward.replace(phi=phi)), tj)
    assert not _same(s_blend.params, s_bumped.params)


def test_inner_loss_gradient_in_r_and_gamma_matches_hand_computation():
    """d(inner PPO loss)/d(b, w, gamma logit) through GAE equals a python-loop GAE by hand."""
    agent = _agent(_blend(hypergrad="lookahead"))
    hook = agent.reward
    state = jax.jit(agent.init)(jax.random.PRNGKey(1), agent.default_hparams())
    tj = _traj(agent, seed=1)
    tr = tj.tr
    b = HookBatch(tr=tr, logp=tj.logp, value=tj.value, next_value=tj.next_value, term=tr.terminated)
    feat, _ = jax.jit(hook._features)(state.params, b)
    b = b.replace(tr=tr.replace(extras={**tr.extras, "features": feat}))
    phi = state.reward.phi
    g = jax.jit(jax.grad(hook.inner_loss, argnums=1))(state.params, phi, b)

    out = jax.jit(hook._outputs)(state.params, b)
    logp_all = jax.nn.log_softmax(out["logits"])
    logp = jnp.take_along_axis(logp_all, tr.action[..., None], -1)[..., 0]
    ratio, v_new = np.asarray(jnp.exp(logp - tj.logp)), np.asarray(out["value"])
    r_p, r_aux = np.asarray(tr.reward), np.asarray(tr.extras["r_aux/centre"])
    v, nv = np.asarray(tj.value), np.asarray(tj.next_value)
    not_term, not_done = 1.0 - np.asarray(tr.terminated), 1.0 - np.asarray(tr.done)
    T, N = r_p.shape
    c = TINY

    def loss(bias, w, glogit):  # a hand-written GAE (python loop) and the unclipped PPO loss
        gamma = jax.nn.sigmoid(glogit)
        r = r_p + bias + w * r_aux
        adv, last = [None] * T, jnp.zeros(N)
        for t in reversed(range(T)):
            delta = r[t] + gamma * not_term[t] * nv[t] - v[t]
            last = delta + gamma * c.gae_lambda * not_done[t] * last
            adv[t] = last
        adv = jnp.stack(adv)
        ret = adv + v
        a = (adv - adv.mean()) / (adv.std() + 1e-8)
        return -(ratio * a).mean() + c.vf_coef * 0.5 * ((v_new - ret) ** 2).mean()

    hand = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(0.0, 1.0, phi["g"])
    np.testing.assert_allclose(g["c"][0], hand[0], rtol=1e-3, atol=1e-6)  # b_phi
    np.testing.assert_allclose(g["c"][1], hand[1], rtol=1e-3, atol=1e-6)  # w_phi
    np.testing.assert_allclose(g["g"], hand[2], rtol=1e-3, atol=1e-6)  # gamma_phi
    assert min(abs(float(h)) for h in hand) > 1e-4  # the gradients are not trivially zero


@pytest.mark.slow
def test_lookahead_blend_update_moves_phi_and_stays_finite():
    agent = _agent(_blend(hypergrad="lookahead", lookahead_steps=2))
    init = agent.init(jax.random.PRNGKey(0), agent.default_hparams())
    state, m = jax.jit(lambda s: agent.train_chunk(s, 1))(init)
    assert 0 < float(m["reward/hypergrad_norm"][0]) < np.inf
    assert not _same(state.reward.phi, init.reward.phi)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.params))


def test_blend_config_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"reward.hypergrad.*lookahead.*neumann.*none"):
        load_config(["env=barfi/grid-centre", "reward=blend", "reward.hypergrad=implicit"])
    with pytest.raises(ConfigError, match=r"reward.sources.*'distance'.*Accepted values: centre"):
        load_config(["env=barfi/grid-centre", "reward=blend", "reward.sources=[distance]"])
    with pytest.raises(ConfigError, match=r"publishes no auxiliary reward.*barfi/grid-centre"):
        load_config(["env=gymnax/CartPole-v1", "reward=blend"])
    with pytest.raises(ConfigError, match=r"reward.neumann_k"):
        load_config(["env=barfi/grid-centre", "reward=blend", "reward.neumann_k=-1"])
    cfg = load_config(["env=barfi/grid-distance", "reward=blend"])
    assert cfg.reward.sources == ("distance",)  # default: every source the env publishes
    with pytest.raises(ConfigError, match=r"agent.num_envs=6 must be a multiple of 4"):
        _agent(_blend(lookahead_steps=2), dataclasses.replace(TINY, num_envs=6))


def test_cli_blend_exit_codes(capsys, tmp_path):
    from experiments.cli import main

    argv = ["train", "agent=dqn", "env=barfi/grid-centre", "reward=blend", f"run_dir={tmp_path}"]
    assert main(argv) == 2
    assert "reward=blend is not wired" in capsys.readouterr().err
    argv = ["train", "env=minihack/Room-5x5-v0", "reward=blend", f"run_dir={tmp_path}/m"]
    assert main(argv) == 2  # host envs: exactly one host-side source
    assert "exactly one host-side source" in capsys.readouterr().err
    argv = ["train", "env=barfi/grid-centre", "reward=blend", "reward.sources=[x]"]
    assert main(argv) == 2
    assert "reward.sources" in capsys.readouterr().err


@pytest.mark.slow
def test_barfi_lookahead_keeps_the_goal_where_naive_shaping_camps(tmp_path):
    """experiment=barfi_ppo, 2 seeds x 150k steps (measured: naive final success 0.71 [0.67,
    0.75 per seed], lookahead 1.00, primary 1.00; naive starts camping in the centre ~90k)."""
    import pandas as pd

    from experiments.train import run

    final = {}
    for arm, extra in [("naive", ["reward.hypergrad=none"]), ("lookahead", [])]:
        cfg = load_config(
            ["experiment=barfi_ppo", "num_seeds=2", "total_timesteps=150000", "reward=blend"]
            + extra
            + [f"run_dir={tmp_path}/{arm}", "logger.progress=false"]
        )
        run(dataclasses.replace(cfg, variants={}), quiet=True)
        d = pd.read_csv(f"{tmp_path}/{arm}/metrics.csv")
        final[arm] = d[d.global_step > 0.9 * d.global_step.max()]["charts/success"].mean()
    assert final["lookahead"] >= 0.95
    assert final["naive"] <= 0.85
