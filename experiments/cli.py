"""`rl-aux` command line: train, plot, bench. Bad input exits with code 2 and a clear message."""

from __future__ import annotations

import sys

USAGE = """usage: rl-aux {train,sweep,plot,eval,bench} ...

  rl-aux train [hydra overrides...]   e.g. rl-aux train agent=ppo env=gymnax/CartPole-v1 num_seeds=4
  rl-aux sweep [overrides...]         hydra multirun: head=a,b env=x,y [hydra/launcher=slurm|ray]
  rl-aux plot RUN_DIR... --out DIR    learning curves + IQM table from logged runs
  rl-aux plot --figure NAME           a figure spec of experiments/figures/ (rliable panels)
  rl-aux eval RUN_DIR [--checkpoint N] [--episodes K] [--epsilon E] [--video]
                                      returns per seed (95% CI) of a checkpoint, JSON, GIFs
  rl-aux bench --suite core [--json FILE]   env steps/s, side by side with the raw env
  rl-aux bench --suite nethack        NLE/MiniHack: single env, vector env, recurrent PPO
"""


def train_main(argv: list[str]) -> int:
    from experiments.config import ConfigError, load_config

    if any(a in ("-h", "--help") for a in argv):
        print(
            USAGE + "\nOverrides: agent=ppo|dqn, env=gymnax/<task>, head=[a,b], "
            "experiment=<name>, num_seeds, total_timesteps, seed, run_dir, resume=true|auto, "
            "grid.lr=[...], logger.wandb.mode=offline, ..."
        )
        return 0
    try:
        cfg = load_config(argv)
    except ConfigError as e:
        print(f"rl-aux train: config error: {e}", file=sys.stderr)
        return 2
    from experiments.preempt import NonFiniteLoss, Preempted
    from experiments.train import ResumeMismatch, run_experiment
    from rl_aux.checkpoint import CheckpointDamaged

    try:
        run_experiment(cfg, argv)
    except ConfigError as e:
        print(f"rl-aux train: config error: {e}", file=sys.stderr)
        return 2
    except (FileExistsError, ResumeMismatch, CheckpointDamaged) as e:
        print(f"rl-aux train: {e}", file=sys.stderr)
        return 2
    except NonFiniteLoss as e:
        print(f"rl-aux train: {e}", file=sys.stderr)
        return 3
    except Preempted as e:
        print(f"rl-aux train: {e}", file=sys.stderr)
        return e.exit_code
    return 0


def plot_main(argv: list[str]) -> int:
    """`rl-aux plot`: a figure spec with --figure (figure_spec.py), else curves (plot.py).

    The choice is made here so that plot.py, which figure_spec.py builds on, never imports it.
    """
    if any(a == "--figure" or a.startswith("--figure=") for a in argv):
        from experiments import figure_spec  # a spec in experiments/figures

        return figure_spec.main(argv)
    from experiments import plot

    return plot.main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "train":
        return train_main(rest)
    if cmd == "sweep":
        from experiments import sweep

        return sweep.main(rest)
    if cmd == "plot":
        return plot_main(rest)
    if cmd == "eval":
        from experiments import evaluate

        return evaluate.main(rest)
    if cmd == "bench":
        from experiments import bench

        return bench.main(rest)
    print(
        f"rl-aux: unknown command {cmd!r}; accepted: train, sweep, plot, eval, bench\n\n{USAGE}",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
