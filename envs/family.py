"""The env-family plugin contract and its registry: `env.name=<family>/<task>`.

A family is one class registered by name; it lists its tasks and builds a batched env:

    @register_env_family("chain")
    class Chain(EnvFamily):
        note = "n-state chain walk"           # one line for --help and describe
        def tasks(self) -> list[str]: ...      # e.g. ["Chain5", "Chain10"]
        def make(self, task, num_envs, options, seed) -> VecEnv: ...

Facts the trainer and the config checks read (no check looks at env-name prefixes):
`host_stepped` (stepped by the host loop, agents/host_loop.py, not inside jit),
`text_observations` (observations carry NLE text: text reward modules accept it), and
`takes_options` with `default_options` / `check_options` (what `env.options` may hold).
"""

from __future__ import annotations

from typing import Any, ClassVar

from rl_aux.registry import Registry, origin_of
from rl_aux.typed_config import ConfigError


class EnvFamily:
    """Base class of env families; subclasses set `tasks` and `make`, and the facts below."""

    name: ClassVar[str] = ""
    note: ClassVar[str] = ""  # what the family holds (and what it needs installed)
    host_stepped: ClassVar[bool] = False  # the host loop steps it (no jit over `step`)
    text_observations: ClassVar[bool] = False  # NLE-style text arrays in the observations
    takes_options: ClassVar[bool] = False  # env.options may be non-empty

    def tasks(self) -> list[str]:
        """The family's task names (`<family>/<task>` is the env name); [] if not installed."""
        raise NotImplementedError

    def make(self, task: str, num_envs: int, options: dict | None, seed: int) -> Any:
        """The batched env (envs.core.VecEnv) of `task`; `seed` seeds host-stepped games."""
        raise NotImplementedError

    def default_options(self, task: str) -> dict:
        """The `env.options` a generated `env=<family>/<task>` config starts from."""
        return {}

    def check_options(self, task: str, options: dict | None) -> None:
        """Raise ConfigError naming the bad `env.options` key or value (before any compile)."""
        if options and not self.takes_options:
            takes = [n for n, f in ENV_FAMILIES.items() if f.takes_options]
            raise ConfigError(
                f"env.options={dict(options)!r}: env {self.name}/{task!r} takes no options "
                f"(only {', '.join(f'{n}/*' for n in takes)} envs do)"
            )

    def options_class(self) -> type | None:
        """The dataclass whose fields document `env.options` (rl-aux describe), if any."""
        return None

    def check_task(self, task: str) -> None:
        """Raise a more specific error than 'not registered' for an unknown task (e.g. what
        to install); the default has nothing to add."""

    def reward_sources(self, task: str) -> tuple[str, ...]:
        """Auxiliary rewards the env publishes as extras['r_aux/<source>'] (reward=blend)."""
        return ()


ENV_FAMILIES: Registry[EnvFamily] = Registry(
    "env family",
    "env family",
    "rl-aux describe env",
    "An env family in your own file registers when imported: plugins=[path/to/my_env.py]",
)


def register_env_family(name: str):
    """Class decorator: register an EnvFamily subclass (one instance) as `<name>/<task>`."""

    def deco(cls: type[EnvFamily]) -> type[EnvFamily]:
        if not issubclass(cls, EnvFamily):
            raise TypeError(f"env family {name!r}: {cls.__name__} must subclass EnvFamily")
        if "/" in name:
            raise TypeError(f"env family names have no '/', got {name!r}")
        cls.name = name
        ENV_FAMILIES.add(name, cls(), origin_of(cls))
        return cls

    return deco


def family_of(env_name: str) -> EnvFamily | None:
    """The registered family of `<family>/<task>`, or None."""
    family = env_name.partition("/")[0]
    return ENV_FAMILIES.get(family) if family in ENV_FAMILIES else None
