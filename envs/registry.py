"""Env names -> batched envs. `gymnax/<name>` for gymnax tasks; other families register here."""

from __future__ import annotations

import difflib

from envs.barfi_grid import BarfiGrid
from envs.core import JaxVecEnv, VecEnv
from envs.four_rooms import FOUR_ROOMS_TASKS, make_four_rooms
from envs.fs_grid import FSGrid
from envs.jax_envs import GYMNAX_DISCRETE, GymnaxEnv
from envs.memory import NAMES as MEMORY_NAMES
from envs.memory import make_memory_env


def registered_envs() -> list[str]:
    return (
        [f"gymnax/{n}" for n in GYMNAX_DISCRETE]
        + [f"memory/{n}" for n in MEMORY_NAMES]
        + ["fsgrid/Open8x8", "barfi/Grid7x7"]
        + [f"four_rooms/{t}" for t in FOUR_ROOMS_TASKS]
    )


def make_env(name: str, num_envs: int) -> VecEnv:
    """Build the batched env `name` (e.g. 'gymnax/CartPole-v1') with `num_envs` copies."""
    family, _, task = name.partition("/")
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
