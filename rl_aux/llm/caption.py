"""Transition captions from NLE/MiniHack observations: the text the judge and the matcher read.

A caption names what happened between two observations: the action, the message line, the
inventory diff, salient bottom-line deltas (depth, HP, gold) and door/stairs events. It never
holds coordinates or turn counters (they would make every caption unique and defeat the cache);
digits can be canonicalised to `N` for the same reason. Atari has no text: NLE/MiniHack only.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence

import numpy as np

from rl_aux.configs import spec

# NLE bottom-line (blstats) indices and map glyph ids (nle.nethack: GLYPH_CMAP_OFF + defsym index).
BL_X, BL_Y, BL_HP, BL_HPMAX, BL_DEPTH, BL_GOLD = 0, 1, 10, 11, 12, 13
GLYPH_CMAP_OFF = 2359
CLOSED_DOORS = (GLYPH_CMAP_OFF + 15, GLYPH_CMAP_OFF + 16)  # S_vcdoor, S_hcdoor
OPEN_DOORS = (GLYPH_CMAP_OFF + 13, GLYPH_CMAP_OFF + 14)  # S_vodoor, S_hodoor
DOWN_STAIRS = GLYPH_CMAP_OFF + 24  # S_dnstair
OBS_KEYS = ("message", "blstats", "inv_strs", "glyphs")  # what `caption` reads
_STEP = {
    "north": (0, -1), "east": (1, 0), "south": (0, 1), "west": (-1, 0),
    "northeast": (1, -1), "southeast": (1, 1), "southwest": (-1, 1), "northwest": (-1, -1),
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class CaptionConfig:
    """Which parts a caption holds (the message line can be ablated) and digit canonicalisation."""

    message: bool = True
    inventory: bool = True
    stats: bool = True
    events: bool = True
    canonical_digits: bool = True
    max_chars: int = spec(240, ge=16)


def decode_message(msg: np.ndarray) -> str:
    """The NUL-padded 256-byte message line as a stripped, whitespace-collapsed string."""
    text = bytes(np.asarray(msg, np.uint8)).split(b"\0", 1)[0].decode("latin-1")
    return " ".join(text.split())


def decode_inventory(inv_strs: np.ndarray) -> list[str]:
    """The inventory item strings (empty rows dropped)."""
    rows = np.asarray(inv_strs, np.uint8)
    items = [bytes(r).split(b"\0", 1)[0].decode("latin-1").strip() for r in rows]
    return [s for s in items if s]


def _canon(text: str, digits: bool) -> str:
    return re.sub(r"[+-]?\d+", "N", text) if digits else text


def game_over(obs: Mapping) -> bool:
    """NLE's observation after the game ended (success or death): all bottom-line stats zero."""
    return not np.any(np.asarray(obs["blstats"]))


def _target_glyph(prev: Mapping, action: str) -> int | None:
    """The glyph of the cell a move action walks into (from the previous observation)."""
    step = _STEP.get(action.lower().removeprefix("move "))
    if step is None:
        return None
    g, bl = np.asarray(prev["glyphs"]), np.asarray(prev["blstats"])
    x, y = int(bl[BL_X]) + step[0], int(bl[BL_Y]) + step[1]
    return int(g[y, x]) if 0 <= y < g.shape[0] and 0 <= x < g.shape[1] else None


def _events(prev: Mapping, obs: Mapping, action: str) -> list[str]:
    """Door and stairs events from glyph counts and the glyph the agent stepped onto."""
    if game_over(obs):
        out = ["the game ended"]
        if _target_glyph(prev, action) == DOWN_STAIRS:
            out.insert(0, "stepped onto the down staircase")
        return out
    out = []
    g0, g1 = np.asarray(prev["glyphs"]), np.asarray(obs["glyphs"])
    closed0, closed1 = np.isin(g0, CLOSED_DOORS).sum(), np.isin(g1, CLOSED_DOORS).sum()
    open0, open1 = np.isin(g0, OPEN_DOORS).sum(), np.isin(g1, OPEN_DOORS).sum()
    if closed1 < closed0 and open1 + closed1 <= open0 + closed0 + 1 and open1 > open0:
        out.append("a door opened")
    elif closed1 < closed0 and open1 <= open0:
        out.append("a door disappeared")
    bl0, bl1 = np.asarray(prev["blstats"]), np.asarray(obs["blstats"])
    moved = (bl0[BL_X], bl0[BL_Y]) != (bl1[BL_X], bl1[BL_Y])
    if moved and g0[bl1[BL_Y], bl1[BL_X]] == DOWN_STAIRS:
        out.append("stepped onto the down staircase")
    if np.any(g1 == DOWN_STAIRS) and not np.any(g0 == DOWN_STAIRS):
        out.append("a down staircase came into view")
    return out


def caption(prev: Mapping, action: str, obs: Mapping, cfg: CaptionConfig = CaptionConfig()) -> str:
    """Canonical caption of the transition prev --action--> obs (NLE observation dicts)."""
    parts = [f"action: {action.lower()}"]
    ended = game_over(obs)  # the end-of-game screen: inventory/stats deltas are meaningless
    if cfg.message:
        msg = decode_message(obs["message"])
        if msg:
            parts.append(f"message: {_canon(msg, cfg.canonical_digits)}")
    if cfg.inventory and not ended:
        inv0, inv1 = decode_inventory(prev["inv_strs"]), decode_inventory(obs["inv_strs"])
        gained = [s for s in inv1 if s not in inv0]
        lost = [s for s in inv0 if s not in inv1]
        if gained:
            parts.append("gained: " + "; ".join(_canon(s, cfg.canonical_digits) for s in gained))
        if lost:
            parts.append("lost: " + "; ".join(_canon(s, cfg.canonical_digits) for s in lost))
    if cfg.stats and not ended:
        bl0, bl1 = np.asarray(prev["blstats"]), np.asarray(obs["blstats"])
        words = {
            BL_DEPTH: ("went deeper into the dungeon", "went up a dungeon level"),
            BL_HP: ("gained hit points", "lost hit points"),
            BL_GOLD: ("gained gold", "lost gold"),
        }
        for idx, (more, less) in words.items():
            d = int(bl1[idx]) - int(bl0[idx])
            if d:
                parts.append(more if d > 0 else less)
    if cfg.events:
        parts.extend(_events(prev, obs, action))
    return " | ".join(parts)[: cfg.max_chars]


def action_names(actions: Sequence) -> list[str]:
    """Readable names of an NLE action tuple (e.g. CompassDirection.N -> 'move north')."""
    compass = {"N": "north", "E": "east", "S": "south", "W": "west"}
    compass |= {"NE": "northeast", "SE": "southeast", "SW": "southwest", "NW": "northwest"}
    out = []
    for a in actions:
        name = getattr(a, "name", str(a))
        out.append(f"move {compass[name]}" if name in compass else name.lower().replace("_", " "))
    return out
