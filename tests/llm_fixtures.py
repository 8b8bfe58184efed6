"""Synthetic NLE observations for the LLM-reward tests (no NLE process needed)."""

import numpy as np

from rl_aux.llm.caption import CLOSED_DOORS, OPEN_DOORS

FLOOR = 2359 + 19


def obs(
    message: str = "",
    inv=(),
    hp: int = 12,
    gold: int = 0,
    depth: int = 1,
    x=5,
    y=5,
    door: str = "closed",
) -> dict:
    msg = np.zeros(256, np.uint8)
    msg[: len(message)] = np.frombuffer(message.encode(), np.uint8)
    inv_strs = np.zeros((55, 80), np.uint8)
    for i, s in enumerate(inv):
        inv_strs[i, : len(s)] = np.frombuffer(s.encode(), np.uint8)
    bl = np.zeros(27, np.int64)
    bl[0], bl[1], bl[10], bl[11], bl[12], bl[13], bl[20] = x, y, hp, 12, depth, gold, 77
    glyphs = np.full((21, 79), FLOOR, np.int16)
    glyphs[2, 2] = CLOSED_DOORS[0] if door == "closed" else OPEN_DOORS[0]
    return {"message": msg, "blstats": bl, "inv_strs": inv_strs, "glyphs": glyphs}


def batch(obs_list: list[dict]) -> dict:
    return {k: np.stack([o[k] for o in obs_list]) for k in obs_list[0]}
