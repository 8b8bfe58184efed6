"""LLM-reward core: captions, caption ids, the SQLite cache, parsing and the jitted table."""

import os
import sqlite3

import jax.numpy as jnp
import numpy as np
import pytest

from rl_aux.llm import parsing
from rl_aux.llm.cache import CacheError, LLMCache, cache_key
from rl_aux.llm.caption import CaptionConfig, caption
from rl_aux.llm.prompts import Subgoal
from rl_aux.llm.registry import OVERFLOW_ID, CaptionRegistry
from rl_aux.llm.table import rollout_aux_rewards
from tests.llm_fixtures import obs

GOALS = [Subgoal("key", "pick up the key"), Subgoal("door", "open the door")]


def test_caption_parts_and_canonical_digits():
    prev = obs("", inv=["a +0 short sword"], hp=12, gold=5, x=3, y=4)
    nxt = obs(
        "f - 2 keys named Fred 17.",
        inv=["a +0 short sword", "2 keys"],
        hp=9,
        gold=5,
        x=4,
        y=4,
        door="open",
    )
    c = caption(prev, "PICKUP", nxt)
    assert c == (
        "action: pickup | message: f - N keys named Fred N. | gained: N keys | "
        "lost hit points | a door opened"
    )
    # no coordinates or turn counter anywhere; the message line can be ablated
    assert "77" not in c and " 4" not in c
    raw = caption(prev, "PICKUP", nxt, CaptionConfig(canonical_digits=False, message=False))
    assert raw == "action: pickup | gained: 2 keys | lost hit points | a door opened"


def test_caption_game_over_and_stairs():
    prev = obs("", x=5, y=5)
    prev["glyphs"][5, 4] = 2359 + 24  # stairs down west of the agent
    end = obs("")
    end["blstats"][:] = 0  # NLE's end-of-game observation
    assert caption(prev, "move west", end) == (
        "action: move west | stepped onto the down staircase | the game ended"
    )


def test_registry_capacity_and_overflow():
    reg = CaptionRegistry(3)
    assert reg.intern("a") == (1, True) and reg.intern("a") == (1, False)
    assert reg.intern("b") == (2, True)
    assert reg.intern("c") == (OVERFLOW_ID, False) and reg.overflow == 1


def test_cache_roundtrip_and_key(tmp_path):
    path = str(tmp_path / "c.sqlite")
    c = LLMCache(path)
    k = cache_key("m", "judge-v1", [{"role": "user", "content": "x"}], {"temperature": 0})
    assert k != cache_key("m", "judge-v2", [{"role": "user", "content": "x"}], {"temperature": 0})
    assert k != cache_key("m2", "judge-v1", [{"role": "user", "content": "x"}], {"temperature": 0})
    assert c.get(k) is None
    c.put(k, "m", "judge-v1", {"messages": []}, '{"key": true}', ["key"])
    c.put_vec("hello", "minilm", np.arange(4, dtype=np.float32))
    c.close()
    c2 = LLMCache(path)
    assert c2.get(k) == ["key"]
    np.testing.assert_array_equal(c2.get_vec("hello", "minilm"), np.arange(4))
    assert c2.db_mode() == "wal"


def test_corrupt_cache_names_the_file(tmp_path):
    path = tmp_path / "bad.sqlite"
    path.write_bytes(b"this is not an sqlite database" * 100)
    with pytest.raises(CacheError, match="bad.sqlite"):
        LLMCache(str(path))


def test_locked_cache_names_the_file(tmp_path):
    path = str(tmp_path / "locked.sqlite")
    LLMCache(path).close()
    other = sqlite3.connect(path)
    other.execute("PRAGMA locking_mode=EXCLUSIVE")
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(CacheError, match="locked.sqlite.*locked"):
            LLMCache(path, timeout=0.1)
    finally:
        other.rollback()
        other.close()
    assert os.path.exists(path)


@pytest.mark.parametrize(
    "text,want",
    [
        ('{"key": true, "door": false}', ["key"]),
        ('Sure: {"key": false, "door": true} done', ["door"]),
        ('{"achieved": ["door", "nope"]}', ["door"]),
        ('{"key": "true", "door": 1}', []),  # only the JSON literal true counts
        ("the key was picked up: achieved!", None),  # unreadable: unknown, never achieved
        ('{"other": true}', None),
        ("", None),
    ],
)
def test_parse_judge_is_defensive(text, want):
    assert parsing.parse_judge(text, GOALS) == want


