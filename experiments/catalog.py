"""Registered names without importing jax: the light catalogue behind `rl-aux train --help`.

The live registries (agents, heads, reward modules, balancers, envs) import jax and flax, which
takes seconds; `--help` must not. This module holds the same names as plain data (JAX env
families, built-in heads, ...), reads the ones that depend on installed packages cheaply
(Atari ROMs from ale-py, NLE/MiniHack tasks from gymnasium's registry) and the experiment
bundles from experiments/configs/. tests/unit/test_bad_inputs.py checks every list here equals its
live registry, so a new head or env that is not added here fails the default suite.
"""

from __future__ import annotations

import os
import re

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
DOCS = "README.md (usage, config groups) and docs/*.md (one page per topic)"

AGENTS = ("ppo", "dqn", "pvn_pretrain", "pvn_linear")  # agents.registry.registered_agents()
HEADS = (  # registered_heads()
    "future",
    "latent_pred",
    "next_latent",
    "next_obs",
    "noise_target",
    "pvn",
    "reward_pred",
)
PLUGIN_HEADS = {  # the plugin example in this repository (from a checkout: PYTHONPATH=.)
    "inverse_dynamics": "examples.plugins.inverse_dynamics",
}
REWARDS = ("blend", "ellm", "env", "keyroom_oracle", "subgoal")  # registered_rewards()
BALANCERS = (  # rl_aux.balancers.BALANCERS.names() (agent.balancer=...)
    "weighted_sum",
    "bloop",
    "pcgrad",
    "gcs",
    "uncertainty",
    "auxinash",
    "gradnorm",
)
GYMNAX = (  # envs.jax_envs.GYMNAX_DISCRETE
    "CartPole-v1",
    "Acrobot-v1",
    "MountainCar-v0",
    "Asterix-MinAtar",
    "Breakout-MinAtar",
    "Freeway-MinAtar",
    "SpaceInvaders-MinAtar",
    "Catch-bsuite",
    "DeepSea-bsuite",
    "MemoryChain-bsuite",
    "UmbrellaChain-bsuite",
)
TMAZE_LENGTHS = (10, 30, 100)  # envs.memory.TMAZE_LENGTHS
MEMORY = (  # envs.memory.NAMES
    [f"PassiveTMaze-L{n}" for n in TMAZE_LENGTHS]
    + [f"PassiveTMaze-L{n}-noisy" for n in TMAZE_LENGTHS]
    + ["RepeatPrevious", "RepeatPrevious-noreward", "RepeatPrevious-noisy"]
    + ["Concentration", "Concentration-noisy"]
)
BARFI_AUX = ("centre", "distance")  # envs.barfi_grid.AUX_KINDS
FOUR_ROOMS_CELLS = 104  # envs.four_rooms.NUM_CELLS
FOUR_ROOMS = ("reward_free", *(f"goal{k}" for k in range(FOUR_ROOMS_CELLS)))
# env families and what they need installed (shown when a family is empty): envs.registry's
# ENV_FAMILIES in registration order, each family's `note`
FAMILY_NOTES = {
    "gymnax": "classic control, MinAtar, bsuite (gymnax)",
    "memory": "memory tasks (T-maze, repeat-previous, ...)",
    "fsgrid": "Fang & Stachenfeld gridworld",
    "barfi": "BARFI gridworld (with auxiliary rewards)",
    "four_rooms": "four-rooms goals (PVN)",
    "nethack": "NLE, host-stepped (`nethack` extra)",
    "minihack": "MiniHack, host-stepped (`nethack` extra)",
    "atari": "ALE ROMs (`atari` extra: ale-py)",
}


def nle_tasks() -> list[str]:
    """`nethack/<task>` then `minihack/<task>` names from gymnasium's registry (as the
    nethack and minihack families of envs.registry); empty when nle/minihack are not installed."""
    try:
        import gymnasium as gym
        import minihack  # noqa: F401  (registers the MiniHack-* ids)
        import nle  # noqa: F401  (registers the NetHack* ids)
    except ImportError:
        return []
    nethack, minihack = [], []
    for gid in gym.registry:
        if gid.startswith("MiniHack-") and "-Custom-" not in gid:
            minihack.append("minihack/" + gid.removeprefix("MiniHack-"))
        elif gid.startswith("NetHack") and gid != "NetHack-v0":
            nethack.append("nethack/" + gid.removeprefix("NetHack"))
    return nethack + minihack


def atari_games() -> list[str]:
    """`atari/<Game>` for every ROM ale-py ships (as envs.atari.ale_games); empty without it."""
    try:
        from ale_py import roms
    except ImportError:
        return []
    camel = ["".join(p[:1].upper() + p[1:] for p in r.split("_")) for r in roms.get_all_rom_ids()]
    return [f"atari/{g}" for g in sorted(camel)]


