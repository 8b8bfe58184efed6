"""Typed configs: frozen dataclasses whose fields carry their own constraints.

`spec(default, ge=..., gt=..., le=..., choices=..., grid=False)` declares a constrained field
(`grid=False`: a float a learner bakes in at construction, or one applied outside the trace
such as a host-side reward option, so `grid.*` cannot vmap it);
`from_dict(cls, data, path)` builds `cls` from a plain mapping (hydra's composed config) and
raises `ConfigError` naming the field, the bad value and what is accepted. Nothing compiles
before this check passes.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any


class ConfigError(ValueError):
    """A bad config value or key; the CLI prints it and exits with code 2."""


MAX_LISTED = 20  # names an "unknown name" message lists before pointing to `rl-aux describe`


def unknown_name_message(
    field: str, value: Any, accepted: list[str], what: str, list_cmd: str = ""
) -> str:
    """`field=value is not a known <what>`, with close matches and at most MAX_LISTED accepted
    names (their count, and the command that lists them all when some are left out)."""
    names = list(accepted)
    close = difflib.get_close_matches(str(value), names, n=5, cutoff=0.5)
    lower = {n.lower(): n for n in names}
    if str(value).lower() in lower and lower[str(value).lower()] not in close:
        close.insert(0, lower[str(value).lower()])  # only the case differs
    hint = f" Close matches: {', '.join(close)}." if close else ""
    shown = ", ".join(names[:MAX_LISTED])
    if len(names) > MAX_LISTED:
        more = f", ... ({len(names) - MAX_LISTED} more"
        shown += more + (f"; list them all: {list_cmd})" if list_cmd else ")")
    elif list_cmd:
        shown += f" (details: {list_cmd})"
    return f"{field}={value!r} is not a known {what}.{hint} Accepted ({len(names)}): {shown}"


def spec(
    default: Any,
    *,
    ge=None,
    gt=None,
    le=None,
    lt=None,
    choices=None,
    doc: str = "",
    grid: bool = True,
) -> Any:
    """A dataclass field with range/choice constraints checked by `from_dict`; `grid=False`
    keeps a float field off `grid.*` (see `grid_floats`). Returns `Any` so a type checker
    takes `x: float = spec(0.1)` as a field default of the declared type."""
    meta: dict[str, Any] = dict(ge=ge, gt=gt, le=le, lt=lt, choices=choices, doc=doc or None)
    meta = {k: v for k, v in meta.items() if v is not None}  # 0.0 is a real bound
    if not grid:
        meta["grid"] = False
    if isinstance(default, (list, dict, set)) or dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=lambda: default, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def accepted_text(meta: dict) -> str:
    """What a field's constraints accept, in words ('one of a, b', 'a value >= 0')."""
    if "choices" in meta:
        return "one of " + ", ".join(map(str, meta["choices"]))
    parts = []
    for k, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if k in meta:
            parts.append(f"{sym} {meta[k]}")
    return "a value " + " and ".join(parts) if parts else "any value of its type"


BALANCER_GRID = "balancer."  # grid key prefix of the balancer's options: grid.balancer.ema
REWARD_GRID = "reward."  # grid key prefix of the reward module's options: grid.reward.meta_lr


def grid_floats(cls: type) -> dict[str, dict]:
    """{name: constraints} of `cls`'s plain float fields a grid may vmap: every `float` field
    (not Optional, not nested) unless its spec says `grid=False`."""
    hints = typing.get_type_hints(cls)
    return {
        f.name: dict(f.metadata)
        for f in dataclasses.fields(cls)
        if hints[f.name] is float and f.metadata.get("grid", True)
    }


def check_value(path: str, value: Any, meta: dict) -> None:
    """Raise ConfigError if `value` breaks the field's constraints."""
    bad = False
    if "choices" in meta:
        bad = value not in meta["choices"]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        bad = (
            ("gt" in meta and not value > meta["gt"])
            or ("ge" in meta and not value >= meta["ge"])
            or ("lt" in meta and not value < meta["lt"])
            or ("le" in meta and not value <= meta["le"])
        )
    if bad:
        close = []
        if "choices" in meta and isinstance(value, str):
            close = difflib.get_close_matches(value, [str(c) for c in meta["choices"]], n=3)
        hint = f" did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"{path}={value!r} is out of range;{hint} accepted: {accepted_text(meta)}"
        )


def _coerce_union(path: str, value: Any, tp: Any) -> Any:
    """The first member of a Union (or X | Y) that accepts `value`; None if Optional."""
    args = typing.get_args(tp)
    if value is None and type(None) in args:
        return None
    errs = []
    for a in args:
        if a is type(None):
            continue
        try:
            return _coerce(path, value, a)
        except ConfigError as e:
            errs.append(str(e))
    raise ConfigError(errs[0] if errs else f"{path}={value!r} has the wrong type")


def _is_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and int(value) == value


# type -> (accepts the value?, the value as that type, what the message says it must be)
_SCALARS: dict[Any, tuple[Any, Any, str]] = {
    tuple: (lambda v: isinstance(v, (list, tuple)), tuple, "must be a list"),
    dict: (lambda v: isinstance(v, dict), dict, "must be a mapping"),
    bool: (lambda v: isinstance(v, bool), lambda v: v, "must be true or false"),
    int: (_is_int, int, "must be an integer"),
    float: (
        lambda v: not isinstance(v, bool) and isinstance(v, (int, float)),
        float,
        "must be a number",
    ),  # fmt: skip
    str: (lambda v: isinstance(v, str), lambda v: v, "must be a string"),
}


def _coerce(path: str, value: Any, tp: Any) -> Any:
    """`value` as type `tp` (dataclasses built field by field), or ConfigError naming `path`."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(path, value, tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            name = getattr(tp, "__name__", str(tp))
            raise ConfigError(f"{path} must be a mapping of {name} fields, got {value!r}")
        return from_dict(typing.cast(type, tp), value, path)
    scalar = _SCALARS.get(origin if origin in (tuple, dict) else tp)
    if scalar is None:
        return value
    accepts, convert, must = scalar
    if not accepts(value):
        raise ConfigError(f"{path}={value!r} {must}")
    return convert(value)


def from_dict(cls: type, data: dict, path: str = "") -> Any:
    """Build dataclass `cls` from `data`, validating keys, types and constraints."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        p = f"{path}.{key}" if path else key
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"{p} is not a known key.{hint} Accepted keys: {', '.join(fields)}")
        f = fields[key]
        v = _coerce(p, value, hints[key])
        check_value(p, v, dict(f.metadata))
        kwargs[key] = v
    return cls(**kwargs)


def to_dict(obj: Any) -> Any:
    """Dataclass (nested) -> plain dict with lists for tuples (YAML-friendly)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(x) for x in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