def test_table_pays_first_completion_per_episode():
    table = jnp.zeros((8, 2)).at[3, 0].set(1.0).at[4, 1].set(1.0).at[5].set(1.0)
    ids = jnp.array([[3, 1], [3, 4], [4, 3], [3, 5]])  # [T=4, E=2]
    dones = jnp.array([[0, 0], [0, 0], [1, 0], [0, 0]])
    r, ach = rollout_aux_rewards(table, ids, dones, jnp.zeros((2, 2), bool), jnp.float32(0.1))
    # env 0: key at t0 (paid), key again t1 (not), door t2 (paid, episode ends), key t3 (new ep)
    # env 1: nothing, door t1 (paid), key t2 (paid), both again t3 (nothing left)
    np.testing.assert_allclose(np.asarray(r), [[0.1, 0], [0, 0.1], [0.1, 0.1], [0.1, 0]])
    np.testing.assert_array_equal(np.asarray(ach), [[True, False], [True, True]])


def test_reward_config_group_and_errors():
    from experiments.compose import ConfigError, compose, load_config

    d = compose(["reward=ellm", "reward.beta=0.2", "llm.mode=off"])
    assert d["reward"]["name"] == "ellm" and d["reward"]["beta"] == 0.2
    assert d["llm"]["mode"] == "off" and d["llm"]["api_key_env"] == "RL_AUX_LLM_API_KEY"
    assert load_config([]).reward_name == "env"
    with pytest.raises(ConfigError, match="reward=subgoal reads NLE/MiniHack text"):
        load_config(["reward=subgoal"])
    with pytest.raises(ConfigError, match="Did you mean beta"):
        load_config(["reward=subgoal", "reward.bta=1"])
    with pytest.raises(ConfigError, match="llm.mode='bogus'.*online, record, replay, off"):
        load_config(["llm.mode=bogus"])


def test_parse_subgoals_keeps_ids_usable():
    text = (
        '{"subgoals": [{"id": "}, {", "description": "Find the Key"}, '
        '{"id": "open_door", "description": "open it"}, {"id": "open_door"}, {"id": ""}]}'
    )
    got = parsing.parse_subgoals(text)
    assert [g.id for g in got] == ["find_the_key", "open_door"]
    assert parsing.parse_subgoals("no json here") is None


def test_config_subgoals_carry_evidence_hints():
    """reward.evidence_hints and reward.subgoal_ids reach the judge's prompt, one per subgoal; a
    count mismatch is a ConfigError naming both fields."""
    from rl_aux.llm.prompts import judge_transition
    from rl_aux.llm.shaper import subgoals_from_text
    from rl_aux.typed_config import ConfigError

    goals = subgoals_from_text(["pick up the key", "go down"], ["a key enters the inventory", ""])
    assert [(g.id, g.evidence_hint) for g in goals] == [
        ("pick_up_the_key", "a key enters the inventory"),
        ("go_down", ""),
    ]
    assert "(evidence: a key enters the inventory)" in judge_transition(goals, "x")[0][1]["content"]
    assert [g.evidence_hint for g in subgoals_from_text(["a", "b"])] == ["", ""]
    with pytest.raises(ConfigError, match="evidence_hints has 1 entries but reward.subgoals has 2"):
        subgoals_from_text(["a", "b"], ["h"])
    assert [g.id for g in subgoals_from_text(["pick up the key"], (), ["key"])] == ["key"]
    with pytest.raises(ConfigError, match="subgoal_ids must be distinct"):
        subgoals_from_text(["a", "b"], (), ["k", "k"])


def test_keyroom_experiment_arms_validate():
    """Every arm of experiment=llm_keyroom_ppo passes the config check; the judge arm asks the
    measured prompt, and the bench replays it from the shipped cache with no server."""
    import os

    from experiments.bench.llm import JUDGE_CACHE, judge_overrides
    from experiments.compose import compose, load_config

    arms = compose(["experiment=llm_keyroom_ppo"])["variants"]
    assert set(arms) == {"sparse", "ellm", "judge", "oracle", "blend", "blend_nobias"}
    cfgs = {k: load_config(["experiment=llm_keyroom_ppo", *v]) for k, v in arms.items()}
    judge = cfgs["judge"].reward
    assert judge.kind == "judge" and judge.subgoal_ids == ("key", "door", "stairs")
    assert not judge.caption_message and len(judge.evidence_hints) == 3
    assert cfgs["judge"].llm.mode == "online" and cfgs["blend_nobias"].reward.learn_bias is False
    bench = load_config(["experiment=minihack_ppo", *judge_overrides("/tmp/x.sqlite")])
    assert bench.llm.mode == "replay" and bench.reward.subgoal_ids == judge.subgoal_ids
    assert os.path.getsize(JUDGE_CACHE) > 0


