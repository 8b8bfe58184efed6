"""Readable names for grid points: `lr=1e-3, next_latent.weight=0.1`, wrapped, never cut.

A grid point is named by the hyperparameters that differ between the points of its run (the
ones they share say nothing); numbers take their shortest exact-looking form (1e-3, 0.1, 64).
Used by `rl-aux plot` (legends, table rows) and the summary `rl-aux train` prints.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

LABEL_WIDTH = 36  # characters per line of a wrapped label
HP_PREFIX = "hp/"


def format_number(value: float | int | str) -> str:
    """The shorter of the plain and the exponent form of a value: 1e-3, 2.5e-4, 0.1, 64, 1e5
    (both round-trip: two different grid values never share a label)."""
    if isinstance(value, str):
        return value
    v = float(value)
    plain = str(int(v)) if v.is_integer() and abs(v) < 1e16 else repr(v)
    if "e" in plain:  # repr's own exponent form: 1e-05 -> 1e-5
        mantissa, exp = plain.split("e")
        return f"{mantissa}e{int(exp)}"
    digits = len(plain.replace("-", "").replace(".", "").strip("0"))  # significant digits
    mantissa, exp = f"{v:.{max(digits - 1, 0)}e}".split("e")
    compact = f"{mantissa}e{int(exp)}"
    return compact if len(compact) < len(plain) else plain


def varying_keys(points: Sequence[Mapping[str, object]]) -> list[str]:
    """Keys whose value differs between the points (all keys when none differ), in the order
    of the first point, `lr` first."""
    keys = list(dict.fromkeys(k for p in points for k in p))
    keys.sort(key=lambda k: k.removeprefix(HP_PREFIX) != "lr")  # stable: lr first
    differ = [k for k in keys if len({repr(p.get(k)) for p in points}) > 1]
    return differ or keys


def point_label(point: Mapping[str, object], keys: Sequence[str]) -> str:
    """'lr=1e-3, next_latent.weight=0.1' from the `keys` of one point ('hp/' dropped)."""
    parts = [f"{k.removeprefix(HP_PREFIX)}={format_number(point[k])}" for k in keys if k in point]
    return ", ".join(parts)


def grid_labels(points: Sequence[Mapping[str, object]]) -> list[str]:
    """One label per grid point, naming the hyperparameters that tell the points apart."""
    keys = varying_keys(points)
    return [point_label(p, keys) for p in points]


def wrap_label(text: str, width: int = LABEL_WIDTH) -> str:
    """Break a label into lines of about `width` characters at its ', ' and ' ' boundaries
    (a long name stays whole on its own line rather than being cut)."""
    return "\n".join(
        textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [text]
    )


def flat_hparams(hp: Mapping) -> dict[str, float]:
    """{'lr': .., 'ent_coef': .., 'next_latent.weight': ..} from a trainer hparams dict (lr,
    any float field a grid sweeps, aux_weights)."""
    floats = {k: v for k, v in hp.items() if k != "aux_weights"}
    return {**floats, **{f"{k}.weight": w for k, w in hp["aux_weights"].items()}}
