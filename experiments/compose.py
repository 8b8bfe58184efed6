"""`rl-aux` configs: hydra config groups over typed dataclasses, validated before any compile.

Groups: `agent/`, `head/` and `reward/` are generated from the learners', the registered heads'
and the registered reward modules' dataclasses (a head registered anywhere is selectable as
`head=<name>`, or several as `head=[a,b]`; a reward module as `reward=<name>`); `env/` and
`experiment/` are yaml files under experiments/configs/. `llm.*` holds LLM endpoint settings.
`load_config(overrides)` returns a validated `TrainConfig` or raises `ConfigError`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tempfile
from typing import Any

from rl_aux.cpu_threads import resolve_cpu_threads
from rl_aux.heads.base import PLUGIN_HINT, HeadConfig, head_class, registered_heads
from rl_aux.llm.settings import LLMConfig
from rl_aux.rewards import registered_rewards, reward_class
from rl_aux.typed_config import (
    BALANCER_GRID,
    REWARD_GRID,
    ConfigError,
    check_value,
    from_dict,
    grid_floats,
    spec,
    to_dict,
    unknown_name_message,
)
from rl_aux.vectorize import RUN_BATCHINGS

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    name: str = "gymnax/CartPole-v1"
    options: dict = dataclasses.field(default_factory=dict)  # family flags (atari, nethack)


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Greedy evaluation episodes on fresh envs, with an explicit epsilon."""

    every: int = spec(0, ge=0)  # env steps between evaluations; 0 = total_timesteps / 10
    episodes: int = spec(16, ge=1)
    epsilon: float = spec(0.0, ge=0.0, le=1.0)
    max_steps: int = spec(0, ge=0)  # 0 = the env's own episode limit


@dataclasses.dataclass(frozen=True)
class WandbConfig:
    mode: str = spec("disabled", choices=("disabled", "offline", "online"))
    project: str = "rl-aux"
    entity: str | None = None


@dataclasses.dataclass(frozen=True)
class LoggerConfig:
    log_interval: int = spec(0, ge=0)  # env steps between metric rows; 0 = total / 100
    progress: bool = True
    save_transitions: bool = False  # DQN: write seed 0's transitions to <run_dir>/transitions
    wandb: WandbConfig = WandbConfig()


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    every: int = spec(0, ge=0)  # env steps between checkpoints; 0 = total_timesteps / 10
    keep: int = spec(2, ge=1)


@dataclasses.dataclass(frozen=True)
class DistributedConfig:
    """Multi-host start (jax.distributed.initialize); unset fields come from SLURM/JAX_* env."""

    enabled: bool = False  # also on when any field below is set
    coordinator_address: str | None = None
    num_processes: int | None = None
    process_id: int | None = None


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    agent: Any = None  # the registered agent's Config (rl_aux/agent.py), chosen by agent_name
    agent_name: str = "ppo"
    env: EnvConfig = EnvConfig()
    heads: dict = dataclasses.field(default_factory=dict)  # name -> HeadConfig subclass
    reward: Any = None  # the reward module's Config, chosen by reward_name
    reward_name: str = "env"
    llm: LLMConfig = LLMConfig()
    experiment: str = "default"
    label: str = ""
    num_seeds: int = spec(1, ge=1)
    seed: int = spec(0, ge=0)
    total_timesteps: int = spec(500_000, ge=1)
    run_dir: str = ""
    resume: bool | str = spec(False, choices=(False, True, "auto"))  # auto: if run_dir has a run
    grid: dict = dataclasses.field(default_factory=dict)  # hparam -> list of floats (vmapped)
    eval: EvalConfig = EvalConfig()
    logger: LoggerConfig = LoggerConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    distributed: DistributedConfig = DistributedConfig()
    variants: dict = dataclasses.field(default_factory=dict)  # label -> list of overrides
    plot: bool = False  # after training (all variants), write figures to <experiment dir>/plots
    # modules or .py files imported before composing: they register agents, env families,
    # heads, reward modules or balancers (docs/development.md, "Add a plugin")
    plugins: tuple = ()
    cpu_threads: Any = "auto"  # XLA:CPU pool: auto (1 for MLP torsos) or N (rl_aux/cpu_threads.py)
    # seeds x grid points: vmap (one batched program) or map (one run after another; see
    # rl_aux/vectorize.py over_runs, docs/performance.md: keep vmap unless a bench says otherwise)
    run_batching: str = spec("vmap", choices=RUN_BATCHINGS)

    def to_yaml_dict(self) -> dict:
        d = to_dict(self)
        d["agent"] = {"name": self.agent_name, **to_dict(self.agent)}
        d.pop("agent_name")
        d["reward"] = {"name": self.reward_name, **(to_dict(self.reward) or {})}
        d.pop("reward_name")
        return d


