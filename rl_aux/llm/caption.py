"""Transition captions from NLE/MiniHack observations: the text the judge and the matcher read.

A caption names what happened between two observations: the action, the message line, the
inventory diff, salient bottom-line deltas (depth, HP, gold) and door/stairs events. It never
holds coordinates or turn counters (they would make every caption unique and defeat the cache);
digits can be canonicalised to `N` for the same reason. Atari has no text: NLE/MiniHack only.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping, Sequence
from typing import cast

import numpy as np

from rl_aux.typed_config import spec

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
    return _decode_line(bytes(np.asarray(msg, np.uint8)))


def _decode_line(raw: bytes) -> str:
    return " ".join(raw.split(b"\0", 1)[0].decode("latin-1").split())


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


@functools.lru_cache(maxsize=256)
def move_step(action: str) -> tuple[int, int] | None:
    """(dx, dy) on the map of a move action's name ('move north'), None if it is no move."""
    return MOVE_STEP.get(action.lower().removeprefix("move "))


def _target_glyph(prev: Mapping, action: str) -> int | None:
    """The glyph of the cell a move action walks into (from the previous observation)."""
    step = move_step(action)
    if step is None:
        return None
    g, bl = np.asarray(prev["glyphs"]), np.asarray(prev["blstats"])
    x, y = int(bl[BL_X]) + step[0], int(bl[BL_Y]) + step[1]
    return int(g[y, x]) if 0 <= y < g.shape[0] and 0 <= x < g.shape[1] else None


def _in(g: np.ndarray, lo_hi: tuple[int, int]) -> np.ndarray:
    return (g >= lo_hi[0]) & (g <= lo_hi[1])


def changed_cells(g0: np.ndarray, g1: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(env, before, after) of the map cells that differ in [E, H, W] glyphs (a few per env).

    A flat scan: cheaper than `np.nonzero` on the 3-d mask, and this runs every vector step.
    """
    cells = max(int(np.prod(g0.shape[1:])), 1)
    f0, f1 = np.ascontiguousarray(g0).reshape(-1), np.ascontiguousarray(g1).reshape(-1)
    idx = np.flatnonzero(f0 != f1)
    return idx // cells, f0[idx], f1[idx]


def rows_differ(a0: np.ndarray, a1: np.ndarray) -> np.ndarray:
    """[E] bool: env e's array differs between the two batches (e.g. inv_strs)."""
    n = a0.shape[0]
    return np.any(a0.reshape(n, -1) != a1.reshape(n, -1), axis=1)


def env_net_change(env: np.ndarray, c0: np.ndarray, c1: np.ndarray, lo_hi, n: int) -> np.ndarray:
    """[E] net change in the number of cells whose glyph lies in `lo_hi`, from changed cells."""
    d = _in(c1, lo_hi).astype(np.int64) - _in(c0, lo_hi)
    if not d.any():
        return np.zeros(n, np.int64)
    return np.bincount(env, weights=d, minlength=n).astype(np.int64)


_MSG_MEMO: dict[tuple[bytes, bool], str] = {}  # raw message bytes -> canonical text


def _messages(msgs: np.ndarray, digits: bool) -> list[str]:
    """Canonical text of each [E, 256] message line (memoised: most lines repeat)."""
    msgs = np.ascontiguousarray(msgs, np.uint8)
    raw = msgs.view(f"S{msgs.shape[1]}").ravel().tolist()  # trailing NULs dropped
    out = []
    for b in raw:
        text = _MSG_MEMO.get((b, digits))
        if text is None:
            if len(_MSG_MEMO) > 100_000:
                _MSG_MEMO.clear()
            text = _MSG_MEMO[(b, digits)] = _canon(_decode_line(b), digits)
        out.append(text)
    return out


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
    ended = cast(np.ndarray, ~bl1.any(axis=1))  # NLE's end-of-game observation: all stats zero
    cols = [BL_DEPTH, BL_HP, BL_GOLD]
    deltas = np.sign(bl1[:, cols].astype(np.int64) - bl0[:, cols])
    stat_rows = set(np.flatnonzero(deltas.any(axis=1)).tolist())
    deltas = deltas.tolist()
    inv0, inv1 = np.asarray(prev["inv_strs"]), np.asarray(obs["inv_strs"])
    inv_changed = rows_differ(inv0, inv1)
    g0, g1 = np.asarray(prev["glyphs"]), np.asarray(obs["glyphs"])
    env, c0, c1 = changed_cells(g0, g1)
    closed_d = env_net_change(env, c0, c1, CLOSED_DOORS, n)
    open_d = env_net_change(env, c0, c1, OPEN_DOORS, n)
    new_stairs = set(env[c1 == DOWN_STAIRS].tolist())
    msgs = _messages(np.asarray(obs["message"]), cfg.canonical_digits) if cfg.message else None
    out = []
    for e in range(n):
        parts = [f"action: {actions[e].lower()}"]
        if msgs is not None and msgs[e]:
            parts.append(f"message: {msgs[e]}")
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
        if cfg.stats and e in stat_rows:
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
