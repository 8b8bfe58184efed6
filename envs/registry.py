"""Env names -> batched envs. `gymnax/<name>` for gymnax tasks; other families register here.

`nethack/<task>` and `minihack/<task>` are host-stepped (envs/nethack.py) and take
`env.options` (NetHackOptions); other families take none."""

from __future__ import annotations

import difflib

from envs.barfi_grid import BarfiGrid
from envs.core import JaxVecEnv, VecEnv
from envs.four_rooms import FOUR_ROOMS_TASKS, make_four_rooms
from envs.fs_grid import FSGrid
from envs.jax_envs import GYMNAX_DISCRETE, GymnaxEnv
from envs.memory import NAMES as MEMORY_NAMES
from envs.memory import make_memory_env
from envs.nethack import NLEVecEnv, nethack_tasks, parse_options
from rl_aux.configs import ConfigError


def registered_envs() -> list[str]:
    return (
        [f"gymnax/{n}" for n in GYMNAX_DISCRETE]
        + [f"memory/{n}" for n in MEMORY_NAMES]
        + ["fsgrid/Open8x8", "barfi/Grid7x7"]
        + [f"four_rooms/{t}" for t in FOUR_ROOMS_TASKS]
        + list(nethack_tasks())
    )


def check_env_options(name: str, options: dict | None) -> None:
    """Validate `env.options` for env `name` (ConfigError naming the field)."""
    if name.partition("/")[0] in ("nethack", "minihack"):
        parse_options(name, options)
    elif options:
        raise ConfigError(
            f"env.options={dict(options)!r}: env {name!r} takes no options "
            "(only nethack/* and minihack/* envs do)"
        )


def make_env(name: str, num_envs: int, options: dict | None = None, seed: int = 0) -> VecEnv:
    """Build the batched env `name` (e.g. 'gymnax/CartPole-v1') with `num_envs` copies."""
    family, _, task = name.partition("/")
    if family in ("nethack", "minihack") and name in nethack_tasks():
        return NLEVecEnv(name, num_envs, options, seed)
    check_env_options(name, options)
    if family == "gymnax" and task in GYMNAX_DISCRETE:
        return JaxVecEnv(GymnaxEnv(task), num_envs)
    if family == "memory" and task in MEMORY_NAMES:
        return JaxVecEnv(make_memory_env(task), num_envs)
    if name == "fsgrid/Open8x8":
        return JaxVecEnv(FSGrid(), num_envs)
    if name == "barfi/Grid7x7":
        return JaxVecEnv(BarfiGrid(), num_envs)
    if family == "four_rooms" and task in FOUR_ROOMS_TASKS:
        return JaxVecEnv(make_four_rooms(task), num_envs)
    close = difflib.get_close_matches(name, registered_envs(), n=5, cutoff=0.5)
    hint = f" Close matches: {', '.join(close)}." if close else ""
    raise ValueError(
        f"env.name={name!r} is not a registered environment.{hint} "
        f"Accepted: {', '.join(registered_envs())}."
    )
