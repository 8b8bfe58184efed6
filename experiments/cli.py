"""`rl-aux` command line: train, plot, bench. Bad input exits with code 2 and a clear message."""

from __future__ import annotations

import sys

USAGE = """usage: rl-aux {train,sweep,plot,eval,bench,describe} ...

  rl-aux train [hydra overrides...]   e.g. rl-aux train agent=ppo env=gymnax/CartPole-v1 num_seeds=4
  rl-aux train --help                 config groups, their options, the top-level keys
  rl-aux train --cfg job [overrides]  print the resolved config and exit
  rl-aux describe [GROUP[=OPTION]]    e.g. describe head=next_latent (fields, ranges, docs);
                                      describe env (every env by family)
  rl-aux sweep [overrides...]         hydra multirun: head=a,b env=x,y [hydra/launcher=slurm|ray]
  rl-aux plot RUN_DIR... --out DIR    learning curves + IQM table from logged runs
  rl-aux plot --figure NAME           a figure spec of experiments/figures/ (rliable panels)
  rl-aux eval RUN_DIR [--checkpoint N] [--episodes K] [--epsilon E] [--video]
                                      returns per seed (95% CI) of a checkpoint, JSON, GIFs
  rl-aux bench --suite core [--json FILE]   env steps/s, side by side with the raw env
  rl-aux bench --suite nethack        NLE/MiniHack: single env, vector env, recurrent PPO

Bad input exits 2 with a message naming the field, the value and what is accepted.
Docs: README.md and docs/*.md.
"""
# overrides `rl-aux train --help` describes instead of the general help (describe's groups)
DESCRIBED = ("agent", "head", "reward", "env", "experiment", "agent.balancer", "balancer")
COMMANDS = ("train", "sweep", "plot", "eval", "bench", "describe")


def split_print_config(argv: list[str]) -> tuple[list[str], bool, str]:
    """Strip `--cfg job` / `-c job` / `print_config=true` from argv: (overrides, print it?,
    error message or '')."""
    out, show, err = [], False, ""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--cfg", "-c") or a.startswith("--cfg="):
            value = a.partition("=")[2] if "=" in a else (argv[i + 1] if i + 1 < len(argv) else "")
            i += 1 if "=" in a else 2
            if value not in ("job", "all"):
                err = f"--cfg {value or '(missing)'!r}: accepted: job (the resolved train config)"
            show = True
            continue
        key, eq, value = a.partition("=")
        if eq and key.lstrip("+") == "print_config":
            if value.lower() not in ("true", "false"):
                err = f"print_config={value!r} must be true or false"
            show = show or value.lower() == "true"
        else:
            out.append(a)
        i += 1
    return out, show, err


def train_help(argv: list[str]) -> int:
    """`rl-aux train --help`: the general help (no jax import), or, with group=option
    overrides (head=next_latent --help), that option's fields (same as `rl-aux describe`)."""
    asked = [a for a in argv if "=" in a and a.partition("=")[0] in DESCRIBED]
    if asked:
        from experiments import describe

        plugins = [a for a in argv if a.startswith("plugins=")]
        return describe.main([*plugins, *asked])
    from experiments.catalog import train_help as text

    print(text())
    return 0


def train_main(argv: list[str]) -> int:
    """`rl-aux train`: exit 0 done, 2 bad input (before any compile), 3 diverged, or the
    preemption code."""
    if any(a in ("-h", "--help") for a in argv):
        return train_help([a for a in argv if a not in ("-h", "--help")])
    argv, show, err = split_print_config(argv)
    if err:
        print(f"rl-aux train: {err}", file=sys.stderr)
        return 2
    from experiments.compose import ConfigError, check_run_dir, load_config

    try:
        cfg = load_config(argv)
        if show:
            import yaml

            from rl_aux.run_store import scrub_secrets

            print(yaml.safe_dump(scrub_secrets(cfg.to_yaml_dict()), sort_keys=False), end="")
            return 0
        check_run_dir(cfg.run_dir)
    except ConfigError as e:
        print(f"rl-aux train: config error: {e}", file=sys.stderr)
        return 2
    from experiments.train import ResumeMismatch, run_experiment
    from rl_aux.checkpoint import CheckpointDamaged
    from rl_aux.run_loop import NonFiniteLoss, Preempted

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
    if cmd == "describe":
        from experiments import describe

        return describe.main(rest)
    print(
        f"rl-aux: unknown command {cmd!r}; accepted: {', '.join(COMMANDS)}\n\n{USAGE}",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
