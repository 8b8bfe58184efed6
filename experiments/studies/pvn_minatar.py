"""PVN on MinAtar Breakout: pre-train on our own DQN's transitions, then linear evaluation.

1. End-to-end DQN (`experiment=dqn_minatar`, seeds vmapped or mapped); seed 0 logs its
   transitions (`logger.save_transitions=true`). This run is also the end-to-end baseline.
2. PVN pre-training on those transitions (`experiment=pvn_pretrain_minatar`, the same torso).
3. Linear evaluation at the same interaction budget as step 1 (`experiment=
   pvn_linear_eval_minatar`): a linear Q layer on the frozen PVN torso, and on a random frozen
   torso of the same shape (`agent.pretrained=""`), with the DQN settings of step 1.
4. `rl-aux plot` of the three arms (greedy evaluation return) and a JSON summary.

    PYTHONPATH=. nice -n 10 python -m experiments.studies.pvn_minatar --out runs/pvn_minatar

Every step is an ordinary run dir: run again, the script skips finished steps and resumes a
stopped one.
"""

from __future__ import annotations

import argparse
import json
import os

import rl_aux  # noqa: F401  (XLA flag first)
from experiments import plot
from experiments.compose import load_config
from experiments.train import run

ARMS = {  # label -> overrides of the linear-evaluation experiment
    "pvn_frozen": [],
    "random_frozen": ["agent.pretrained="],
}


def steps(args) -> list[tuple[str, list[str]]]:
    """(run dir, overrides) of every training run, in order."""
    out, common = args.out, [f"logger.progress={str(args.progress).lower()}"]
    budget = [f"total_timesteps={args.steps}", f"num_seeds={args.seeds}"]
    budget += [f"run_batching={args.run_batching}", f"eval.every={args.eval_every}"]
    todo = [
        (f"{out}/dqn", ["experiment=dqn_minatar", *budget, "logger.save_transitions=true"]),
        (
            f"{out}/pretrain",
            [
                "experiment=pvn_pretrain_minatar",
                f"agent.dataset={out}/dqn/transitions",
                f"total_timesteps={args.pretrain_steps}",
                f"num_seeds={args.pretrain_seeds}",
            ],
        ),
    ]
    for label, extra in ARMS.items():
        over = ["experiment=pvn_linear_eval_minatar", f"agent.pretrained={out}/pretrain", *budget]
        todo.append((f"{out}/{label}", [*over, *extra, f"label={label}"]))
    return [(d, [*o, *common, f"run_dir={d}"]) for d, o in todo]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/pvn_minatar")
    ap.add_argument("--steps", type=int, default=300_000, help="env steps of every DQN arm")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--pretrain-steps", type=int, default=30_000, help="PVN gradient steps")
    ap.add_argument("--pretrain-seeds", type=int, default=1)
    ap.add_argument("--eval-every", type=int, default=25_000)
    ap.add_argument("--run-batching", default="map", choices=("vmap", "map"))
    ap.add_argument("--final-frac", type=float, default=0.2, help="plot: final share of a curve")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args(argv)
    for run_dir, overrides in steps(args):
        print(f"== {run_dir}: {' '.join(overrides)}", flush=True)
        if os.path.exists(os.path.join(run_dir, "pvn_params.msgpack")):
            print("   (pre-trained already: skipped)", flush=True)
            continue
        overrides = [*overrides, "resume=auto"]  # finished: skipped; stopped: continued
        run(load_config(overrides), quiet=False)
    arms = [f"{args.out}/dqn", *(f"{args.out}/{label}" for label in ARMS)]
    metric = "eval/episodic_return"
    title = "PVN on MinAtar Breakout: linear evaluation vs end-to-end DQN"
    _, finals, written = plot.make_plots(arms, f"{args.out}/plots", metric, args.final_frac, title)
    print(f"final {metric} (IQM over seeds, 95% CI):\n{plot.format_table(finals)}")
    for path in written:
        print(f"wrote {path}")
    with open(f"{args.out}/summary.json", "w") as f:
        json.dump({"args": vars(args), "final": finals.to_dict(orient="records")}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