def env_names() -> list[str]:
    """Every env name, in the order of envs.registry.registered_envs."""
    return (
        [f"gymnax/{n}" for n in GYMNAX]
        + [f"memory/{n}" for n in MEMORY]
        + ["fsgrid/Open8x8", "barfi/Grid7x7"]
        + [f"barfi/grid-{k}" for k in BARFI_AUX]
        + [f"four_rooms/{t}" for t in FOUR_ROOMS]
        + nle_tasks()
        + atari_games()
    )


def env_families(names: list[str] | None = None) -> dict[str, list[str]]:
    """family -> its env names (every family of FAMILY_NOTES, empty if not installed)."""
    out: dict[str, list[str]] = {f: [] for f in FAMILY_NOTES}
    for n in env_names() if names is None else names:
        out.setdefault(n.partition("/")[0], []).append(n)
    return out


def experiments() -> dict[str, str]:
    """experiment name -> the first line of its yaml's description comment."""
    root = os.path.join(CONFIG_DIR, "experiment")
    out = {}
    for fname in sorted(os.listdir(root)):
        if not fname.endswith(".yaml"):
            continue
        with open(os.path.join(root, fname)) as f:
            lines = [ln[1:].strip() for ln in f if ln.startswith("#") and "@package" not in ln]
        out[fname.removesuffix(".yaml")] = lines[0] if lines else ""
    return out


def top_level_keys() -> list[tuple[str, str, str]]:
    """(key, default, comment) of each top-level key of experiments/configs/config.yaml."""
    out = []
    with open(os.path.join(CONFIG_DIR, "config.yaml")) as f:
        for line in f:
            m = re.match(r"^([a-z_]+):\s*([^#]*?)\s*(?:#\s*(.*))?$", line.rstrip("\n"))
            if m and m.group(1) != "defaults":
                out.append((m.group(1), m.group(2) or "{...}", m.group(3) or ""))
    return out


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def train_help() -> str:
    """`rl-aux train --help`: the config groups with their options, the top-level keys, plugins,
    and where to read more (built from this module only: no jax import)."""
    fams = env_families()
    env_lines = []
    for fam, names in fams.items():
        shown = [n.partition("/")[2] for n in names[:3]]
        more = ", ..." if len(names) > 3 else ""
        what = ", ".join(shown) + more if names else "(not installed)"
        env_lines.append(
            _clip(f"    {fam + '/':12} {len(names):>4}  {FAMILY_NOTES[fam]}: {what}", 99)
        )
    keys = [_clip(f"    {k:16} {d:8} {c}".rstrip(), 99) for k, d, c in top_level_keys()]
    exps = [_clip(f"    {k:24} {v}".rstrip(), 99) for k, v in experiments().items()]
    plugin = "\n               ".join(f"{h} (plugins=[{m}])" for h, m in PLUGIN_HEADS.items())
    return f"""usage: rl-aux train [overrides...] [--cfg job] [--help]

Hydra overrides compose experiments/configs/config.yaml; a bad one exits 2 (before any compile)
with a message naming the field, the value and what is accepted.

  e.g. rl-aux train agent=ppo env=gymnax/CartPole-v1 num_seeds=4 total_timesteps=100000
       rl-aux train experiment=quickstart
       rl-aux train head=[reward_pred,next_latent] grid.lr=[0.001,0.0003] num_seeds=4

Config groups (group=option):
  agent=       {", ".join(AGENTS)}   (default ppo; then agent.<field>=...)
  head=        {", ".join(HEADS)}
               (several: head=[a,b]; then heads.<name>.<field>=...); in-tree plugins:
               {plugin}
  reward=      {", ".join(REWARDS)}   (default env)
  agent.balancer=  how auxiliary gradients join (PPO, DQN):
               {", ".join(BALANCERS)}
  experiment=  a bundle of the above ({len(exps)}):
{chr(10).join(exps)}
  env=         family/task ({sum(len(v) for v in fams.values())} envs; count per family):
{chr(10).join(env_lines)}

Top-level keys (key=value; nested groups: eval.*, logger.*, checkpoint.*, distributed.*, llm.*):
{chr(10).join(keys)}

Plugins: plugins=[my_pkg.my_mod,path/to/file.py] imports your modules first, so the agents, env
  families, heads, reward modules and balancers they register become selectable (agent=...,
  env=<family>/<task>, head=..., reward=..., agent.balancer=...). Examples, one per kind, in
  examples/plugins/; what to write: docs/development.md ("Add a plugin").

Options:
  --help, -h             this text; with group=option (e.g. head=next_latent --help) that
                         option's fields, defaults, ranges and docs (same as rl-aux describe)
  --cfg job              print the resolved config as yaml and exit (also print_config=true)

Describe (fields with defaults, ranges/choices and one-line docs; lists of every name):
  rl-aux describe                       the groups
  rl-aux describe head=next_latent      one option's fields (agent=dqn, reward=blend, ...)
  rl-aux describe env                   every env (env=gymnax: one family); head, agent, ...

Docs: {DOCS}.
"""
