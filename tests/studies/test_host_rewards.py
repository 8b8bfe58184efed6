"""Host-side reward sources in the host-stepped PPO loop: KeyRoom oracle labels on a scripted
episode, r_aux reaching the learner's reward (r_ext kept for statistics), config errors, and
(slow) `reward=ellm` end to end through `rl-aux train`."""

from __future__ import annotations

import csv

import numpy as np
import pytest

pytest.importorskip("nle")
pytest.importorskip("minihack")

import jax  # noqa: E402

from rl_aux.typed_config import ConfigError  # noqa: E402

KEYROOM = "minihack/KeyRoom-Fixed-S5-v0"
TINY = [
    "experiment=minihack_ppo",
    f"env={KEYROOM}",
    "agent.num_envs=4",
    "agent.num_steps=16",
    "agent.num_minibatches=2",
    "agent.update_epochs=1",
    "agent.network.features=32",
    "agent.network.core=none",
    "env.options.num_workers=1",
]


def test_keyroom_oracle_labels_a_scripted_success_once_each_in_order():
    """Key, door, stairs fire exactly once each, in that order, on a solved episode."""
    from envs.nethack import action_names, single_env
    from envs.nle_worker import seeded_reset
    from experiments.studies.llm_keyroom import scripted_action
    from rl_aux.rewards.keyroom_oracle import LABELS, keyroom_labels

    keys = ["glyphs", "blstats", "inv_strs", "message", "chars"]
    env = single_env(KEYROOM, {"obs_keys": keys})
    names = action_names(env.actions)
    rng = np.random.default_rng(0)
    copy = lambda o: {k: np.array(v)[None] for k, v in o.items()}
    obs = copy(seeded_reset(env, 7, 0))
    fired, r = [], 0.0
    try:
        for t in range(200):
            a = scripted_action({k: v[0] for k, v in obs.items()}, rng)
            nxt, r, term, trunc, _ = env.step(a)
            nxt = copy(nxt)
            lab = keyroom_labels(obs, [names[a]], nxt)[0]
            fired += [(t, name) for name, hit in zip(LABELS, lab, strict=True) if hit]
            obs = nxt
            if term or trunc:
                break
    finally:
        env.close()
    assert term and r > 0, "the scripted policy should solve seed 7"
    assert [name for _, name in fired] == ["key", "door", "stairs"], fired
    assert fired[-1][0] == t  # the stairs label is the winning step


def test_oracle_reward_reaches_the_learner_and_env_reward_is_kept():
    from agents.host_loop import HostPPO, host_reward
    from experiments.compose import load_config
    from experiments.train import build_agent

    cfg = load_config([*TINY, "reward=keyroom_oracle", "reward.beta=0.5"])
    env, agent = build_agent(cfg)
    assert {"glyphs", "blstats", "inv_strs"} <= set(env.keys)  # added for the source
    source, reward_fn = host_reward(cfg, env)
    rolls = []
    try:
        state = agent.init(jax.random.PRNGKey(0), agent.default_hparams())
        loop = HostPPO(agent, env, reward_fn, True, source)
        loop.train(state, 2, jax.random.PRNGKey(1), lambda i, m, roll, dt: rolls.append(roll))
        # the source's arrays are not kept per step unless asked for (a custom reward_fn)
        keep = HostPPO(agent, env, reward_fn, False, source, host_keys=("inv_strs",))
        keep.train(state, 1, jax.random.PRNGKey(2), lambda i, m, roll, dt: rolls.append(roll))
    finally:
        env.close()
    assert len(rolls) == 3 and rolls[0].host_obs == {}
    assert rolls.pop().host_obs["inv_strs"].shape == (16, 4, 55, 80)
    for roll in rolls:
        aux = roll.aux["r_aux/oracle"]
        assert aux.shape == roll.reward.shape == (16, 4)
        assert set(np.unique(roll.source_ids)) <= set(range(8))
        np.testing.assert_allclose(roll.learn_reward, roll.reward + aux, atol=1e-6)
        paid = roll.source_ids > 0  # a label fired; paid at most once per subgoal per episode
        assert np.all(aux[~paid] == 0) and np.all(np.isin(aux, [0.0, 0.5, 1.0, 1.5]))


