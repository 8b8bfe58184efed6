"""One small registry for every plugin kind (agents, env families, heads, rewards, balancers).

A kind keeps one `Registry`; a plugin registers with its decorator (`@REG.register("name")`)
when its module is imported, which `plugins=[pkg.mod]` or `plugins=[path/to/file.py]` does
before the config is composed. `get` of an unknown name raises `UnknownName`, a ConfigError
(so the CLI exits 2) that is also a KeyError, naming the field, the value and the accepted names.

This module imports only rl_aux.typed_config, so env families (envs/) can register here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from rl_aux.typed_config import ConfigError, unknown_name_message

T = TypeVar("T")


class UnknownName(ConfigError, KeyError):
    """An unregistered name: a ConfigError (exit 2) that `except KeyError` also catches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """name -> plugin of one kind, in registration order.

    `field` is the config key that selects it (e.g. "agent.balancer"), `what` the kind's name
    in messages, `list_cmd` the command that lists and describes them, `hint` how a plugin
    outside the library becomes selectable (appended to unknown-name messages)."""

    def __init__(self, what: str, field: str, list_cmd: str = "", hint: str = ""):
        self.what = what
        self.field = field
        self.list_cmd = list_cmd
        self.hint = hint
        self._items: dict[str, T] = {}
        self._origins: dict[str, str] = {}

    def add(self, name: str, item: T, origin: str) -> None:
        """Register `item` as `name`; `origin` ("module.qualname") tells a re-import of the same
        definition (allowed) from a second plugin claiming a taken name (TypeError)."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"{self.what} names are non-empty strings, got {name!r}")
        old = self._origins.get(name)
        if old is not None and old != origin:
            raise TypeError(
                f"{self.what} {name!r} is registered twice: by {old} and by {origin}; "
                "give the plugin another name"
            )
        self._items[name] = item
        self._origins[name] = origin

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated class or function as `name` (returned unchanged)."""

        def deco(obj: T) -> T:
            self.add(name, obj, origin_of(obj))
            return obj

        return deco

    def get(self, name: str) -> T:
        """The plugin registered as `name`; UnknownName (close matches, accepted) otherwise."""
        if name not in self._items:
            msg = unknown_name_message(self.field, name, self.names(), self.what, self.list_cmd)
            raise UnknownName(f"{msg}. {self.hint}" if self.hint else msg)
        return self._items[name]

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._items)

    def items(self) -> list[tuple[str, T]]:
        return list(self._items.items())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, name: str) -> T:
        return self.get(name)


def origin_of(obj: object) -> str:
    """ "module.qualname" of a class or function (what `Registry.add` compares)."""
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
