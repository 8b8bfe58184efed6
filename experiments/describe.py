"""`rl-aux describe`: what a config group offers, read from the dataclasses themselves.

`rl-aux describe` lists the groups; `describe env` (or head, agent, reward, balancer,
experiment) lists every name of a group (the command the "unknown name" errors point to);
`describe head=next_latent` (agent=dqn, reward=blend, balancer=pcgrad, experiment=quickstart,
eval, logger, ...) lists that option's fields with defaults, ranges/choices and one-line docs.
Listings read experiments/catalog.py (no jax); one option's fields import its module.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import sys
import typing
from typing import Any

from experiments import catalog

GROUPS = {
    "agent": "learners (PPO, DQN, PVN); agent=<name>, fields agent.<field>",
    "head": "auxiliary heads; head=<name> or head=[a,b], fields heads.<name>.<field>",
    "reward": "reward modules; reward=<name>, fields reward.<field>",
    "balancer": "gradient balancers; agent.balancer=<name>",
    "env": "environments by family; env=<family>/<task>",
    "experiment": "bundles of the above; experiment=<name>",
    "train": "the top-level keys (num_seeds, total_timesteps, run_dir, ...)",
    "eval": "greedy evaluation (eval.<field>)",
    "logger": "metric rows, progress, wandb (logger.<field>)",
    "checkpoint": "checkpoints (checkpoint.<field>)",
    "distributed": "multi-host start (distributed.<field>)",
    "llm": "LLM endpoint of the LLM rewards (llm.<field>)",
}
SECTIONS = ("train", "eval", "logger", "checkpoint", "distributed", "llm")
_FIELD_LINE = re.compile(r"^\s+(\w+)\s*:\s*[^#]*?(?:#\s*(.*))?$")


class DescribeError(Exception):
    """An unknown group or option name (exit code 2)."""


def field_docs(cls: type) -> dict[str, str]:
    """name -> one-line doc of each field: its spec(doc=...), else the comment on its line (or
    the comment block just above it) in the dataclass source."""
    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__[1:]):  # inherited fields keep their base's comments
        if dataclasses.is_dataclass(base):
            docs.update(field_docs(base))
    try:
        src = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        src = []
    above: list[str] = []
    for line in src:
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# "))
            continue
        m = _FIELD_LINE.match(line)
        if m and not stripped.startswith(("def ", "class ", "@", "return")):
            doc = m.group(2) or " ".join(above)
            if doc or m.group(1) not in docs:
                docs[m.group(1)] = doc
        above = []
    for f in dataclasses.fields(cls):
        if f.metadata.get("doc"):
            docs[f.name] = f.metadata["doc"]
    return docs


def _type_name(tp: Any) -> str:
    name = getattr(tp, "__name__", None) if typing.get_origin(tp) is None else None
    return name or str(tp).replace("typing.", "")


def describe_fields(cls: type, prefix: str) -> list[str]:
    """One line per field of dataclass `cls` (nested dataclasses expanded): path, type,
    default, accepted values, doc."""
    from rl_aux.typed_config import accepted_text

    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    lines = []
    obj = cls()
    width = max([len(prefix) + len(f.name) for f in dataclasses.fields(cls)] + [30])
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        default = getattr(obj, f.name)
        if dataclasses.is_dataclass(default):
            lines += describe_fields(type(default), path + ".")
            continue
        accepted = accepted_text(dict(f.metadata)) if f.metadata else ""
        accepted = "" if accepted == "any value of its type" else accepted
        parts = [f"  {path:{width}} {_type_name(hints[f.name]):6} = {default!r}"]
        if accepted:
            parts.append(f"[{accepted}]")
        if docs.get(f.name):
            parts.append(f"- {docs[f.name]}")
        lines.append(" ".join(parts))
    return lines


def _doc_line(obj: Any) -> str:
    """The first paragraph of obj's own docstring (not an inherited or generated one)."""
    doc = obj.__doc__ or ""
    if doc.startswith(getattr(obj, "__name__", "") + "("):  # dataclass-generated signature
        return ""
    return inspect.cleandoc(doc).split("\n\n")[0].replace("\n", " ")


def list_group(group: str) -> str:
    """Every name of `group` (light: read from experiments/catalog.py)."""
    if group == "env":
        return "\n".join(
            f"{fam}/ ({len(names)}) {catalog.FAMILY_NOTES[fam]}\n"
            + ("\n".join(f"  {n}" for n in names) if names else "  (not installed)")
            for fam, names in catalog.env_families().items()
        )
    if group == "experiment":
        return "\n".join(f"  {k:26} {v}" for k, v in catalog.experiments().items())
    if group == "head":
        plugins = [f"  {h:14} (load with plugins=[{m}])" for h, m in catalog.PLUGIN_HEADS.items()]
        return "\n".join(
            [*(f"  {h}" for h in catalog.HEADS), *plugins]
            + ["", "details: rl-aux describe head=<name>; your own: plugins=[my_pkg.my_head]"]
        )
    names = {"agent": catalog.AGENTS, "reward": catalog.REWARDS, "balancer": catalog.BALANCERS}
    if group in names:
        return "\n".join([*(f"  {n}" for n in names[group]), "", f"details: {group}=<name>"])
    return "\n".join(describe_section(group))


def describe_section(section: str) -> list[str]:
    """The fields of a top-level section (eval, logger, ...) or of the top level (train)."""
    from experiments import compose

    if section == "train":
        return [f"  {k:18} {d:24} {c}".rstrip() for k, d, c in catalog.top_level_keys()]
    cls = {
        "eval": compose.EvalConfig,
        "logger": compose.LoggerConfig,
        "checkpoint": compose.CheckpointConfig,
        "distributed": compose.DistributedConfig,
        "llm": compose.LLMConfig,
    }[section]
    doc = _doc_line(cls)
    fields = describe_fields(cls, f"{section}.")
    return [doc, *fields] if doc else fields


