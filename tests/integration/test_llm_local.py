"""A real LLM offline: llama.cpp's OpenAI-compatible server with Gemma 3 270M (marker llm_local;
needs the `llm-local` extra). Run: pytest -m llm_local tests/integration/test_llm_local.py"""

import os

import pytest

from experiments.studies import llm_keyroom as kr

pytestmark = pytest.mark.llm_local
DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "llm")
PORT = 8093


@pytest.fixture(scope="module")
def server():
    from rl_aux.llm import local_server

    url = local_server.start(PORT, threads=2)
    yield url
    local_server.stop(PORT)


def _judge(url, tmp_path, mode="online"):
    from rl_aux.llm.cache import LLMCache
    from rl_aux.llm.client import ChatClient, ClientConfig
    from rl_aux.llm.judge import LLMJudge

    client = ChatClient(ClientConfig(base_url=url, model="gemma-3-270m-q4_k_m", timeout_s=120))
    return LLMJudge(LLMCache(str(tmp_path / "c.sqlite")), client, mode, "gemma-3-270m-q4_k_m")


def test_local_server_answers_schema_constrained_json(server, tmp_path):
    from rl_aux.llm.prompts import Subgoal

    judge = _judge(server, tmp_path)
    goals = [Subgoal(k, kr.SUBGOALS[k], kr.HINTS[k]) for k in kr.LABELS]
    for cap in (
        "action: pickup | message: g - a key named The Master Key of Thievery. | gained: a key",
        "action: move north | message: It's a wall.",
    ):
        verdict = judge.judge(goals, cap)
        assert verdict is not None and set(verdict) <= set(kr.LABELS)
    assert judge.stats.unknown == 0 and judge.stats.queries == 2


# field -> F1 floor for the live judge: the lower of two builds' figures minus 0.02. A 270M
# model at temperature 0 sits on a knife edge: two from-source builds of llama-cpp-python 0.3.36
# on this machine kind answered 17 of 42 prompts differently (F1 with / without the message line:
# 0.101 / 0.217 recorded, 0.157 / 0.149 rebuilt; docs/results/llm-subgoal-rewards.md), so the
# live figure is checked against a floor, not against the recording.
LIVE_F1_FLOORS = [("caption", 0.08), ("caption_nomsg", 0.129)]


@pytest.mark.parametrize("field,floor", LIVE_F1_FLOORS)
def test_local_judge_quality_is_at_the_measured_floor(server, tmp_path, field, floor):
    """Re-judge the held-out set live: readable answers only, F1 at or above the floor."""
    rows = kr.load(os.path.join(DATA, "keyroom_transitions.jsonl"))
    judge = _judge(server, tmp_path)
    pred, unknown = kr.judge_predictions(rows, field, judge)
    live = kr.score(rows, pred)["any"]
    assert unknown == 0 and live["f1"] >= floor, (live, unknown)
