"""A head outside the library trains with PPO and DQN through `plugins=[...]`: no library file
is edited.

The head is examples/plugins/inverse_dynamics.py, whose code (below its module docstring) is,
verbatim, the example of docs/add-an-auxiliary-head.md.
"""

import ast
import os

import pandas as pd
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(ROOT, "examples", "plugins", "inverse_dynamics.py")
PLUGIN = "plugins=[examples.plugins.inverse_dynamics]"


def _example_code() -> str:
    """The example file's text after its module docstring."""
    text = open(EXAMPLE).read()
    first_stmt = ast.parse(text).body[1].lineno  # body[0] is the docstring
    return "".join(text.splitlines(keepends=True)[first_stmt - 1 :])


def test_docs_show_exactly_this_head():
    doc = open(os.path.join(ROOT, "docs", "add-an-auxiliary-head.md")).read()
    assert _example_code().strip() in doc


@pytest.mark.parametrize("agent,steps", [("ppo", 40_000), ("dqn", 30_000)])
def test_new_head_trains_with_each_learner(tmp_path, monkeypatch, agent, steps):
    from experiments.compose import load_config
    from experiments.train import run

    monkeypatch.syspath_prepend(ROOT)  # `examples` is importable from the repository root
    run_dir = str(tmp_path / agent)
    cfg = load_config(
        [
            PLUGIN,
            f"agent={agent}",
            "head=inverse_dynamics",
            "num_seeds=2",
            f"total_timesteps={steps}",
            f"run_dir={run_dir}",
            "agent.num_envs=8",
            "heads.inverse_dynamics.weight=0.5",
            "logger.progress=false",
            *(["agent.learning_starts=2000"] if agent == "dqn" else []),
        ]
    )
    run(cfg, quiet=True)
    df = pd.read_csv(os.path.join(run_dir, "metrics.csv"))
    loss = df["aux/inverse_dynamics/loss"].dropna()
    acc = df["aux/inverse_dynamics/accuracy"].dropna()
    assert len(df["seed"].unique()) == 2
    # CartPole has 2 actions; a learned inverse model beats chance (loss < ln 2 = 0.693).
    assert loss.iloc[-4:].mean() < 0.6, loss.tail()
    assert acc.iloc[-4:].mean() > 0.6, acc.tail()
