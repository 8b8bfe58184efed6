"""The learner contract (`Agent`, `OfflineAgent`) and the agent registry.

A learner is one class registered by name, with its config dataclass as `Config`:

    @register_agent("my_agent")           # agent=my_agent; its fields as agent.<field>=...
    class MyAgent:
        Config = MyAgentConfig             # frozen dataclass with num_envs, gamma, lr, network
        kind = "actor_critic"              # or "q": what the network outputs (make_network)
        SHARED_FIELDS = ("update",)        # state paths equal across vmapped seeds
        def __init__(self, cfg, env, heads, total_updates, **kw): ...
        ...                                # the rest of `Agent` below

`rl-aux train` builds it with `total_updates=1`, reads `steps_per_update`, then sets
`agent.total_updates = total_timesteps // steps_per_update` (schedules read it when traced);
vmaps `init` and `train_chunk` over seeds x grid points (rl_aux/vectorize.py) and evaluates
with `act`. An offline learner (no env stepping) only provides `run_offline` (`OfflineAgent`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Protocol, TypeVar, cast, runtime_checkable

from rl_aux.registry import Registry
from rl_aux.types import Array, EnvSpec, PRNGKey


@runtime_checkable
class Agent(Protocol):
    """What the trainer, the evaluator and the host loop call on an env-stepping learner."""

    Config: ClassVar[type]  # its frozen config dataclass (agent.<field>=...)
    kind: ClassVar[str]  # "actor_critic" | "q": the network's outputs
    SHARED_FIELDS: ClassVar[tuple[str, ...]]  # dotted state paths kept unbatched across seeds
    cfg: Any  # the Config instance; `cfg.network` is read by evaluation
    spec: EnvSpec
    recurrent: bool  # whether `act` carries a recurrent state
    total_updates: int  # set by the trainer after construction (see the module docstring)

    @property
    def steps_per_update(self) -> int:
        """Env steps (over all envs) one update consumes."""
        ...

    def default_hparams(self) -> dict:
        """The vmappable floats: {"lr": float, "aux_weights": {head: float}}."""
        ...

    def init(self, key: PRNGKey, hparams: dict) -> Any:
        """A fresh training state (a flax.struct pytree) for one seed and grid point."""
        ...

    def train_chunk(self, state: Any, num_updates: int) -> tuple[Any, dict]:
        """`num_updates` updates; metrics [num_updates] each, including the episode sums of
        rl_aux.learner.episode_metrics (episodes, episode_return_sum, episode_length_sum)."""
        ...

    def act(
        self,
        params: Any,
        obs: Array,
        carry: Any,
        first: Array,
        key: PRNGKey,
        greedy: bool = False,
        epsilon: float = 0.0,
    ) -> tuple[Array, Any, dict]:
        """(actions [N], next carry, network outputs) for a batch of observations (evaluation,
        the host loop); `carry`/`first` are None for feed-forward networks."""
        ...


@runtime_checkable
class OfflineAgent(Protocol):
    """A learner that steps no env and drives the run loop itself (rl_aux/run_loop.py, e.g.
    PVN pre-training), so its runs keep the same store, checkpoints and resume."""

    Config: ClassVar[type]

    @staticmethod
    def run_offline(cfg: Any, quiet: bool = False, resolved: dict | None = None) -> dict:
        """Train `cfg` (the whole TrainConfig; `resolved`: its stored form) into cfg.run_dir;
        the run's summary."""
        ...


AGENT_HINT = (
    "A learner in your own file registers when imported: plugins=[path/to/my_agent.py] "
    "(docs/development.md, 'Add a plugin')"
)
AGENTS: Registry[type] = Registry("agent", "agent", "rl-aux describe agent", AGENT_HINT)


C = TypeVar("C", bound=type)  # a learner class; the decorator returns it as it is


def register_agent(name: str):
    """Class decorator: make a learner available as `agent=<name>`; checks its Config and that
    it implements `Agent` or `OfflineAgent`."""

    def deco(cls: C) -> C:
        cfg = getattr(cls, "Config", None)
        if not dataclasses.is_dataclass(cfg):
            raise TypeError(f"agent {name!r}: {cls.__name__}.Config must be a frozen dataclass")
        required = ("kind", "init", "train_chunk", "act", "default_hparams", "steps_per_update")
        missing = [m for m in required if not hasattr(cls, m)]
        if missing and not hasattr(cls, "run_offline"):
            raise TypeError(
                f"agent {name!r}: {cls.__name__} lacks {missing} of the Agent protocol "
                "(rl_aux/agent.py) and is not an OfflineAgent (run_offline)"
            )
        cls.name = name
        return cast(C, AGENTS.register(name)(cls))  # the class itself (Registry.register)

    return deco


def agent_class(name: str) -> type:
    """The learner registered as `name`; UnknownName naming the registered ones otherwise."""
    return AGENTS.get(name)


def is_offline(cls: type) -> bool:
    """Whether a registered learner trains offline (owns its loop: `run_offline`)."""
    return hasattr(cls, "run_offline")
