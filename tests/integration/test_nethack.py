"""NLE/MiniHack host-stepped path: vector env vs single envs, auto-reset, crash restart,
config errors, recurrent resets, and PPO (NetHackScore) / DQN (MiniHack) smoke runs."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

pytest.importorskip("nle")
pytest.importorskip("minihack")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from envs.nethack import NLEVecEnv, single_env  # noqa: E402
from envs.nle_worker import seeded_reset  # noqa: E402

ROOM = "minihack/Room-5x5-v0"


@pytest.mark.parametrize("standby", [True, False])
def test_vector_env_matches_single_envs_with_auto_reset(standby):
    """Same seeds + actions: the workers' batch equals N in-process envs, across resets, with
    episode ends served by a standby env reset ahead (default) or by resetting in place."""
    n, steps = 4, 230  # Room-5x5 ends by 100 steps: every env auto-resets at least twice
    opts = {"num_workers": 2, "obs_keys": ["glyphs_crop", "blstats"], "standby": standby}
    env = NLEVecEnv(ROOM, n, opts)
    try:
        _, ts = env.reset(jax.random.PRNGKey(3))
        seeds = env._buf["seed"].copy()
        singles = [single_env(ROOM, {"obs_keys": ["glyphs_crop", "blstats"]}) for _ in range(n)]
        obs_s = [seeded_reset(e, s, 0) for e, s in zip(singles, seeds, strict=True)]
        episode = [0] * n
        np.testing.assert_array_equal(ts.obs["glyphs_crop"], [o["glyphs_crop"] for o in obs_s])
        rng = np.random.default_rng(0)
        rets, dones = np.zeros(n), 0
        for _ in range(steps):
            a = rng.integers(0, env.spec.num_actions, n)
            _, ts = env.step(None, a)
            for i, e in enumerate(singles):
                o, r, term, trunc, info = e.step(int(a[i]))
                trunc = trunc or int(info["end_status"]) == -1
                rets[i] += r
                assert ts.reward[i] == np.float32(r)
                assert ts.truncated[i] == trunc and ts.terminated[i] == (term and not trunc)
                np.testing.assert_array_equal(ts.extras["next_obs"]["blstats"][i], o["blstats"])
                if term or trunc:
                    dones += 1
                    assert ts.extras["episode_return"][i] == pytest.approx(rets[i], abs=1e-5)
                    rets[i] = 0.0
                    episode[i] += 1
                    o = seeded_reset(e, seeds[i], episode[i])
                np.testing.assert_array_equal(ts.obs["glyphs_crop"][i], o["glyphs_crop"])
        assert dones >= 2 * n
        assert len(env.last_messages()) == n and not ts.extras["lost"].any()
    finally:
        env.close()


def test_reseeding_reset_discards_standby_envs_readied_under_old_seeds():
    """reset(key) with standby envs: the next episodes follow the new seeds. (Spares readied
    under the old seeds must be dropped; the race that used one is timing-dependent, so this
    checks the contract rather than reproducing the race.)"""
    opts = {"num_workers": 1, "obs_keys": ["glyphs_crop", "blstats"], "max_episode_steps": 2}
    env = NLEVecEnv(ROOM, 2, opts)
    try:
        env.reset(jax.random.PRNGKey(0))
        singles = [single_env(ROOM, {**opts, "num_workers": 2}) for _ in range(2)]
        time.sleep(0.2)  # idle worker: both spares readied for episode 1 under key 0's seeds
        _, ts = env.reset(jax.random.PRNGKey(1))
        steps = [env.step(None, np.zeros(2, np.int64))[1] for _ in range(6)]  # no idle gaps
        seeds = env._buf["seed"].copy()
        for e, sd in zip(singles, seeds, strict=True):
            seeded_reset(e, sd, 0)
        for t, ts in enumerate(steps):
            for i, e in enumerate(singles):
                o, _, term, trunc, _ = e.step(0)
                if term or trunc:
                    o = seeded_reset(e, seeds[i], (t + 1) // 2)
                np.testing.assert_array_equal(ts.obs["glyphs_crop"][i], o["glyphs_crop"])
    finally:
        env.close()


def test_penalty_step_reaches_the_workers():
    """env.options.penalty_step is NLE's reward for a step that takes no game time."""
    env = NLEVecEnv(ROOM, 2, {"num_workers": 1, "penalty_step": -0.001, "standby": False})
    try:
        env.reset(jax.random.PRNGKey(0))
        rewards = []
        for _ in range(60):  # west into the wall, again and again: frozen steps
            _, ts = env.step(None, np.full(2, env.action_names.index("move west"), np.int64))
            rewards.append(ts.reward[~(ts.terminated | ts.truncated)])
        rewards = np.concatenate(rewards)
        assert set(np.round(rewards.astype(float), 6)) <= {0.0, -0.001} and (rewards < 0).any()
    finally:
        env.close()
    assert single_env(ROOM, {"penalty_step": -0.001}).penalty_step == -0.001


