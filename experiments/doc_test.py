"""`RL_AUX_DOC_TEST=1`: shrink a training run to a smoke-test budget, loudly.

tests/integration/test_docs_commands.py runs the commands of README.md, docs/*.md and
docs/results/*.md; with this variable set, `experiments.train.run` caps each run (every
variant of an experiment, every job of `rl-aux sweep`) before anything compiles, prints what it
changed on stderr, and stores the capped config in the run's config.yaml. Unset (the default),
nothing changes.
"""

from __future__ import annotations

import dataclasses
import os
import sys

ENV_VAR = "RL_AUX_DOC_TEST"
UPDATES = 2  # learner updates per run
MAX_SEEDS = 2  # keeps "one seed" apart from "several" (resume=true compares num_seeds)
EVAL_EPISODES = 2
EVAL_MAX_STEPS = 100


def enabled() -> bool:
    """True when RL_AUX_DOC_TEST is set to 1."""
    return os.environ.get(ENV_VAR, "") == "1"


def cap(cfg, steps_per_update: int):
    """cfg with total_timesteps <= UPDATES updates, num_seeds, eval episodes/steps capped."""
    if not enabled():
        return cfg
    ev = cfg.eval
    new = dataclasses.replace(
        cfg,
        total_timesteps=min(cfg.total_timesteps, UPDATES * steps_per_update),
        num_seeds=min(cfg.num_seeds, MAX_SEEDS),
        eval=dataclasses.replace(
            ev,
            episodes=min(ev.episodes, EVAL_EPISODES),
            max_steps=min(ev.max_steps or EVAL_MAX_STEPS, EVAL_MAX_STEPS),
        ),
    )
    changes = [
        f"{name} {old} -> {now}"
        for name, old, now in (
            ("total_timesteps", cfg.total_timesteps, new.total_timesteps),
            ("num_seeds", cfg.num_seeds, new.num_seeds),
            ("eval.episodes", ev.episodes, new.eval.episodes),
            ("eval.max_steps", ev.max_steps, new.eval.max_steps),
        )
        if old != now
    ]
    if changes:
        print(f"{ENV_VAR}=1: budget capped [{cfg.label}]: {', '.join(changes)}", file=sys.stderr)
    return new
