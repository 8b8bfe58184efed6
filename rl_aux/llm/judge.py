"""The cached LLM judge: subgoal proposal (once per task) and per-caption verdicts, by mode.

Modes: `online` queries on a cache miss (and falls back to `replay` with a warning if the
endpoint goes down); `record` queries on a miss and raises if it cannot; `replay` never
queries, a miss pays 0 and is counted (CI's mode); `off` never judges. An unreadable answer is
retried once, then counts as "unknown" (None), never as achieved.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import warnings
from typing import Any, cast

from rl_aux.llm import parsing, prompts
from rl_aux.llm.cache import LLMCache, cache_key
from rl_aux.llm.client import ChatClient, EndpointError
from rl_aux.llm.prompts import Subgoal
from rl_aux.llm.settings import MODES, LLMConfig, sampling_of

_RETRY = "Your answer was not a JSON object of the requested form. Reply with only that object."


@dataclasses.dataclass
class JudgeStats:
    hits: int = 0  # answered from the cache
    queries: int = 0  # answered by the endpoint
    misses: int = 0  # replay (or down) misses: paid 0
    unknown: int = 0  # unreadable after one retry: paid 0
    endpoint_down: int = 0  # times the endpoint failed and the judge fell back to replay

    def hit_rate(self) -> float:
        n = self.hits + self.queries + self.misses + self.unknown
        return self.hits / n if n else 0.0


class LLMJudge:
    """Verdicts through `cache`, querying `client` only in online/record mode."""

    def __init__(
        self,
        cache: LLMCache | None,
        client: ChatClient | None,
        mode: str,
        model: str,
        sampling: dict | None = None,
    ):
        if mode not in MODES:
            raise ValueError(f"llm.mode={mode!r} is not accepted; accepted: {', '.join(MODES)}")
        if mode in ("online", "record") and (client is None or cache is None):
            raise ValueError(f"llm.mode={mode} needs an endpoint and a cache")
        self.cache, self.client, self.mode, self.model = cache, client, mode, model
        if sampling is None:  # the same key with or without a client (replay must hit)
            sampling = client.sampling() if client is not None else sampling_of(LLMConfig())
        self.sampling = sampling
        self.stats = JudgeStats()
        self._lock = threading.Lock()

    def _ask(self, version: str, messages: list, schema: dict, parse) -> tuple[Any, str]:
        """(parsed or None, source) through the cache; source in hit/query/miss/unknown."""
        if self.mode == "off":
            return None, "miss"
        key = cache_key(self.model, version, messages, self.sampling)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return hit, "hit"
        if self.mode == "replay":
            return None, "miss"
        try:
            client = cast(ChatClient, self.client)  # online/record modes: checked in __init__
            text = client.chat(messages, schema)
            parsed = parse(text)
            if parsed is None:  # one retry, as the answer was unreadable
                retry = [*messages, {"role": "assistant", "content": text[:500]}]
                text = client.chat([*retry, {"role": "user", "content": _RETRY}], schema)
                parsed = parse(text)
        except EndpointError as e:
            if self.mode == "record":
                raise
            with self._lock:
                self.stats.endpoint_down += 1
                self.mode = "replay"
            warnings.warn(
                f"LLM endpoint down ({e}); continuing in replay mode: cache misses pay 0 "
                "and are counted in llm/misses",
                RuntimeWarning,
                stacklevel=2,
            )
            return None, "miss"
        if parsed is None:
            return None, "unknown"
        request = {"messages": messages, "sampling": self.sampling, "schema": schema}
        cast(LLMCache, self.cache).put(key, self.model, version, request, text, parsed)
        return parsed, "query"

    def _count(self, source: str) -> None:
        with self._lock:
            field = {"hit": "hits", "query": "queries", "miss": "misses", "unknown": "unknown"}
            setattr(self.stats, field[source], getattr(self.stats, field[source]) + 1)

    def propose(self, task: str, max_subgoals: int = 5) -> list[Subgoal] | None:
        """The task's subgoals (cached), or None if unavailable in this mode."""
        messages, schema = prompts.propose_subgoals(task, max_subgoals)

        def parse(text):
            gs = parsing.parse_subgoals(text)
            return None if gs is None else [dataclasses.asdict(g) for g in gs]

        parsed, _ = self._ask(prompts.PROPOSE_VERSION, messages, schema, parse)
        return None if parsed is None else [Subgoal(**g) for g in parsed]

    def judge(self, subgoals: list[Subgoal], caption: str) -> list[str] | None:
        """Ids of subgoals the caption completes; None for unknown (a miss or unreadable)."""
        messages, schema = prompts.judge_transition(subgoals, caption)
        parsed, source = self._ask(
            prompts.JUDGE_VERSION, messages, schema, lambda t: parsing.parse_judge(t, subgoals)
        )
        self._count(source)
        return parsed

    def prefer(self, caption_a: str, caption_b: str, goal: str) -> int | None:
        """Motif-style preference: 1 or 2 (the transition showing more progress), None if
        neither, unreadable or unavailable."""
        messages, schema = prompts.prefer(caption_a, caption_b, goal)

        def parse(text):
            obj = parsing.parse_json_object(text)
            return None if obj is None or "best" not in obj else {"best": obj["best"]}

        parsed, source = self._ask(prompts.PREFER_VERSION, messages, schema, parse)
        self._count(source)
        return None if parsed is None else parsing.parse_preference(json.dumps(parsed))