@pytest.mark.parametrize("reaped", [False, True])
def test_killed_worker_is_restarted_and_lost_episodes_counted(reaped):
    env = NLEVecEnv(ROOM, 4, {"num_workers": 2, "step_timeout": 20.0})
    try:
        env.reset(jax.random.PRNGKey(0))
        env.step(None, np.zeros(4, np.int64))
        victim = env.worker_pids()[1]
        os.kill(victim, signal.SIGKILL)
        if reaped:  # fully gone before the next command: its write fails and stays buffered
            env._workers[1].proc.wait()
        _, ts = env.step(None, np.zeros(4, np.int64))
        assert ts.extras["lost"].tolist() == [False, False, True, True]
        assert ts.truncated[2:].all() and env.lost_episodes == 2 and env.restarts == 1
        assert env.worker_pids()[1] != victim
        for _ in range(5):  # the run goes on
            _, ts = env.step(None, np.ones(4, np.int64))
        assert not ts.extras["lost"].any()
        assert ts.obs["glyphs_crop"].shape == (4, 9, 9)
    finally:
        env.close()


def test_unknown_task_and_bad_options_exit_2(capsys):
    from experiments.cli import main

    assert main(["train", "env=minihack/Room-5x5-v9"]) == 2
    err = capsys.readouterr().err
    assert "Close matches" in err and "minihack/Room-5x5-v0" in err
    assert main(["train", "env=nethack/Scor-v0"]) == 2
    assert "nethack/Score-v0" in capsys.readouterr().err
    assert main(["train", f"env={ROOM}", "env.options.obs_keys=[glyph]"]) == 2
    err = capsys.readouterr().err
    assert "env.options.obs_keys" in err and "glyphs_crop" in err


def test_every_env_option_is_a_config_key():
    """Each NetHackOptions field can be set from the command line (step_timeout once could not)."""
    import dataclasses

    from envs.nethack import NetHackOptions
    from experiments.compose import load_config

    names = [f.name for f in dataclasses.fields(NetHackOptions)]
    cfg = load_config([f"env={ROOM}", "env.options.step_timeout=30", "env.options.standby=false"])
    assert sorted(cfg.env.options) == sorted(names)
    assert cfg.env.options["step_timeout"] == 30 and cfg.env.options["standby"] is False