_TOP_LEVEL = [
    f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("agent_name", "reward_name")
]
# reward modules that read text observations (NLE/MiniHack); see docs/llm-subgoal-rewards.md
TEXT_REWARDS = ("subgoal", "ellm", "keyroom_oracle")


_REGISTERED_FOR: set[tuple] = set()  # registry contents the ConfigStore already holds


def register_generated_groups() -> None:
    """Store the generated config groups (agents, heads, rewards, yaml-less envs) in hydra."""
    from hydra.core.config_store import ConfigStore

    from agents.registry import AGENTS
    from envs.registry import ENV_FAMILIES, env_options, registered_envs

    key = (
        tuple(AGENTS.names()),
        tuple(ENV_FAMILIES.names()),
        tuple(registered_heads()),
        tuple(registered_rewards()),
    )
    if key in _REGISTERED_FOR:  # the nodes are the dataclass defaults: storing once suffices
        return
    _REGISTERED_FOR.add(key)
    cs = ConfigStore.instance()
    for name, cls in AGENTS.items():
        cs.store(group="agent", name=name, node={"name": name, **to_dict(cls.Config())})
    for name in registered_heads():
        node = to_dict(head_class(name).Config())
        cs.store(group="head", name=name, node=node, package=f"heads.{name}")
    for name in registered_rewards():
        cs.store(
            group="reward", name=name, node={"name": name, **to_dict(reward_class(name).Config())}
        )
    for name in registered_envs():  # envs without a yaml file (e.g. atari/<Game>)
        if os.path.exists(os.path.join(CONFIG_DIR, "env", f"{name}.yaml")):
            continue
        family, _, task = name.rpartition("/")
        node = {"name": name, "options": env_options(name)}
        cs.store(group=f"env/{family}", name=task, node=node, package="env")


def compose(overrides: list[str]) -> dict:
    """Hydra-compose experiments/configs/config.yaml with `overrides`; plain dict out."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import (
        ConfigCompositionException,
        MissingConfigException,
        OverrideParseException,
    )
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    check_override_syntax(overrides)
    import_plugins(overrides)
    register_generated_groups()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
            cfg = hydra_compose("config", overrides=[hydra_override(o) for o in overrides])
            return OmegaConf.to_container(cfg, resolve=True)
    except MissingConfigException as e:
        raise ConfigError(_missing_option_message(str(e))) from None
    except OverrideParseException as e:
        raise ConfigError(f"malformed override: {str(e).splitlines()[0]}") from None
    except ConfigCompositionException as e:
        raise ConfigError(_override_message(str(e), overrides)) from None
    except OmegaConfBaseException as e:
        raise ConfigError(str(e).splitlines()[0]) from None
    finally:
        GlobalHydra.instance().clear()


OVERRIDE_SYNTAX = (
    "accepted: key=value, lists as key=[a,b], a group option as group=name (e.g. "
    "env=gymnax/CartPole-v1), strings with spaces or brackets quoted: 'label=\"a b\"' "
    "(https://hydra.cc/docs/advanced/override_grammar/basic/)"
)


def check_override_syntax(overrides: list[str]) -> None:
    """Raise ConfigError naming the first override hydra's grammar cannot parse (before any
    plugin import or compose, so `agent.lr=[` says which argument is wrong)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    for o in overrides:
        if o.startswith("-"):
            raise ConfigError(
                f"{o!r} is not an override or a known option of `rl-aux train`; accepted "
                "options: --help, --cfg job (print the resolved config); see rl-aux train --help"
            )
        try:
            parser.parse_override(hydra_override(o))
        except HydraException as e:  # the parser raises HydraException or a subclass
            why = str(e).splitlines()[0]
            raise ConfigError(f"malformed override {o!r} ({why}); {OVERRIDE_SYNTAX}") from None


