"""Memory envs, future-head targets and masks, and the decoupled zero RL gradient."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rl_aux  # noqa: F401  (XLA flag before any backend use)
from agents.ppo import PPO, Batch, PPOConfig
from envs import make_env
from envs.core import JaxVecEnv
from envs.memory import PassiveTMaze, make_memory_env
from rl_aux.heads.base import HeadInputs
from rl_aux.heads.future import FutureConfig, FuturePrediction, future_targets, parse_parts
from rl_aux.networks.network import NetworkConfig
from rl_aux.rl_math import gae
from rl_aux.typed_config import ConfigError


def _roll(env, steps, actions, seed=0):
    state, ts = env.reset(jax.random.PRNGKey(seed))

    def body(s, x):
        a, k = x
        s, ts = env.step(s, a, k)
        return s, ts

    keys = jax.random.split(jax.random.PRNGKey(seed + 1), steps)
    _, traj = jax.lax.scan(body, state, (actions, keys))
    return ts, traj


def test_passive_tmaze_cue_only_at_start_and_reward_matches_cue():
    L = 5
    env = JaxVecEnv(PassiveTMaze(L), 64)
    first, traj = _roll(env, L + 1, jnp.ones((L + 1, 64), jnp.int32))  # always "down"
    cue = np.asarray(first.obs[:, :2]).argmax(-1)
    assert np.asarray(first.obs[:, :2]).sum(-1).min() == 1  # cue shown at t=0
    nobs = np.asarray(traj.extras["next_obs"])
    assert nobs[:, :, :2].sum() == 0  # ...and never again
    assert np.all(nobs[L - 1, :, 3] == 1)  # junction at t=L
    term = np.asarray(traj.terminated)
    assert term[L].all() and not term[:L].any()  # episode of L+1 steps
    np.testing.assert_array_equal(np.asarray(traj.reward[L]), (cue == 1).astype(np.float32))
    np.testing.assert_array_equal(nobs[L, :, -1], (cue == 1).astype(np.float32))  # r_{t-1}
    assert 10 < (cue == 1).sum() < 54
    assert make_memory_env("PassiveTMaze-L10").obs_parts == "cat:5,cat:3,mse:1"


def test_future_parts_auto_come_from_the_env_spec_never_the_env_name():
    from rl_aux.heads.future import resolve_parts
    from rl_aux.types import EnvSpec

    spec = make_env("memory/PassiveTMaze-L10", 2).spec
    assert spec.obs_parts == "cat:5,cat:3,mse:1"
    assert resolve_parts("auto", spec) == (("cat", 5), ("cat", 3), ("mse", 1))
    # the same name without declared parts: one real vector (the head reads no env by name)
    bare = EnvSpec(spec.name, spec.obs_shape, spec.obs_dtype, spec.num_actions, 10)
    assert resolve_parts("auto", bare) == (("mse", 9),)
    assert resolve_parts("cat:4,mse:5", spec) == (("cat", 4), ("mse", 5))


def test_repeat_previous_and_concentration_rewards():
    env = make_env("memory/RepeatPrevious-noreward", 8)
    first, traj = _roll(env, 52, jnp.zeros((52, 8), jnp.int32))
    assert env.spec.obs_shape == (9,)  # 4 suits + 5 action slots, no reward entry
    suits = np.concatenate([np.asarray(first.obs[None, :, :4]), np.asarray(traj.obs[:, :, :4])])
    shown = suits.argmax(-1)  # [53, 8]: suit shown at each t
    r = np.asarray(traj.reward)
    expect = np.where(shown[:48] == 0, 1.0, -1.0) / 48
    np.testing.assert_allclose(r[4:52], expect, rtol=1e-6)
    assert np.asarray(traj.truncated[51]).all()

    conc = make_memory_env("Concentration")
    state, _ = conc.reset(jax.random.PRNGKey(3))
    cards = np.asarray(state.inner["cards"])
    j = int(np.nonzero(cards == cards[0])[0][1])
    k = jax.random.PRNGKey(0)
    step = jax.jit(conc.step)
    state, o, r, *_ = step(k, state, 0)
    assert float(r) == 0 and int(np.argmax(o[:5])) == cards[0]
    state, o, r, *_ = step(k, state, j)
    assert float(r) == 1.0 and bool(state.inner["matched"][j])


def test_future_targets_never_cross_episode_ends():
    T, B, k = 6, 1, 3
    obs = jnp.arange(T, dtype=jnp.float32)[:, None, None] * jnp.ones((T, B, 2))
    done = jnp.zeros((T, B), bool).at[2, 0].set(True)
    inp = HeadInputs(
        obs=obs,
        action=jnp.arange(T)[:, None] % 2,
        reward=jnp.zeros((T, B)),
        terminated=done,
        truncated=jnp.zeros((T, B), bool),
        next_obs=obs + 1,
        feats={},
        num_actions=2,
    )
    tgt, acts, valid = future_targets(inp, k)
    v = np.asarray(valid[:, 0])
    # t=0: o1,o2,o3 all in episode 1 (which ends with o3 = next_obs[2]); t=1: only o2,o3;
    # t=2: o3 only; t=3: o4,o5,o6; t=4: o5,o6; t=5: o6 (sequence end)
    np.testing.assert_array_equal(
        v, [[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 0], [1, 0, 0]]
    )
    np.testing.assert_allclose(np.asarray(tgt[3, 0, :, 0]), [4, 5, 6])
    np.testing.assert_array_equal(np.asarray(acts[3, 0]), [1, 0, 1])


def test_parts_validation_names_the_field():
    assert parse_parts("cat:5,mse:2", 7) == (("cat", 5), ("mse", 2))
    with pytest.raises(ConfigError, match="heads.future.parts"):
        parse_parts("cat:5,foo:2", 7)
    with pytest.raises(ConfigError, match="sums to 5"):
        parse_parts("cat:5", 7)


def _agent_and_batch(decoupled: bool):
    env = JaxVecEnv(PassiveTMaze(4), 4)
    net = NetworkConfig(
        core="gru",
        core_hidden=16,
        hidden=(16,),
        separate_critic=False,
        rl_reads_sg_features=decoupled,
    )
    cfg = PPOConfig(num_envs=4, num_steps=5, num_minibatches=1, network=net)
    head = FuturePrediction(FutureConfig(k=2), env.spec)
    agent = PPO(cfg, env, [head], 10)
    state = agent.init(jax.random.PRNGKey(0), agent.default_hparams())
    before = state
    state, traj = jax.jit(agent._rollout)(state)
    traj = traj.replace(next_value=agent._next_values(before, state, traj))
    tr = traj.tr
    adv, ret = gae(tr.reward, traj.value, traj.next_value, tr.terminated, tr.done, 0.99, 0.95)
    mb = Batch(
        tr=tr,
        logp=traj.logp,
        value=traj.value,
        adv=adv,
        ret=ret,
        first=traj.first,
        carry_in=traj.carry_in,
        carry0=jax.tree.map(lambda c: c[0], traj.carry_in),
    )
    return agent, state, mb


def _grads(agent, state, mb):
    """Gradients of the RL loss and of the prediction loss, in one compiled program."""

    def f(p, which):
        (main, aux), _ = agent._losses(p, None, mb, state.hparams, jax.random.PRNGKey(1))
        return main if which == "rl" else aux

    both = lambda p: (jax.grad(f)(p, "rl"), jax.grad(f)(p, "aux"))
    return jax.jit(both)(state.params)


@pytest.mark.parametrize("decoupled", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_decoupled_rl_loss_has_exactly_zero_gradient_on_encoder_and_core(decoupled):
    agent, state, mb = _agent_and_batch(decoupled)
    g_rl, g_aux = (g["net"]["params"] for g in _grads(agent, state, mb))
    history = {k: g_rl[k] for k in ("torso", "core")}
    leaves = jax.tree.leaves(history)
    norm = lambda t: float(sum(jnp.abs(x).sum() for x in jax.tree.leaves(t)))
    if decoupled:
        assert all(bool(jnp.all(x == 0.0)) for x in leaves)
    else:
        assert norm(history) > 0  # end-to-end: RL does shape the history
    assert norm(g_rl["policy"]) > 0 and norm(g_rl["value"]) > 0  # the RL heads still learn
    assert norm({k: g_aux[k] for k in ("torso", "core")}) > 0  # prediction trains the history
    assert norm({k: g_aux[k] for k in ("policy", "value")}) == 0


@pytest.mark.slow
def test_probe_mode_never_shapes_history():
    agent, state, mb = _agent_and_batch(False)
    head = FuturePrediction(
        dataclasses.replace(agent.suite.heads[0].cfg, stop_gradient_to_torso=True), agent.spec
    )
    agent.suite.heads[0] = head
    g = _grads(agent, state, mb)[1]
    assert all(bool(jnp.all(x == 0)) for x in jax.tree.leaves(g["net"]))
    assert float(sum(jnp.abs(x).sum() for x in jax.tree.leaves(g["heads"]))) > 0


def test_fs_grid_goal_terminates_with_reward_and_walls_block():
    from envs.fs_grid import FSGrid

    env = FSGrid(goal=(0, 1))
    step = jax.jit(env.step)
    k = jax.random.PRNGKey(0)
    state = {"pos": jnp.array([0, 0]), "t": jnp.zeros((), jnp.int32)}
    s1, obs, r, term, trunc = step(k, state, 0)  # up: blocked by the wall
    assert np.asarray(s1["pos"]).tolist() == [0, 0] and float(r) == 0 and not bool(term)
    s2, obs, r, term, trunc = step(k, s1, 3)  # right: onto the goal
    assert float(r) == 1.0 and bool(term) and int(np.argmax(obs)) == 1
    starts = jax.vmap(lambda kk: env.reset(kk)[0]["pos"])(jax.random.split(k, 512))
    assert not np.any(np.all(np.asarray(starts) == [0, 1], -1))
