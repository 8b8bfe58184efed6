"""Env names -> batched envs: the built-in env families, and the lookups over every family.

`env.name` is `<family>/<task>`; a family is an `EnvFamily` (envs/family.py) registered by
name, here for the built-in ones (`gymnax/<name>`, `memory/*`, `fsgrid/*`, `barfi/*`,
`four_rooms/*`, host-stepped `nethack/*` and `minihack/*`, `atari/<Game>` for every ROM ale-py
ships) or in a plugin file. What a family takes as `env.options` it says itself."""

from __future__ import annotations

import difflib
from collections import Counter

from envs.barfi_grid import AUX_KINDS as BARFI_AUX
from envs.barfi_grid import BarfiGrid, BarfiVecEnv
from envs.core import JaxVecEnv, VecEnv
from envs.family import ENV_FAMILIES, EnvFamily, family_of, register_env_family
from envs.four_rooms import FOUR_ROOMS_TASKS, make_four_rooms
from envs.fs_grid import FSGrid
from envs.jax_envs import GYMNAX_DISCRETE, GymnaxEnv
from envs.memory import NAMES as MEMORY_NAMES
from envs.memory import make_memory_env
from envs.nethack import NetHackOptions, NLEVecEnv, nethack_tasks, parse_options
from rl_aux.typed_config import ConfigError, to_dict


@register_env_family("gymnax")
class Gymnax(EnvFamily):
    note = "classic control, MinAtar, bsuite (gymnax)"

    def tasks(self) -> list[str]:
        return list(GYMNAX_DISCRETE)

    def make(self, task, num_envs, options, seed):
        self.check_options(task, options)
        return JaxVecEnv(GymnaxEnv(task), num_envs)


@register_env_family("memory")
class Memory(EnvFamily):
    note = "memory tasks (T-maze, repeat-previous, ...)"

    def tasks(self) -> list[str]:
        return list(MEMORY_NAMES)

    def make(self, task, num_envs, options, seed):
        self.check_options(task, options)
        return JaxVecEnv(make_memory_env(task), num_envs)


@register_env_family("fsgrid")
class FSGridFamily(EnvFamily):
    note = "Fang & Stachenfeld gridworld"
    takes_options = True

    def tasks(self) -> list[str]:
        return ["Open8x8"]

    def make(self, task, num_envs, options, seed):
        self.check_options(task, options)
        return JaxVecEnv(FSGrid(**dict(options or {})), num_envs)

    def default_options(self, task: str) -> dict:
        return {"obs": "onehot"}

    def check_options(self, task: str, options: dict | None) -> None:
        from envs.fs_grid import OBS_KINDS

        if not options:
            return
        name = f"{self.name}/{task}"
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


@register_env_family("barfi")
class Barfi(EnvFamily):
    note = "BARFI gridworld (with auxiliary rewards)"

    def tasks(self) -> list[str]:
        return ["Grid7x7", *(f"grid-{k}" for k in BARFI_AUX)]

    def make(self, task, num_envs, options, seed):
        self.check_options(task, options)
        if task == "Grid7x7":
            return JaxVecEnv(BarfiGrid(), num_envs)
        return BarfiVecEnv(task.removeprefix("grid-"), num_envs)

    def reward_sources(self, task: str) -> tuple[str, ...]:
        aux = task.removeprefix("grid-")
        return (aux,) if task.startswith("grid-") and aux in BARFI_AUX else ()


@register_env_family("four_rooms")
class FourRooms(EnvFamily):
    note = "four-rooms goals (PVN)"

    def tasks(self) -> list[str]:
        return list(FOUR_ROOMS_TASKS)

    def make(self, task, num_envs, options, seed):
        self.check_options(task, options)
        return JaxVecEnv(make_four_rooms(task), num_envs)