def import_plugins(overrides: list[str]) -> list[str]:
    """Import what a `plugins=[pkg.mod,path/to/file.py,...]` override names: importing a plugin
    registers the agents, env families, heads, reward modules or balancers it defines."""
    mods: list[str] = []
    for o in overrides:
        if o.startswith("plugins="):
            mods = [m.strip() for m in o.split("=", 1)[1].strip("[]").split(",") if m.strip()]
    for m in mods:
        import_plugin(m)
    return mods


def import_plugin(name: str) -> None:
    """Import one plugin: a module name (pkg.mod) or a .py file path (loaded once per path)."""
    import importlib
    import importlib.util
    import sys

    try:
        if not name.endswith(".py"):
            importlib.import_module(name)
            return
        path = os.path.abspath(name)
        mod_name = "rl_aux_plugin_" + re.sub(r"\W", "_", path)
        if mod_name in sys.modules:
            return
        if not os.path.isfile(path):
            raise ImportError(f"no such file: {path}")
        spec_ = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(spec_)
        sys.modules[mod_name] = module
        try:
            spec_.loader.exec_module(module)
        except BaseException:
            del sys.modules[mod_name]
            raise
    except ImportError as e:
        raise ConfigError(
            f"plugins: cannot import {name!r} ({e}); accepted: importable module names "
            "(pkg.mod) or paths of .py files"
        ) from None


# balancer options that were agent fields before the nested agent.balancer config
MOVED_KEYS = {
    "bloop_ema": "agent.balancer.name=bloop agent.balancer.ema=...",
    "gradnorm_alpha": "agent.balancer.name=gradnorm agent.balancer.alpha=...",
    "gradnorm_lr": "agent.balancer.name=gradnorm agent.balancer.lr=...",
    "gradnorm_learn_main": "agent.balancer.name=gradnorm agent.balancer.learn_main=...",
}


def hydra_override(override: str) -> str:
    """An override as hydra must see it: `grid.<hp>=[...]` and `agent.balancer.<option>=v` add
    keys (hydra needs `++`); `agent.balancer=<name>` selects by name (`agent.balancer.name`)."""
    if override.startswith("grid."):
        return "++" + override
    key, eq, value = override.partition("=")
    if key == "agent.balancer" and eq and not value.lstrip().startswith("{"):
        return f"agent.balancer.name={value}"
    if key.startswith("agent.balancer.") and key != "agent.balancer.name" and eq:
        return "++" + override
    return override


def _missing_option_message(msg: str) -> str:
    m = re.search(r"Could not (?:find|load) '([^']+)'", msg)
    opts = re.search(r"Available options in '([^']+)':\n((?:\t[^\n]*\n?)*)", msg)
    if not m:
        return msg.strip().splitlines()[0]
    missing = m.group(1)
    group, _, option = missing.rpartition("/")
    choices = opts.group(2).split() if opts else []
    if not choices and group in ("head", "agent", "reward"):  # a list item (head=[a,nope])
        choices = {"head": registered_heads, "agent": _agent_names}.get(group, registered_rewards)()
    if group.startswith("env"):
        from envs.registry import check_env_name, unknown_env_message

        option = missing.partition("/")[2]
        try:  # a known family explains itself (close matches, or what to install)
            check_env_name(option)
        except (ValueError, ImportError) as e:
            if not str(e).startswith("env.name="):  # the family's own, more specific message
                return str(e)
        return "env=" + unknown_env_message(option).removeprefix("env.name=")
    what = {"head": "head", "agent": "agent", "reward": "reward module"}.get(group, "option")
    msg = unknown_name_message(group, option, choices, what, f"rl-aux describe {group}")
    return f"{msg}. {PLUGIN_HINT}" if group == "head" else msg