def test_caption_history_and_sample_time_lookup():
    """DQN's lookup: a subgoal pays on its first caption in an episode under the table as it is
    when sampled; the history resets at episode ends and counts overflow beyond K."""
    from rl_aux.llm.history import CaptionHistory
    from rl_aux.llm.table import sample_aux_rewards

    h = CaptionHistory(num_envs=1, k=2)
    ids, dones = [3, 5, 3, 7, 9, 4, 3], [0, 0, 0, 0, 1, 0, 0]
    priors = [h.step(np.array([i]), np.array([d]))[0] for i, d in zip(ids, dones, strict=True)]
    assert [list(p) for p in priors] == [
        [0, 0], [3, 0], [3, 5], [3, 5], [3, 5], [0, 0], [4, 0]
    ]  # fmt: skip
    assert h.overflow == 1  # 7 did not fit (K = 2); 9 ended the episode
    table = jnp.zeros((10, 2)).at[3, 0].set(1.0).at[5, 0].set(0.8).at[7, 1].set(1.0)
    r = sample_aux_rewards(table, jnp.array(ids), jnp.array(np.stack(priors)), jnp.float32(0.1))
    # 3: first (0.1); 5: subgoal 0 already done by 3 (0); 3 again (0); 7: subgoal 1 (0.1);
    # 9, 4: unlabelled; 3 in the next episode: first again (0.1)
    np.testing.assert_allclose(np.asarray(r), [0.1, 0, 0, 0.1, 0, 0, 0.1], atol=1e-7)


def test_sparse_map_and_inventory_diffs_match_dense_counts():
    """The per-step fast paths (changed cells only, inventory text only where it changed) give
    the dense answers: door counts over whole maps and key counts over whole inventories."""
    from rl_aux.llm.caption import CLOSED_DOORS, DOWN_STAIRS, changed_cells, env_net_change
    from rl_aux.rewards.keyroom_oracle import keyroom_labels, keys_held

    rng = np.random.default_rng(3)
    e, h, w = 12, 21, 79
    lo, hi = CLOSED_DOORS
    pool = np.array([lo, hi, lo - 2, lo - 1, 2359, DOWN_STAIRS, 333], np.int16)
    g0 = pool[rng.integers(0, len(pool), (e, h, w))]
    g1 = g0.copy()
    for i in range(e):  # a few cells change per env, some envs none
        for _ in range(rng.integers(0, 6)):
            g1[i, rng.integers(h), rng.integers(w)] = pool[rng.integers(len(pool))]
    inv0 = np.zeros((e, 55, 80), np.uint8)
    inv1 = inv0.copy()
    for i in range(0, e, 3):
        inv1[i, 1, :13] = np.frombuffer(b"f - a Key 123", np.uint8)
    blstats = np.ones((e, 27), np.int64)
    blstats[:, 0], blstats[:, 1] = rng.integers(1, w - 1, e), rng.integers(1, h - 1, e)
    blstats[5] = 0  # an env on NLE's end screen
    prev = {"glyphs": g0, "inv_strs": inv0, "blstats": blstats}
    nxt = {"glyphs": g1, "inv_strs": inv1, "blstats": blstats.copy()}
    prev["blstats"][5] = 1

    env, c0, c1 = changed_cells(g0, g1)
    dense = lambda g: ((g >= lo) & (g <= hi)).reshape(e, -1).sum(1)
    net = env_net_change(env, c0, c1, CLOSED_DOORS, e)
    np.testing.assert_array_equal(net, dense(g1) - dense(g0))
    assert len(env) == int((g0 != g1).sum())

    actions = ["move north", "move east", "pick up", "move southwest"] * 3
    lab = keyroom_labels(prev, actions, nxt)
    np.testing.assert_array_equal(lab[:, 0], keys_held(inv1) > keys_held(inv0))
    assert lab[:, 0].sum() == 4
    game_over = ~nxt["blstats"].any(1)
    np.testing.assert_array_equal(lab[:, 1], (dense(g1) < dense(g0)) & ~game_over)
    assert lab[:, 1].any() and not lab[:, 1].all()
    steps = {"move north": (0, -1), "move east": (1, 0), "move southwest": (-1, 1)}
    for i, a in enumerate(actions):  # stairs: the move's target cell, read from `prev`
        dx, dy = steps.get(a, (0, 0))
        x, y = blstats[i, 0] + dx, blstats[i, 1] + dy
        assert lab[i, 2] == (a in steps and g0[i, y, x] == DOWN_STAIRS)
    assert lab[:, 2].any()
