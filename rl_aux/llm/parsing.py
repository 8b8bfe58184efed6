"""Defensive parsing of LLM answers: JSON first, then the first {...} block; never `eval`.

A judge answer that cannot be read is "unknown" (None), never "achieved"; only literal JSON
`true` for a known subgoal id counts.
"""

from __future__ import annotations

import json
import re

from rl_aux.llm.prompts import Subgoal

_BLOCK = re.compile(r"\{.*\}", re.S)
_ID = re.compile(r"[a-z][a-z0-9_]{0,39}")


def parse_json_object(text: str) -> dict | None:
    """The JSON object in `text` (whole text, or its outermost {...} block), else None."""
    if not isinstance(text, str):
        return None
    for candidate in (text.strip(), *(m.group(0) for m in _BLOCK.finditer(text))):
        try:
            obj = json.loads(candidate)
        except (json.JSONDecodeError, ValueError):
            continue
        if isinstance(obj, dict):
            return obj
    return None


def parse_judge(text: str, subgoals: list[Subgoal]) -> list[str] | None:
    """Ids judged achieved, or None when the answer is unreadable (the caller may retry once).

    Accepts {"<id>": bool, ...} (the schema) or {"achieved": [ids]}; unknown ids are ignored,
    and only the JSON literal `true` counts as achieved.
    """
    obj = parse_json_object(text)
    if obj is None:
        return None
    ids = [g.id for g in subgoals]
    if isinstance(obj.get("achieved"), list):
        return [i for i in ids if i in obj["achieved"]]
    if not any(i in obj for i in ids):
        return None
    return [i for i in ids if obj.get(i) is True]


def parse_subgoals(text: str) -> list[Subgoal] | None:
    """Subgoals from a propose answer, or None if unreadable."""
    obj = parse_json_object(text)
    if obj is None or not isinstance(obj.get("subgoals"), list):
        return None
    out: list[Subgoal] = []
    for g in obj["subgoals"]:
        if not isinstance(g, dict):
            continue
        desc, hint = str(g.get("description") or ""), str(g.get("evidence_hint") or "")
        gid = str(g.get("id") or "").strip()
        if not _ID.fullmatch(gid):  # ids key the judge's JSON answers: keep them snake_case
            slug = lambda t: re.sub(r"\W+", "_", t.lower()).strip("_")[:40]
            gid = slug(gid) or slug(desc)
        if gid and gid not in {x.id for x in out}:
            out.append(Subgoal(gid, desc, hint))
    return out or None


def parse_preference(text: str) -> int | None:
    obj = parse_json_object(text)
    best = None if obj is None else obj.get("best")
    return best if best in (1, 2) else None
