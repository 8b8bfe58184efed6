"""LLM judge through a stub OpenAI-compatible server: modes, malformed answers, endpoint down,
the async annotator and shaper end to end, and no secret in any file of a run directory."""

import json
import os
import warnings

import numpy as np
import pytest

from rl_aux.llm.cache import LLMCache
from rl_aux.llm.client import ChatClient, ClientConfig, EndpointError
from rl_aux.llm.judge import LLMJudge
from rl_aux.llm.prompts import Subgoal
from rl_aux.llm.settings import LLMConfig
from rl_aux.llm.stub_server import StubServer
from rl_aux.rewards.subgoal import SubgoalRewardConfig
from tests.llm_fixtures import batch, obs

GOALS = [Subgoal("key", "pick up the key"), Subgoal("door", "open the door")]
SECRET = "sk-test-DO-NOT-LEAK-0123456789"


def canned(messages) -> str:
    """A rule-based 'LLM': achieved iff the transition text names the event."""
    text = messages[-1]["content"]
    if "Which transition shows more progress" in text:
        return json.dumps({"best": 2 if "Transition 2: action: pickup" in text else None})
    if "List at most" in text:
        subgoals = [{"id": g.id, "description": g.description, "evidence_hint": ""} for g in GOALS]
        return json.dumps({"subgoals": subgoals})
    transition = text.split("Transition", 1)[1]
    return json.dumps({"key": "gained: a key" in transition, "door": "door opened" in transition})


@pytest.fixture
def server():
    s = StubServer(canned)
    yield s
    s.stop()


def fast_client(url: str) -> ChatClient:
    return ChatClient(ClientConfig(base_url=url, timeout_s=2, max_retries=1, backoff_s=0.01))


def test_online_then_replay_hits_the_cache(server, tmp_path):
    cache = LLMCache(str(tmp_path / "c.sqlite"))
    judge = LLMJudge(cache, fast_client(server.base_url), "online", "stub")
    assert judge.judge(GOALS, "action: pickup | gained: a key") == ["key"]
    assert judge.judge(GOALS, "action: apply | a door opened") == ["door"]
    assert judge.judge(GOALS, "action: pickup | gained: a key") == ["key"]
    assert (judge.stats.queries, judge.stats.hits) == (2, 1)
    body = server.requests[0]["body"]
    assert body["response_format"]["type"] == "json_schema" and body["temperature"] == 0.0
    replay = LLMJudge(cache, None, "replay", "stub")
    assert replay.judge(GOALS, "action: apply | a door opened") == ["door"]
    assert replay.judge(GOALS, "action: move north") is None  # a miss pays 0 ...
    assert replay.stats.misses == 1 and replay.stats.hits == 1  # ... and is counted


def test_malformed_output_is_retried_once_then_unknown(server, tmp_path):
    server.malformed = True
    judge = LLMJudge(
        LLMCache(str(tmp_path / "c.sqlite")), fast_client(server.base_url), "online", "stub"
    )
    assert judge.judge(GOALS, "action: pickup | gained: a key") is None  # never "achieved"
    assert len(server.requests) == 2 and judge.stats.unknown == 1
    assert judge.cache.count() == 0  # unreadable answers are not cached


def test_endpoint_down_mid_run_falls_back_to_replay(server, tmp_path):
    judge = LLMJudge(
        LLMCache(str(tmp_path / "c.sqlite")), fast_client(server.base_url), "online", "stub"
    )
    assert judge.judge(GOALS, "action: pickup | gained: a key") == ["key"]
    server.stop()
    with pytest.warns(RuntimeWarning, match="replay mode"):
        assert judge.judge(GOALS, "action: apply | a door opened") is None
    assert judge.mode == "replay" and judge.stats.endpoint_down == 1
    assert judge.judge(GOALS, "action: pickup | gained: a key") == ["key"]  # cache still serves
    assert judge.judge(GOALS, "action: move east") is None
    assert judge.stats.misses == 2


def test_record_mode_raises_when_down(tmp_path):
    judge = LLMJudge(
        LLMCache(str(tmp_path / "c.sqlite")), fast_client("http://127.0.0.1:9/v1"), "record", "stub"
    )
    with pytest.raises(EndpointError, match="127.0.0.1:9"):
        judge.judge(GOALS, "action: pickup")