def _override_message(msg: str, overrides: list[str]) -> str:
    m = re.search(r"Could not override '([^']+)'", msg)
    if not m:
        return msg.strip().splitlines()[0]
    path = m.group(1)
    parent, _, key = path.rpartition(".")
    if parent == "agent" and key in MOVED_KEYS:
        return f"{path} is now set in the nested balancer config: {MOVED_KEYS[key]}"
    accepted = _accepted_keys(parent, overrides)
    close = difflib.get_close_matches(key, accepted, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    if parent.startswith("heads") and parent.count(".") == 1:
        name = parent.split(".")[1]
        if name not in [o for o in _selected_heads(overrides)]:
            return (
                f"{path}: head {name!r} is not selected; select it with head={name} "
                f"(or head=[a,b]). Registered heads: {', '.join(registered_heads())}"
            )
    if parent == "heads":
        return (
            f"{path}: heads are selected with head={key} (or head=[a,b]), then set with "
            f"heads.{key}.<field>=... Registered heads: {', '.join(registered_heads())}"
        )
    return f"{path} is not a known key.{hint} Accepted keys: {', '.join(accepted)}"


def _selected_heads(overrides: list[str]) -> list[str]:
    for o in overrides:
        if o.startswith("head="):
            return [h.strip() for h in o.split("=", 1)[1].strip("[]").split(",") if h.strip()]
    return []


def _accepted_keys(parent: str, overrides: list[str]) -> list[str]:
    if parent == "":
        return _TOP_LEVEL
    head = parent.split(".")[0]
    if head == "agent":
        name = next((o.split("=", 1)[1] for o in overrides if o.startswith("agent=")), "ppo")
        from agents.registry import AGENTS

        node = AGENTS.get(name).Config() if name in AGENTS else None
        for part in parent.split(".")[1:]:
            node = getattr(node, part, None)
        return ["name", *[f.name for f in dataclasses.fields(node)]] if node else []
    if head == "reward" and parent == "reward":
        name = next((o.split("=", 1)[1] for o in overrides if o.startswith("reward=")), "env")
        try:
            return ["name", *[f.name for f in dataclasses.fields(reward_class(name).Config)]]
        except ValueError:
            return []
    if head == "heads" and parent.count(".") == 1:
        return [f.name for f in dataclasses.fields(head_class(parent.split(".")[1]).Config)]
    if parent == "env.options":
        from envs.registry import ENV_FAMILIES, env_options

        env = next((o.split("=", 1)[1] for o in overrides if o.startswith("env=")), "")
        takes = ", ".join(f"{n}/*" for n, f in ENV_FAMILIES.items() if f.takes_options)
        return list(env_options(env)) or [f"(none: only {takes} take options)"]
    sub = {
        "eval": EvalConfig,
        "logger": LoggerConfig,
        "checkpoint": CheckpointConfig,
        "logger.wandb": WandbConfig,
        "distributed": DistributedConfig,
        "env": EnvConfig,
        "llm": LLMConfig,
    }.get(parent)
    return [f.name for f in dataclasses.fields(sub)] if sub else []


def build(raw: dict) -> TrainConfig:
    """Validate a composed dict into a TrainConfig; raises ConfigError naming the field."""
    raw = dict(raw)
    unknown = set(raw) - set(_TOP_LEVEL) | ({"agent_name"} & set(raw))
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"{key} is not a known key. Accepted keys: {', '.join(_TOP_LEVEL)}")
    from agents.registry import agent_class

    agent_raw = dict(raw.pop("agent", {"name": "ppo"}))
    agent_name = agent_raw.pop("name", "ppo")
    agent_cls = agent_class(agent_name)  # UnknownName is a ConfigError naming the agents
    agent_cfg = build_agent_config(agent_cls.Config, agent_raw)
    env_cfg = from_dict(EnvConfig, raw.pop("env", {}), "env")
    from envs.registry import check_env_name

    try:
        check_env_name(env_cfg.name)
    except (ValueError, ImportError) as e:
        raise ConfigError(str(e)) from None
    from envs.registry import check_env_options

    check_env_options(env_cfg.name, env_cfg.options)  # before any compile
    heads = {}
    heads_raw = raw.pop("heads", None) or {}
    if not isinstance(heads_raw, dict):
        raise ConfigError(
            f"heads={heads_raw!r} must be a mapping; select heads with head=<name> (or "
            "head=[a,b]) and set them with heads.<name>.<field>=... (rl-aux describe head)"
        )
    for name, hraw in heads_raw.items():
        try:
            cls = head_class(name)
        except KeyError as e:
            raise ConfigError(f"heads.{name}: {e.args[0]}") from None
        heads[name] = from_dict(cls.Config, hraw or {}, f"heads.{name}")
    reward_raw = dict(raw.pop("reward", None) or {"name": "env"})
    reward_name = reward_raw.pop("name", "env")
    try:
        reward_cls = reward_class(reward_name)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    reward_cfg = from_dict(reward_cls.Config, reward_raw, "reward")
    from envs.registry import ENV_FAMILIES, env_family

    if reward_name in TEXT_REWARDS and not env_family(env_cfg.name).text_observations:
        text = [f"{n}/" for n, f in ENV_FAMILIES.items() if f.text_observations]
        raise ConfigError(
            f"reward={reward_name} reads NLE/MiniHack text observations; env.name="
            f"{env_cfg.name!r} has none. Use an env of: {', '.join(text)}"
        )
    if reward_name == "blend":
        reward_cfg = _blend_sources(reward_cfg, env_cfg.name)
    raw |= {"reward": reward_cfg, "reward_name": reward_name}  # validated above
    grid = flatten_dict(raw.pop("grid", None) or {})
    balancer = getattr(agent_cfg, "balancer", None)
    _check_grid(grid, heads, agent_cls, reward_name, balancer, reward_cfg, env_cfg.name)
    cfg = from_dict(TrainConfig, {**raw, "grid": grid})
    cfg = dataclasses.replace(cfg, agent=agent_cfg, agent_name=agent_name, env=env_cfg, heads=heads)
    resolve_cpu_threads(cfg.cpu_threads, torso_name(agent_cfg), gradient_batch(agent_cfg))
    if not cfg.label:
        cfg = dataclasses.replace(cfg, label="+".join([agent_name, *sorted(heads)]))
    if not cfg.run_dir:
        cfg = dataclasses.replace(cfg, run_dir=os.path.join("runs", cfg.experiment, cfg.label))
    return cfg


