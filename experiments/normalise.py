"""Score normalisation for figures: none, fixed min/max, per-task references, Atari human.

Atari human-normalised score = (score - random) / (human - random), with the 57-game random
and human reference scores of Badia et al. 2020 (Agent57), shipped as
experiments/figures/atari_random_human.csv (source noted in the file's header).
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable
from functools import cache

from experiments.plot import PlotError

ATARI_TABLE = os.path.join(os.path.dirname(__file__), "figures", "atari_random_human.csv")


@cache
def atari_reference() -> dict[str, tuple[float, float]]:
    """game (snake_case) -> (random score, human score) for the 57 Atari games."""
    with open(ATARI_TABLE) as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        return {r["game"]: (float(r["random"]), float(r["human"])) for r in rows}


def atari_game(task: str) -> str:
    """'ALE/MsPacman-v5', 'atari/ms_pacman', 'MsPacmanNoFrameskip-v4' -> 'ms_pacman'."""
    name = task.rsplit("/", 1)[-1]
    name = re.sub(r"-v\d+$", "", name).replace("NoFrameskip", "").replace("Deterministic", "")
    if "_" not in name:
        name = re.sub(r"(?<!^)(?=[A-Z])", "_", name)
    return name.lower()


def normaliser(spec: str | dict | None) -> Callable[[str, float], float]:
    """A (task, score) -> normalised score function from a figure spec's `normalise` field.

    Accepted: none | atari_human | {min: a, max: b} | {per_task: {task: [min, max]}}."""
    if spec in (None, "none"):
        return lambda task, x: x
    if spec == "atari_human":
        table = atari_reference()

        def atari(task: str, x: float) -> float:
            game = atari_game(task)
            if game not in table:
                raise PlotError(
                    f"normalise=atari_human: task {task!r} (game {game!r}) is not one of the "
                    f"57 Atari games: {', '.join(sorted(table))}"
                )
            lo, hi = table[game]
            return (x - lo) / (hi - lo)

        return atari
    if isinstance(spec, dict) and set(spec) == {"min", "max"}:
        lo, hi = float(spec["min"]), float(spec["max"])
        if hi == lo:
            raise PlotError(f"normalise: min and max are both {lo}")
        return lambda task, x: (x - lo) / (hi - lo)
    if isinstance(spec, dict) and set(spec) == {"per_task"}:
        refs = {t: (float(a), float(b)) for t, (a, b) in spec["per_task"].items()}

        def per_task(task: str, x: float) -> float:
            if task not in refs:
                raise PlotError(f"normalise.per_task has no entry for task {task!r}")
            lo, hi = refs[task]
            return (x - lo) / (hi - lo)

        return per_task
    raise PlotError(
        f"normalise={spec!r}; accepted: none, atari_human, {{min: A, max: B}}, "
        "{per_task: {TASK: [MIN, MAX]}}"
    )
