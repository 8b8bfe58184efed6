"""Our versioned prompts (CALM-style propose + judge, Motif-style preference) and their schemas.

Each builder returns (messages, json_schema). The version string is part of the cache key:
change the wording, bump the version. Wording is ours (no paper's prompt is reused).
"""

from __future__ import annotations

import dataclasses

PROPOSE_VERSION = "propose-v1"
JUDGE_VERSION = "judge-v1"
PREFER_VERSION = "prefer-v1"

_SYSTEM = (
    "You assist a reinforcement-learning agent in the roguelike game NetHack (MiniHack levels). "
    "Answer with one JSON object and nothing else."
)
LEGEND = (
    "Map symbols: @ the agent, . floor, | and - walls, + a closed door (or a spellbook), "
    "( a tool such as a key, > stairs down (the exit), < stairs up."
)


@dataclasses.dataclass(frozen=True)
class Subgoal:
    """One step towards the task: a short id, a description and the text that evidences it."""

    id: str
    description: str
    evidence_hint: str = ""


def propose_subgoals(task: str, max_subgoals: int = 5) -> tuple[list[dict], dict]:
    """Ask for the task's key intermediate steps (once per task; cached)."""
    user = (
        f"{LEGEND}\nTask: {task}\n"
        f"List at most {max_subgoals} intermediate steps the agent must complete, in order. "
        "For each give a short snake_case id, a one-sentence description, and the in-game text "
        "(message or inventory change) that would show it happened. "
        'Reply as {"subgoals": [{"id": ..., "description": ..., "evidence_hint": ...}]}.'
    )
    item = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "description": {"type": "string"},
            "evidence_hint": {"type": "string"},
        },
        "required": ["id", "description", "evidence_hint"],
    }
    schema = {
        "type": "object",
        "properties": {"subgoals": {"type": "array", "items": item, "maxItems": max_subgoals}},
        "required": ["subgoals"],
    }
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}], schema


def judge_transition(subgoals: list[Subgoal], caption: str) -> tuple[list[dict], dict]:
    """Ask which subgoals this single transition completes (CALM's judge, one transition)."""
    lines = "\n".join(f"- {g.id}: {g.description} (evidence: {g.evidence_hint})" for g in subgoals)
    user = (
        f"{LEGEND}\nSubgoals:\n{lines}\n\n"
        f"Transition (the agent's action and what the game reported right after it):\n{caption}\n\n"
        "For each subgoal, answer true only if this transition itself completes it, "
        "false otherwise. Reply as a JSON object mapping every subgoal id to true or false."
    )
    schema = {
        "type": "object",
        "properties": {g.id: {"type": "boolean"} for g in subgoals},
        "required": [g.id for g in subgoals],
        "additionalProperties": False,
    }
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}], schema


def prefer(caption_a: str, caption_b: str, goal: str) -> tuple[list[dict], dict]:
    """Which of two transitions shows more progress towards `goal` (Motif-style preference)."""
    user = (
        f"Goal: {goal}\nTransition 1: {caption_a}\nTransition 2: {caption_b}\n"
        'Which transition shows more progress towards the goal? Reply as {"best": 1}, '
        '{"best": 2}, or {"best": null} if neither.'
    )
    schema = {
        "type": "object",
        "properties": {"best": {"enum": [1, 2, None]}},
        "required": ["best"],
    }
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}], schema