def _blend_sources(reward_cfg: Any, env_name: str) -> Any:
    """reward.sources for reward=blend: checked against the env's published auxiliary rewards
    (empty: all of them). Host-stepped envs get theirs from one host-side source."""
    from envs.registry import env_family

    if env_family(env_name).host_stepped:  # one host-side source (host_loop.py)
        from agents.host_loop import HOST_BLEND_SOURCES

        if len(reward_cfg.sources) != 1 or reward_cfg.sources[0] not in HOST_BLEND_SOURCES:
            raise ConfigError(
                f"reward.sources={list(reward_cfg.sources)!r}: on {env_name!r} reward=blend "
                f"weighs exactly one host-side source. Accepted values: "
                f"{', '.join(HOST_BLEND_SOURCES)}"
            )
        return reward_cfg
    from envs.registry import env_reward_sources, registered_envs

    have = env_reward_sources(env_name)
    if not have:
        with_aux = [n for n in registered_envs() if env_reward_sources(n)]
        raise ConfigError(
            f"reward=blend: env.name={env_name!r} publishes no auxiliary reward "
            f"(extras['r_aux/<source>']). Accepted envs: {', '.join(with_aux)}"
        )
    bad = [s for s in reward_cfg.sources if s not in have]
    if bad:
        raise ConfigError(
            f"reward.sources={list(reward_cfg.sources)!r}: {bad[0]!r} is not an auxiliary "
            f"reward of env {env_name!r}. Accepted values: {', '.join(have)}"
        )
    return dataclasses.replace(reward_cfg, sources=tuple(reward_cfg.sources) or have)


def _agent_names() -> list[str]:
    from agents.registry import registered_agents

    return registered_agents()