def test_recurrent_reset_mid_sequence_equals_fresh_start():
    """An episode start at t=k inside a sequence gives the outputs of a fresh zero carry."""
    from rl_aux.networks.network import NetworkConfig, make_network, network_initial_carry

    cfg = NetworkConfig(torso="minihack", features=32, core="lstm", core_hidden=16)
    spec = (("glyphs_crop", (9, 9)), ("blstats", (27,)))
    net = make_network(cfg, 8, spec, "actor_critic")
    T, B, k = 6, 3, 3
    key = jax.random.PRNGKey(0)
    obs = {
        "glyphs_crop": jax.random.randint(key, (T, B, 9, 9), 0, 5976).astype(jnp.int16),
        "blstats": jax.random.randint(key, (T, B, 27), 0, 20),
    }
    first = jnp.zeros((T, B), bool).at[0].set(True).at[k].set(True)
    carry0 = network_initial_carry(cfg, B)
    params = jax.jit(net.init)(key, jax.tree.map(lambda x: x[0], obs), carry0, first[0])

    def run(o, f, c):
        def step(c, x):
            out, c = net.apply(params, x[0], c, x[1])
            return c, out["logits"]

        return jax.lax.scan(step, c, (o, f))[1]

    whole = jax.jit(run)(obs, first, carry0)
    fresh = jax.jit(run)(jax.tree.map(lambda x: x[k:], obs), first[k:], carry0)
    np.testing.assert_allclose(whole[k:], fresh, rtol=1e-5, atol=1e-6)
    assert not np.allclose(whole[k - 1], whole[k])


@pytest.mark.parametrize("torso,crop_layers,convs", [("minihack", -1, 0), ("minihack", 2, 2)])
def test_crop_conv_layers(torso, crop_layers, convs):
    """torso=minihack flattens the embedded crop into a Dense by default (no crop convs, the
    CPU-cheap encoder); network.crop_conv_layers=2 puts the NLE baseline's two convs back."""
    from rl_aux.networks.network import NetworkConfig, make_network

    cfg = NetworkConfig(torso=torso, features=32, crop_conv_layers=crop_layers)
    net = make_network(cfg, 8, (("glyphs_crop", (9, 9)), ("blstats", (27,))), "actor_critic")
    obs = {"glyphs_crop": jnp.full((2, 9, 9), 2359, jnp.int16), "blstats": jnp.ones((2, 27))}
    params = net.init(jax.random.PRNGKey(0), obs)
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    crop = {
        jax.tree_util.keystr(path)
        for path, _ in flat
        if "glyphs_crop_conv" in jax.tree_util.keystr(path)
        and "kernel" in jax.tree_util.keystr(path)
    }
    assert len(crop) == convs
    out, _ = net.apply(params, obs)
    assert out["logits"].shape == (2, 8) and np.isfinite(out["logits"]).all()


def _smoke_agent(overrides):
    from experiments.compose import load_config
    from experiments.train import build_agent

    return build_agent(load_config(overrides))


def test_recurrent_ppo_smoke_on_nethack_score():
    """A few overlapped recurrent-PPO updates on NetHackScore: finite losses, params move."""
    from agents.host_loop import HostPPO

    env, agent = _smoke_agent(
        [
            "experiment=nethack_ppo",
            "agent.num_envs=4",
            "agent.num_steps=8",
            "agent.num_minibatches=2",
            "agent.update_epochs=1",
            "agent.network.features=32",
            "agent.network.core_hidden=32",
        ]
    )
    try:
        state = agent.init(jax.random.PRNGKey(0), agent.default_hparams())
        seen = []
        hook_calls = []

        def reward_fn(roll):
            hook_calls.append(len(roll.messages))
            assert all(isinstance(m, str) for m in roll.messages[0])
            return roll.reward

        new = HostPPO(agent, env, reward_fn=reward_fn).train(
            state, 3, jax.random.PRNGKey(1), lambda i, m, r, dt: seen.append((m, r))
        )
        assert len(seen) == 3 and hook_calls == [8, 8, 8]
        for m, r in seen:
            assert np.isfinite(m["losses/policy"]) and np.isfinite(m["losses/value"])
            assert r.obs["glyphs"].shape == (8, 4, 21, 79) and r.carry_in[0].shape == (8, 4, 32)
        before = jax.tree.leaves(state.params)[0]
        assert not np.allclose(before, jax.tree.leaves(new.params)[0])
        assert int(new.update) == 3
    finally:
        env.close()