class NLEFamily(EnvFamily):
    """NetHack Learning Environment tasks (envs/nethack.py), stepped in worker processes."""

    host_stepped = True
    text_observations = True
    takes_options = True

    def tasks(self) -> list[str]:
        prefix = self.name + "/"
        return [n.removeprefix(prefix) for n in nethack_tasks() if n.startswith(prefix)]

    def make(self, task, num_envs, options, seed):
        return NLEVecEnv(f"{self.name}/{task}", num_envs, options, seed)

    def default_options(self, task: str) -> dict:
        return to_dict(NetHackOptions())

    def options_class(self) -> type:
        return NetHackOptions

    def check_options(self, task: str, options: dict | None) -> None:
        parse_options(f"{self.name}/{task}", options)


@register_env_family("nethack")
class NetHack(NLEFamily):
    note = "NLE, host-stepped (`nethack` extra)"


@register_env_family("minihack")
class MiniHack(NLEFamily):
    note = "MiniHack, host-stepped (`nethack` extra)"


@register_env_family("atari")
class Atari(EnvFamily):
    note = "ALE ROMs (`atari` extra: ale-py)"
    takes_options = True

    def tasks(self) -> list[str]:
        from envs.atari import ale_games, atari_available

        return list(ale_games()) if atari_available() else []

    def make(self, task, num_envs, options, seed):
        from envs.atari import AtariVecEnv, atari_config

        cfg = atari_config(dict(options or {}))
        if cfg.backend == "envpool":
            from envs.atari_envpool import EnvpoolAtariVecEnv

            return EnvpoolAtariVecEnv(task, num_envs, cfg, seed)
        return AtariVecEnv(task, num_envs, cfg)

    def default_options(self, task: str) -> dict:
        from envs.atari import AtariConfig

        return to_dict(AtariConfig())

    def options_class(self) -> type:
        from envs.atari import AtariConfig

        return AtariConfig

    def check_options(self, task: str, options: dict | None) -> None:
        from envs.atari import atari_config

        if atari_config(dict(options or {})).backend == "envpool":
            from envs.atari_envpool import check_envpool_game

            try:  # envpool installed and has this game
                check_envpool_game(task)
            except (ValueError, ImportError) as e:
                raise ConfigError(str(e)) from None

    def check_task(self, task: str) -> None:
        from envs.atari import check_game

        check_game(task)  # raises ImportError with the install hint, or close matches


def registered_envs() -> list[str]:
    """Every env name, family by family in registration order."""
    return [f"{name}/{t}" for name, fam in ENV_FAMILIES.items() for t in fam.tasks()]


def env_family(name: str) -> EnvFamily:
    """The family of env `name` (`<family>/<task>`); ValueError naming the families."""
    fam = family_of(name)
    if fam is None:
        raise ValueError(unknown_env_message(name))
    return fam


def env_options(name: str) -> dict:
    """The default `env.options` of an env (Atari: its protocol flags), as plain data; else {}."""
    fam = family_of(name)
    return fam.default_options(name.partition("/")[2]) if fam else {}


def env_reward_sources(name: str) -> tuple[str, ...]:
    """The auxiliary reward sources a JAX env publishes as `extras["r_aux/<source>"]`."""
    fam = family_of(name)
    return fam.reward_sources(name.partition("/")[2]) if fam else ()


def check_env_name(name: str) -> None:
    """Raise ValueError (close matches, or what to install) unless `name` is registered."""
    fam = family_of(name)
    task = name.partition("/")[2]
    if fam is not None and task in fam.tasks():
        return
    if fam is not None:
        fam.check_task(task)
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
    env_family(name).check_options(name.partition("/")[2], options)


def make_env(name: str, num_envs: int, options: dict | None = None, seed: int = 0) -> VecEnv:
    """Build the batched env `name` (e.g. 'gymnax/CartPole-v1') with `num_envs` copies.

    `options` go to the family (Atari: envs.atari.AtariConfig; NLE: NetHackOptions); `seed`
    seeds host-stepped games (JAX envs take their keys from the learner)."""
    check_env_name(name)  # ValueError (close matches) or ImportError (what to install)
    return env_family(name).make(name.partition("/")[2], num_envs, options, seed)


__all__ = [
    "ENV_FAMILIES",
    "EnvFamily",
    "check_env_name",
    "check_env_options",
    "env_family",
    "env_options",
    "env_reward_sources",
    "make_env",
    "register_env_family",
    "registered_envs",
]