def build_agent_config(cfg_cls: type, agent_raw: dict) -> Any:
    """The agent's Config from its raw fields; a `balancer` field is built as the nested config
    of the balancer it names (`agent.balancer.name` and that balancer's own options)."""
    fields = {f.name for f in dataclasses.fields(cfg_cls)}
    if "balancer" not in fields or "balancer" not in agent_raw:
        return from_dict(cfg_cls, agent_raw, "agent")
    from rl_aux.balancers import BALANCERS

    bal_raw = agent_raw.pop("balancer")
    if isinstance(bal_raw, str) or bal_raw is None:  # agent.balancer: pcgrad in a yaml
        bal_raw = {"name": bal_raw}
    if not isinstance(bal_raw, dict):
        raise ConfigError(
            f"agent.balancer={bal_raw!r}: accepted: a balancer name, or its config "
            "(agent.balancer.name=<balancer> agent.balancer.<option>=...)"
        )
    bal_raw = dict(bal_raw)
    name = bal_raw.setdefault("name", "weighted_sum")
    if not isinstance(name, str):
        raise ConfigError(f"agent.balancer.name={name!r} must be a string (a balancer name)")
    kind = BALANCERS.get(name)  # UnknownName: close matches and the accepted names
    options = [f.name for f in dataclasses.fields(kind.Config) if f.name != "name"]
    unknown = sorted(set(bal_raw) - {"name", *options})
    if unknown:
        raise ConfigError(
            f"agent.balancer.{unknown[0]} is not an option of agent.balancer={name}. Accepted "
            f"options: {', '.join(options) or 'none'} (rl-aux describe balancer=<name> lists "
            "each balancer's)"
        )
    balancer = from_dict(kind.Config, bal_raw, "agent.balancer")
    return dataclasses.replace(from_dict(cfg_cls, agent_raw, "agent"), balancer=balancer)


def torso_name(agent_cfg: Any) -> str:
    """The agent's torso name ('mlp' when it has no network config)."""
    return getattr(getattr(agent_cfg, "network", None), "torso", "mlp")


def gradient_batch(agent_cfg: Any) -> int:
    """Samples in one gradient step of the agent (0 when its config does not say)."""
    return int(getattr(agent_cfg, "samples_per_gradient_step", 0))