def describe_option(group: str, name: str) -> list[str]:
    """One option of a group: its doc line and fields (imports its module)."""
    from experiments.compose import registered_heads
    from rl_aux.typed_config import unknown_name_message

    def unknown(names: list[str], what: str) -> DescribeError:
        cmd = f"rl-aux describe {group}"
        return DescribeError(unknown_name_message(group, name, names, what, cmd))

    if group == "head":
        from rl_aux.heads.base import PLUGIN_HINT, head_class

        if name not in registered_heads():
            raise DescribeError(f"{unknown(registered_heads(), 'head')}. {PLUGIN_HINT}")
        cls = head_class(name)
        out = [f"head={name}: {_doc_line(cls)}", f"  requires: {sorted(cls.requires) or '-'}"]
        return out + describe_fields(cls.Config, f"heads.{name}.")
    if group == "agent":
        from agents.registry import agent_class, registered_agents

        if name not in registered_agents():
            raise unknown(registered_agents(), "agent")
        agent_cls = agent_class(name)
        cfg_cls = agent_cls.Config
        doc = _doc_line(agent_cls) or _doc_line(cfg_cls) or agent_cls.__name__
        return [f"agent={name}: {doc}", *describe_fields(cfg_cls, "agent.")]
    if group == "reward":
        from rl_aux.rewards import registered_rewards, reward_class

        if name not in registered_rewards():
            raise unknown(registered_rewards(), "reward module")
        cls = reward_class(name)
        return [f"reward={name}: {_doc_line(cls)}", *describe_fields(cls.Config, "reward.")]
    if group == "balancer":
        from rl_aux.balancers import BALANCERS

        if name not in BALANCERS:
            raise unknown(BALANCERS.names(), "balancer")
        kind = BALANCERS.get(name)
        options = describe_fields(kind.Config, "agent.balancer.")[1:]  # [0] is its name
        return [f"agent.balancer={name}: {_doc_line(kind.make)}", *options]
    if group == "experiment":
        path = f"{catalog.CONFIG_DIR}/experiment/{name}.yaml"
        if name not in catalog.experiments():
            raise unknown(list(catalog.experiments()), "experiment")
        with open(path) as f:
            return [f"experiment={name} ({path}):", f.read().rstrip()]
    if group == "env":
        return describe_env(name)
    raise DescribeError(_unknown_group(f"{group}={name}"))


def describe_env(name: str) -> list[str]:
    """A family (env=gymnax) lists its envs; a full name shows its default env.options."""
    fams = catalog.env_families()
    if name in fams or name.rstrip("/") in fams:
        fam = name.rstrip("/")
        return [f"{fam}/ ({len(fams[fam])}) {catalog.FAMILY_NOTES.get(fam, '')}"] + [
            f"  {n}" for n in fams[fam]
        ]
    from envs.registry import check_env_name, env_options

    try:
        check_env_name(name)
    except (ValueError, ImportError) as e:
        raise DescribeError(str(e)) from None
    from envs.registry import env_family

    lines = [f"env={name}"]
    options_class = env_family(name).options_class()
    if options_class is not None:
        return lines + describe_fields(options_class, "env.options.")
    return lines + [f"  env.options.{k} = {v!r}" for k, v in env_options(name).items()]


def _unknown_group(arg: str) -> str:
    import difflib

    key = arg.partition("=")[0]
    close = difflib.get_close_matches(key, list(GROUPS), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return f"{arg!r} is not a config group.{hint} Accepted: {', '.join(GROUPS)}"


def describe(args: list[str]) -> str:
    """The text `rl-aux describe ARGS` prints; DescribeError on an unknown group or option."""
    plugins = [a for a in args if a.startswith("plugins=")]
    args = [a for a in args if not a.startswith("plugins=")]
    if plugins:  # only then the heavy import: listings stay jax-free
        from experiments.compose import import_plugins

        import_plugins(plugins)
    if not args:
        rows = [f"  {g:12} {d}" for g, d in GROUPS.items()]
        return "\n".join(["rl-aux describe GROUP | GROUP=OPTION:", *rows])
    out = []
    for arg in args:
        group, eq, name = arg.partition("=")
        group = "balancer" if group == "agent.balancer" else group
        if group not in GROUPS:
            raise DescribeError(_unknown_group(arg))
        if not eq or (group in SECTIONS and not name):
            out.append(list_group(group))
        elif group in SECTIONS:
            raise DescribeError(f"{group} takes no option; try: rl-aux describe {group}")
        else:
            out += describe_option(group, name.strip("[]").split(",")[0] if name else name)
    return "\n".join(out)


USAGE = """usage: rl-aux describe [GROUP | GROUP=OPTION ...] [plugins=[my_pkg.my_head]]

  rl-aux describe                   the config groups
  rl-aux describe env               every env by family (env=gymnax: one family;
                                    env=atari/Breakout: its env.options)
  rl-aux describe head=next_latent  a head's fields: defaults, ranges/choices, docs
  rl-aux describe agent=dqn         (also reward=blend, balancer=pcgrad, experiment=quickstart,
                                    eval, logger, checkpoint, distributed, llm, train)
"""


def main(argv: list[str]) -> int:
    """Entry point of `rl-aux describe` (exit 2 on an unknown group or option)."""
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    try:
        text = describe(argv)
    except (DescribeError, ValueError) as e:  # ValueError: rl_aux.typed_config.ConfigError
        print(f"rl-aux describe: {e}", file=sys.stderr)
        return 2
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `rl-aux describe env | head`: the reader stopped early
        sys.stdout = open(os.devnull, "w")  # python's documented idiom: no second error at exit
    return 0