def test_source_ids_do_not_depend_on_the_caption_batch(tmp_path):
    """Captioning k vector steps per call gives the caption ids of one call per step (k=5
    leaves a remainder of the 16-step rollout to flush)."""
    from agents.host_loop import HostPPO, host_reward
    from experiments.compose import load_config
    from experiments.train import build_agent

    ids = {}
    for k in (1, 5):
        cache = f"llm.cache_path={tmp_path}/cache{k}.sqlite"  # replay, empty: ids, no labels
        goals = "reward.subgoals=[pick up the key,open the door]"
        cfg = load_config([*TINY, "reward=subgoal", goals, "llm.mode=replay", cache])
        env, agent = build_agent(cfg)
        source, reward_fn = host_reward(cfg, env)
        try:
            state = agent.init(jax.random.PRNGKey(0), agent.default_hparams())
            loop = HostPPO(agent, env, reward_fn, False, source, source_batch=k)
            rolls = []
            loop.train(state, 2, jax.random.PRNGKey(1), lambda i, m, r, dt: rolls.append(r))
        finally:
            env.close()
        ids[k] = np.stack([r.source_ids for r in rolls])
    assert ids[1].shape == (2, 16, 4) and len(np.unique(ids[1])) > 5
    np.testing.assert_array_equal(ids[1], ids[5])


def test_reward_config_errors():
    from experiments.compose import load_config

    with pytest.raises(ConfigError, match="reward=keyroom_oracle reads NLE/MiniHack"):
        load_config(["reward=keyroom_oracle"])
    with pytest.raises(ConfigError, match="reward.beta"):
        load_config([*TINY, "reward=keyroom_oracle", "reward.beta=-1"])


@pytest.mark.slow
def test_ellm_reward_trains_through_the_cli(tmp_path):
    """`rl-aux train reward=ellm` on KeyRoom: the MiniLM table fills, metrics are logged."""
    from experiments.cli import main

    argv = ["train", *TINY, "reward=ellm", "llm.mode=off", "total_timesteps=256"]
    argv += [f"llm.cache_path={tmp_path}/c.sqlite", f"run_dir={tmp_path}/r"]
    argv += ["logger.log_interval=64"]
    assert main(argv) == 0
    with open(tmp_path / "r" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and {"charts/aux_return", "llm/captions", "llm/table_fill_rate"} <= set(rows[0])
    assert int(rows[-1]["llm/captions"]) > 1


@pytest.mark.slow
def test_blend_of_a_host_source_runs_inside_the_host_ppo_update():
    """reward=blend reward.sources=[oracle] on KeyRoom: r_aux reaches PPO's update, phi moves."""
    from agents.host_loop import HostPPO, host_reward
    from experiments.compose import load_config
    from experiments.train import build_agent

    cfg = load_config([*TINY, "reward=blend", "reward.sources=[oracle]"])
    env, agent = build_agent(cfg)
    source, reward_fn = host_reward(cfg, env)
    assert reward_fn is None and source.name == "oracle" and agent.reward is not None
    seen = []
    try:
        state = agent.init(jax.random.PRNGKey(0), agent.default_hparams())
        loop = HostPPO(agent, env, reward_fn, True, source)
        new = loop.train(state, 2, jax.random.PRNGKey(1), lambda i, m, r, dt: seen.append(m))
    finally:
        env.close()
    assert all(np.isfinite(v) for m in seen for v in m.values())
    moved = jax.tree.map(lambda a, b: bool(np.any(a != b)), state.reward.phi, new.reward.phi)
    assert any(jax.tree.leaves(moved))
    with pytest.raises(ConfigError, match="reward.sources"):
        load_config([*TINY, "reward=blend", "reward.sources=[centre]"])