def flatten_dict(d: dict, prefix: str = "") -> dict:
    """{'a': {'weight': [..]}} -> {'a.weight': [..]} (hydra nests dotted keys)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(flatten_dict(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def grid_fields(
    agent_cls: type, reward_name: str = "env", balancer: Any = None, reward: Any = None
) -> dict[str, dict]:
    """{grid key: constraints} a grid can vmap for this agent: the float fields of its config
    (rl_aux/typed_config.grid_floats), as `balancer.<opt>` those of the selected balancer's
    config (its factory is rebuilt inside the trace with the gridded values), and as
    `reward.<opt>` those of the selected reward module's config `reward` that it reads
    (`RewardModule.unread_options`; the module is rebuilt inside the trace, `reward_at`); none
    for an offline learner (it trains one point). With a reward module, `gamma` comes from the
    module, and reward=blend's inner loss reads the loss coefficients from the config too, so
    those stay off the grid."""
    from agents.registry import is_offline

    if is_offline(agent_cls):
        return {}
    fields = grid_floats(agent_cls.Config)
    off = {"gamma"} if reward_name != "env" else set()
    if reward_name == "blend":
        off |= {"gae_lambda", "ent_coef", "vf_coef"}
    fields = {k: v for k, v in fields.items() if k not in off}
    if balancer is not None:
        fields |= {f"{BALANCER_GRID}{k}": v for k, v in grid_floats(type(balancer)).items()}
    if reward is not None and reward_name != "env":
        unread = reward_class(reward_name).unread_options(reward)
        floats = grid_floats(type(reward)).items()
        fields |= {f"{REWARD_GRID}{k}": v for k, v in floats if k not in unread}
    return fields


def _check_grid(
    grid: dict,
    heads: dict,
    agent_cls: type,
    reward_name: str,
    balancer: Any = None,
    reward: Any = None,
    env_name: str = "",
) -> None:
    """Grid axes: the agent config's, its balancer's and its reward module's float fields
    (`grid_fields`) and `<head>.weight`; each a non-empty list of numbers within the field's
    own bounds."""
    floats = grid_fields(agent_cls, reward_name, balancer, reward)
    accepted = [*floats, *[f"{h}.weight" for h in heads]]
    for key, values in grid.items():
        head, _, field = key.partition(".")
        if key not in accepted and field == "weight" and head in registered_heads():
            raise ConfigError(
                f"grid.{key}: head {head!r} is not selected; select it with head={head} (or "
                f"head=[{head},...]) to sweep its weight. Vmappable now: {', '.join(accepted)}"
            )
        if key.startswith(REWARD_GRID):
            _check_reward_axis(key, values, reward_name, reward, env_name, accepted)
        if key not in accepted:
            name = getattr(balancer, "name", None)
            raise ConfigError(
                f"grid.{key}={values!r} is not a vmappable hyperparameter. Accepted: "
                f"{', '.join(accepted)} (the learner config's float fields that shape nothing, "
                f"grid.balancer.<option> for the float options of the selected balancer "
                f"(agent.balancer.name={name}), grid.reward.<option> for the float options "
                f"of the selected reward module that shape nothing (reward={reward_name}), "
                "and grid.<head>.weight for each selected head)"
            )
        if not isinstance(values, list) or not values:
            raise ConfigError(f"grid.{key}={values!r} must be a non-empty list of numbers")
        meta = floats.get(key, {"ge": 0.0})
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ConfigError(f"grid.{key} holds {v!r}; accepted: numbers")
            check_value(f"grid.{key}", v, meta)


def _check_reward_axis(
    key: str, values: Any, reward_name: str, reward: Any, env_name: str, accepted: list[str]
) -> None:
    """The refusals particular to `grid.reward.<option>`: no reward module selected, a
    host-stepped env (its loop runs one hyperparameter point), an option this config never
    reads."""
    from envs.registry import env_family

    option = key.removeprefix(REWARD_GRID)
    if reward_name == "env":
        raise ConfigError(
            f"grid.{key}={values!r}: no reward module is selected (reward=env), so there is "
            "no reward option to vmap. Accepted: select one first, e.g. reward=blend "
            f"grid.reward.meta_lr=[...] (rl-aux describe reward); vmappable now: "
            f"{', '.join(accepted)}"
        )
    if env_name and env_family(env_name).host_stepped:
        raise ConfigError(
            f"grid.{key}={values!r}: env={env_name} is trained by the host loop "
            "(agents/host_loop.py), which runs one hyperparameter point, so grid.reward.* "
            f"is not accepted on nethack/* and minihack/* envs. Accepted: reward.{option}=<one "
            f"value> per run, or separate runs, e.g. rl-aux sweep env={env_name} "
            f"reward={reward_name} reward.{option}=a,b"
        )
    unread = reward_class(reward_name).unread_options(reward) if reward is not None else {}
    if option in unread:
        raise ConfigError(
            f"grid.{key}={values!r}: reward={reward_name} with this config never reads "
            f"reward.{option} ({unread[option]}), so a grid over it would change nothing. "
            f"Accepted: {', '.join(accepted)}"
        )


def check_run_dir(run_dir: str) -> None:
    """Raise ConfigError unless `run_dir` can be created and written (checked before any
    compile by creating it and a probe file; directories this check created are removed)."""
    created = []
    probe = os.path.abspath(run_dir)
    while not os.path.exists(probe):
        created.append(probe)
        probe = os.path.dirname(probe)
    try:
        os.makedirs(run_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=run_dir):
            pass
    except OSError as e:
        why = e.strerror or str(e)
        raise ConfigError(
            f"run_dir={run_dir!r} cannot be written ({why}); accepted: a directory path you "
            "can create and write (default runs/<experiment>/<label>)"
        ) from None
    finally:
        for d in created:  # leaf first; only the empty directories made here
            try:
                os.rmdir(d)
            except OSError:
                break


def load_config(overrides: list[str]) -> TrainConfig:
    return build(compose(overrides))


__all__ = ["ConfigError", "HeadConfig", "TrainConfig", "build", "compose", "load_config"]