def test_dqn_smoke_on_minihack():
    from agents.host_loop import HostDQN

    env, agent = _smoke_agent(
        [
            "agent=dqn",
            f"env={ROOM}",
            "agent.num_envs=4",
            "agent.buffer_size=400",
            "agent.batch_size=16",
            "agent.learning_starts=40",
            "agent.network.torso=minihack",
            "agent.network.features=32",
        ]
    )
    try:
        state = agent.init(jax.random.PRNGKey(0), agent.default_hparams())
        ms = []
        new = HostDQN(agent, env).train(
            state, 20, jax.random.PRNGKey(1), lambda i, m, ts, dt: ms.append(m)
        )
        assert int(new.update) == 20 and int(new.grad_steps) == 11
        assert np.isfinite(float(ms[-1]["losses/td"]))
    finally:
        env.close()


def test_dqn_pays_subgoal_rewards_at_sampling_time():
    """Host DQN with a reward source: each stored transition carries its caption id and its
    episode's earlier ids; a label that arrives after storing pays when replayed, once per
    episode (a caption whose subgoal was already done in its episode pays 0)."""
    from agents.host_loop import HostDQN, SampleReward

    class Source:  # ids from the action (1..3): id 2 will be labelled late
        name, host_keys, beta = "subgoal", (), 0.5
        tab = np.zeros((8, 2), np.float32)

        def step_ids(self, prev, actions, nxt):
            return (np.asarray(actions) % 3 + 1).astype(np.int32)

        def current_table(self):
            return jnp.asarray(self.tab)

        def reset(self):
            pass

    env, agent = _smoke_agent(
        ["agent=dqn", f"env={ROOM}", "agent.num_envs=4", "agent.buffer_size=400",
         "agent.learning_starts=400", "agent.eps_start=1.0", "agent.eps_finish=1.0",
         "agent.network.torso=minihack", "agent.network.features=32"]
    )  # fmt: skip
    src = Source()
    try:
        agent.with_sample_reward(SampleReward(src, history=4))
        state = agent.init(jax.random.PRNGKey(0), agent.default_hparams())
        state = HostDQN(agent, env, src, history=4).train(state, 60, jax.random.PRNGKey(1))
        src.tab[2, 0] = 1.0  # the label arrives after every transition was stored
        aux = agent._aux_reward(src.current_table())
        tr, _ = agent._replay_sample(state.replay, jax.random.PRNGKey(2), 512, 1, 0.99, aux)
        cid, prior = np.asarray(tr.extras["caption_id"]), np.asarray(tr.extras["caption_prior"])
        raw = agent._replay_sample(state.replay, jax.random.PRNGKey(2), 512, 1, 0.99)[0].reward
        first = (cid == 2) & ~(prior == 2).any(-1)
        np.testing.assert_allclose(np.asarray(tr.reward) - np.asarray(raw), 0.5 * first)
        assert first.sum() > 0 and ((cid == 2) & ~first).sum() > 0  # both cases were sampled
    finally:
        env.close()


def test_bench_rows_format_steps_ratios_cpu_and_errors():
    """bench --suite nethack prints ratios and CPU per 1,024 steps; a failed arm says err."""
    from experiments.bench.nethack import format_cpu, format_row

    cpu = {"cpu_ms_per_1024": {"process": 192.4, "workers": 256.0}}
    row = {
        "task": "minihack/Room-5x5-v0",
        "single": {"steps_per_s": 12000.0},
        "vec": {"steps_per_s": 10000.0, **cpu},
        "ppo_2w": {"steps_per_s": 4000.0, **cpu},
        "ppo_8w": {"error": ["killed"]},
    }
    line = format_row(row)
    assert "0.83x" in line and "0.40x" in line and "err" in line
    assert "vec 192 + 256" in format_cpu(row) and "ppo_8w err" in format_cpu(row)