def test_shaper_end_to_end_and_no_secret_in_run_dir(server, tmp_path, monkeypatch):
    import dataclasses

    from experiments.compose import load_config
    from rl_aux.llm.shaper import SubgoalShaper
    from rl_aux.run_store import RunStore

    monkeypatch.setenv("RL_AUX_LLM_API_KEY", SECRET)
    run_dir = tmp_path / "runs" / "llm" / "subgoal"
    lcfg = LLMConfig(
        mode="online",
        base_url=server.base_url,
        cache_path=str(run_dir / "llm.sqlite"),
        max_retries=1,
        backoff_s=0.01,
    )
    rcfg = SubgoalRewardConfig(subgoals=(), table_size=16, beta=0.5)
    shaper = SubgoalShaper(rcfg, lcfg, ["move north", "pickup", "apply"], num_envs=2)
    assert [g.id for g in shaper.subgoals] == ["key", "door"]  # proposed by the "LLM"
    auth = [r for r in server.requests if r["path"].endswith("/chat/completions")]
    assert auth and "messages" in auth[0]["body"]
    # one rollout of T=3 steps on E=2 envs: env 0 picks up the key twice, env 1 opens the door
    s0 = [obs(""), obs("")]
    s1 = [obs("g - a key.", inv=["a key"]), obs("", door="open")]
    s2 = [obs("", inv=[]), obs("", door="open")]
    s3 = [obs("g - a key.", inv=["a key"]), obs("", door="open")]
    steps = [(s0, [1, 2], s1), (s1, [0, 0], s2), (s2, [1, 0], s3)]
    ids = np.stack([shaper.step_ids(batch(p), a, batch(n)) for p, a, n in steps])
    assert shaper.annotator.drain(timeout=10)
    r = shaper.rollout_rewards(ids, np.zeros((3, 2), bool))
    np.testing.assert_allclose(r, [[0.5, 0.5], [0, 0], [0, 0]])  # once per episode each
    shaper.freeze()
    shaper.step_ids(batch(s0), [0, 0], batch([obs("", gold=3), obs("")]))  # new caption, frozen
    assert not shaper.annotator.labelled[len(shaper.registry)]
    m = shaper.metrics()
    assert m["llm/table_fill_rate"] == 4 / 5 and m["llm/queries"] == 4 and m["llm/captions"] == 5
    # write a run directory as the trainer does, with the key in the environment
    store = RunStore(str(run_dir), resume=False)
    cfg = dataclasses.replace(load_config([]), llm=lcfg, reward=rcfg, reward_name="subgoal")
    store.write_config(cfg.to_yaml_dict())
    store.write_meta()
    store.open_metrics(["global_step", "seed", "grid", *m], None)
    store.log_rows([{"global_step": 1, "seed": 0, "grid": 0, **m}])
    store.close()
    shaper.close()
    assert "RL_AUX_LLM_API_KEY" in (run_dir / "config.yaml").read_text()  # the NAME only
    for root, _, files in os.walk(tmp_path / "runs"):
        for f in files:
            data = open(os.path.join(root, f), "rb").read()
            assert SECRET.encode() not in data, f"secret leaked into {f}"
    assert SECRET not in repr(shaper.judge.client)


def test_client_sends_key_only_in_header(server, monkeypatch):
    monkeypatch.setenv("MY_KEY_VAR", SECRET)
    c = ChatClient(ClientConfig(base_url=server.base_url, api_key_env="MY_KEY_VAR"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c.chat([{"role": "user", "content": "Transition x"}])
    assert SECRET not in json.dumps(server.requests[-1]["body"])


def test_pairwise_preference(server, tmp_path):
    judge = LLMJudge(
        LLMCache(str(tmp_path / "c.sqlite")), fast_client(server.base_url), "online", "stub"
    )
    assert judge.prefer("action: move north", "action: pickup | gained: a key", "escape") == 2
    assert judge.prefer("action: pickup | gained: a key", "action: move north", "escape") is None
    server.malformed = True
    assert judge.prefer("action: move east", "action: move west", "escape") is None


@pytest.mark.parametrize("status", [422, 500])
def test_json_form_falls_back_when_rejected(server, status):
    server.reject_forms, server.reject_status = {"json_schema"}, status
    c = fast_client(server.base_url)
    text = c.chat([{"role": "user", "content": "Transition: gained: a key"}], {"type": "object"})
    assert json.loads(text)["key"] is True
    forms = [r["body"]["response_format"]["type"] for r in server.requests]
    assert forms == ["json_schema", "json_object"]
    assert server.requests[1]["body"]["response_format"]["schema"] == {"type": "object"}
    c.chat([{"role": "user", "content": "Transition: x"}], {"type": "object"})  # remembered
    assert server.requests[-1]["body"]["response_format"]["type"] == "json_object"


def test_concurrent_rejections_drop_only_the_rejected_form(server):
    """llama-cpp-python rejects json_schema; 4 judge threads that all meet that rejection at once
    must settle on json_object, not fall through to unconstrained output (seen at RL scale)."""
    import concurrent.futures as cf

    server.reject_forms, server.reject_status, server.hold = {"json_schema"}, 500, 4
    c = ChatClient(ClientConfig(base_url=server.base_url, timeout_s=10, concurrency=4))
    msgs = [[{"role": "user", "content": f"Transition: gained: a key {i}"}] for i in range(4)]
    with cf.ThreadPoolExecutor(4) as ex:
        texts = list(ex.map(lambda m: c.chat(m, {"type": "object"}), msgs))
    assert all(json.loads(t)["key"] is True for t in texts)
    forms = [r["body"]["response_format"]["type"] for r in server.requests]
    assert forms[:4] == ["json_schema"] * 4 and forms[4:] == ["json_object"] * 4
