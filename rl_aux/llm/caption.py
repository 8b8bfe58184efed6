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
CLOSED_DOORS = (GLYPH_CMAP_OFF + 15, GLYPH_CMAP_OFF + 16)  # S_vcdoor, S_hcdoor (a range)
OPEN_DOORS = (GLYPH_CMAP_OFF + 13, GLYPH_CMAP_OFF + 14)  # S_vodoor, S_hodoor (a range)
DOWN_STAIRS = GLYPH_CMAP_OFF + 24  # S_dnstair
OBS_KEYS = ("message", "blstats", "inv_strs", "glyphs")  # what `caption` reads
MOVE_STEP = {  # move direction -> (dx, dy) on the map
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
    step = MOVE_STEP.get(action.lower().removeprefix("move "))
    if step is None:
        return None
    g, bl = np.asarray(prev["glyphs"]), np.asarray(prev["blstats"])
    x, y = int(bl[BL_X]) + step[0], int(bl[BL_Y]) + step[1]
    return int(g[y, x]) if 0 <= y < g.shape[0] and 0 <= x < g.shape[1] else None


def _in(g: np.ndarray, lo_hi: tuple[int, int]) -> np.ndarray:
    return (g >= lo_hi[0]) & (g <= lo_hi[1])


_MSG_MEMO: dict[tuple[bytes, bool], str] = {}  # raw message bytes -> canonical text


def _message(raw: np.ndarray, digits: bool) -> str:
    key = (raw.tobytes(), digits)
    text = _MSG_MEMO.get(key)
    if text is None:
        if len(_MSG_MEMO) > 100_000:
            _MSG_MEMO.clear()
        text = _MSG_MEMO[key] = _canon(decode_message(raw), digits)
    return text


_WORDS = (
    ("went deeper into the dungeon", "went up a dungeon level"),
    ("gained hit points", "lost hit points"),
    ("gained gold", "lost gold"),
)


def captions(
    prev: Mapping, actions: Sequence[str], obs: Mapping, cfg: CaptionConfig = CaptionConfig()
) -> list[str]:
    """Canonical captions of a batch of transitions prev[e] --actions[e]--> obs[e].

    `prev`/`obs` map NLE keys to [E, ...] arrays (a vector env's batch). The numeric work is
    done once for the batch, on the few map cells that changed; only the string assembly is
    per transition.
    """
    bl0, bl1 = np.asarray(prev["blstats"]), np.asarray(obs["blstats"])
    n = bl0.shape[0]
    ended = ~np.any(bl1 != 0, axis=1)  # NLE's end-of-game observation: all stats zero
    cols = [BL_DEPTH, BL_HP, BL_GOLD]
    deltas = np.sign(bl1[:, cols].astype(np.int64) - bl0[:, cols]).tolist()
    inv0, inv1 = np.asarray(prev["inv_strs"]), np.asarray(obs["inv_strs"])
    inv_changed = np.any((inv0 != inv1).reshape(n, -1), axis=1)
    g0, g1 = np.asarray(prev["glyphs"]), np.asarray(obs["glyphs"])
    env, ys, xs = np.nonzero(g0 != g1)  # typically a few cells per env
    c0, c1 = g0[env, ys, xs], g1[env, ys, xs]
    net = lambda lo_hi: np.bincount(
        env, weights=_in(c1, lo_hi).astype(float) - _in(c0, lo_hi), minlength=n
    )
    closed_d, open_d = net(CLOSED_DOORS), net(OPEN_DOORS)
    new_stairs = set(env[c1 == DOWN_STAIRS].tolist())
    msgs = np.asarray(obs["message"])
    out = []
    for e in range(n):
        parts = [f"action: {actions[e].lower()}"]
        if cfg.message:
            msg = _message(msgs[e], cfg.canonical_digits)
            if msg:
                parts.append(f"message: {msg}")
        if ended[e]:  # the end-of-game screen: inventory/stats deltas are meaningless
            if cfg.events:
                step = _target_glyph({"glyphs": g0[e], "blstats": bl0[e]}, actions[e])
                if step == DOWN_STAIRS:
                    parts.append("stepped onto the down staircase")
                parts.append("the game ended")
            out.append(" | ".join(parts)[: cfg.max_chars])
            continue
        if cfg.inventory and inv_changed[e]:
            i0, i1 = decode_inventory(inv0[e]), decode_inventory(inv1[e])
            gained = [_canon(x, cfg.canonical_digits) for x in i1 if x not in i0]
            lost = [_canon(x, cfg.canonical_digits) for x in i0 if x not in i1]
            if gained:
                parts.append("gained: " + "; ".join(gained))
            if lost:
                parts.append("lost: " + "; ".join(lost))
        if cfg.stats:
            for d, (more, less) in zip(deltas[e], _WORDS, strict=True):
                if d:
                    parts.append(more if d > 0 else less)
        if cfg.events:
            if closed_d[e] < 0:
                parts.append("a door opened" if open_d[e] > 0 else "a door disappeared")
            if e in new_stairs and not np.any(g0[e] == DOWN_STAIRS):
                parts.append("a down staircase came into view")
        out.append(" | ".join(parts)[: cfg.max_chars])
    return out


def caption(prev: Mapping, action: str, obs: Mapping, cfg: CaptionConfig = CaptionConfig()) -> str:
    """Canonical caption of one transition prev --action--> obs (NLE observation dicts)."""
    one = lambda o: {k: np.asarray(o[k])[None] for k in OBS_KEYS}
    return captions(one(prev), [action], one(obs), cfg)[0]


def action_names(actions: Sequence) -> list[str]:
    """Readable names of an NLE action tuple (e.g. CompassDirection.N -> 'move north')."""
    compass = {"N": "north", "E": "east", "S": "south", "W": "west"}
    compass |= {"NE": "northeast", "SE": "southeast", "SW": "southwest", "NW": "northwest"}
    out = []
    for a in actions:
        name = getattr(a, "name", str(a))
        out.append(f"move {compass[name]}" if name in compass else name.lower().replace("_", " "))
    return out
