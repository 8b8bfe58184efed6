"""Env names -> batched envs. `gymnax/<name>` for gymnax tasks, `atari/<Game>` for every ROM
ale-py ships (needs the `atari` extra); other families register here.

`nethack/<task>` and `minihack/<task>` are host-stepped (envs/nethack.py). `atari/*`,
`nethack/*` and `minihack/*` take `env.options`; other families take none."""

from __future__ import annotations

import difflib
from collections import Counter

from envs.barfi_grid import AUX_KINDS as BARFI_AUX
from envs.barfi_grid import BarfiGrid, BarfiVecEnv
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
        + [f"barfi/grid-{k}" for k in BARFI_AUX]
        + [f"four_rooms/{t}" for t in FOUR_ROOMS_TASKS]
        + list(nethack_tasks())
        + _atari_names()
    )


def _atari_names() -> list[str]:
    from envs.atari import ale_games, atari_available

    return [f"atari/{g}" for g in ale_games()] if atari_available() else []


def env_options(name: str) -> dict:
    """The default `env.options` of an env (Atari: its protocol flags), as plain data; else {}."""
    if name.startswith("atari/"):
        from envs.atari import AtariConfig
        from rl_aux.configs import to_dict

        return to_dict(AtariConfig())
    if name == "fsgrid/Open8x8":
        return {"obs": "onehot"}
    return {}


def env_reward_sources(name: str) -> tuple[str, ...]:
    """The auxiliary reward sources a JAX env publishes as `extras["r_aux/<source>"]`."""
    family, _, task = name.partition("/")
    if family == "barfi" and task.removeprefix("grid-") in BARFI_AUX:
        return (task.removeprefix("grid-"),)
    return ()


def check_env_name(name: str) -> None:
    """Raise ValueError (close matches, or what to install) unless `name` is registered."""
    if name in registered_envs():
        return
    family, _, task = name.partition("/")
    if family == "atari":
        from envs.atari import check_game

        check_game(task)  # raises ImportError with the install hint, or close matches
    raise ValueError(unknown_env_message(name))


def unknown_env_message(name: str) -> str:
    """`env.name=<name>` is unknown: close matches, the families with their counts, and the
    command that lists every env (the full list runs to hundreds of names)."""
    envs = registered_envs()
    close = difflib.get_close_matches(name, envs, n=5, cutoff=0.5)
    lower = {n.lower(): n for n in envs}
    if name.lower() in lower and lower[name.lower()] not in close:
        close.insert(0, lower[name.lower()])  # only the case differs
    hint = f" Close matches: {', '.join(close)}." if close else ""
    families = Counter(n.partition("/")[0] for n in envs)
    fams = ", ".join(f"{f}/* ({k})" for f, k in families.items())
    return (
        f"env.name={name!r} is not a registered environment.{hint} Accepted ({len(envs)}): "
        f"{fams}; list them all: rl-aux describe env (one family: rl-aux describe env=gymnax)"
    )


def check_env_options(name: str, options: dict | None) -> None:
    """Validate `env.options` for env `name` (ConfigError naming the field)."""
    family = name.partition("/")[0]
    if family in ("nethack", "minihack"):
        parse_options(name, options)
    elif family == "atari":
        from envs.atari import atari_config

        if atari_config(dict(options or {})).backend == "envpool":
            from envs.atari_envpool import check_envpool_game

            try:  # envpool installed and has this game
                check_envpool_game(name.partition("/")[2])
            except (ValueError, ImportError) as e:
                raise ConfigError(str(e)) from None
    elif family == "fsgrid" and options:
        from envs.fs_grid import OBS_KINDS

        extra = set(options) - {"obs", "shuffle"}
        if extra:
            raise ConfigError(
                f"env.options: unknown key(s) {sorted(extra)} for {name}; accepted: obs, shuffle"
            )
        obs = options.get("obs", "onehot")
        if obs not in OBS_KINDS:
            accepted = ", ".join(OBS_KINDS)
            raise ConfigError(f"env.options.obs={obs!r} is out of range; accepted: {accepted}")
        shuffle = options.get("shuffle")
        if shuffle is not None and (not isinstance(shuffle, int) or obs != "grid"):
            raise ConfigError(
                f"env.options.shuffle={shuffle!r}: accepted: null, or an int permutation seed "
                "together with env.options.obs=grid"
            )
    elif options:
        raise ConfigError(
            f"env.options={dict(options)!r}: env {name!r} takes no options "
            "(only atari/*, nethack/*, minihack/* and fsgrid/* envs do)"
        )


def make_env(name: str, num_envs: int, options: dict | None = None, seed: int = 0) -> VecEnv:
    """Build the batched env `name` (e.g. 'gymnax/CartPole-v1') with `num_envs` copies.

    `options` go to the family's config (Atari: envs.atari.AtariConfig; NLE: NetHackOptions);
    `seed` seeds host-stepped games (JAX envs take their keys from the learner)."""
    family, _, task = name.partition("/")
    if family in ("nethack", "minihack") and name in nethack_tasks():
        return NLEVecEnv(name, num_envs, options, seed)
    if family == "atari":
        from envs.atari import AtariVecEnv, atari_config

        cfg = atari_config(dict(options or {}))
        if cfg.backend == "envpool":
            from envs.atari_envpool import EnvpoolAtariVecEnv

            return EnvpoolAtariVecEnv(task, num_envs, cfg, seed)
        return AtariVecEnv(task, num_envs, cfg)
    check_env_options(name, options)
    if family == "gymnax" and task in GYMNAX_DISCRETE:
        return JaxVecEnv(GymnaxEnv(task), num_envs)
    if family == "memory" and task in MEMORY_NAMES:
        return JaxVecEnv(make_memory_env(task), num_envs)
    if name == "fsgrid/Open8x8":
        return JaxVecEnv(FSGrid(**dict(options or {})), num_envs)
    if name == "barfi/Grid7x7":
        return JaxVecEnv(BarfiGrid(), num_envs)
    if family == "barfi" and task.removeprefix("grid-") in BARFI_AUX:
        return BarfiVecEnv(task.removeprefix("grid-"), num_envs)
    if family == "four_rooms" and task in FOUR_ROOMS_TASKS:
        return JaxVecEnv(make_four_rooms(task), num_envs)
    raise ValueError(unknown_env_message(name))
