"""The import contracts (pyproject.toml, `lint-imports`) hold, and break on a bad import.

Each bad-import case copies the four packages and pyproject.toml to a temporary directory,
appends one import to one module there and runs lint-imports on the copy: it must fail and
name the contract and the import. Imports inside functions count as well (grimp reads them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGES = ("rl_aux", "agents", "envs", "experiments")
LINT_IMPORTS = os.path.join(os.path.dirname(sys.executable), "lint-imports")


def lint_imports(root: str) -> subprocess.CompletedProcess:
    """lint-imports on the tree at `root`: its pyproject.toml, its packages first on the path."""
    env = {**os.environ, "PYTHONPATH": root}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"], cwd=root, env=env, capture_output=True, text=True
    )


def test_the_tree_keeps_every_import_contract():
    res = lint_imports(ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout, res.stdout


@pytest.mark.parametrize(
    "module, line, expected",
    [
        ("rl_aux/replay.py", "import experiments", "rl_aux is not allowed to import experiments"),
        ("rl_aux/learner.py", "from agents import dqn", "rl_aux is not allowed to import agents"),
        ("rl_aux/heads/future.py", "import envs.memory", "rl_aux is not allowed to import envs"),
        (
            "agents/ppo.py",
            "def f():\n    from experiments.train import build_agent",
            "agents is not allowed to import experiments",
        ),
        ("envs/core.py", "import rl_aux.heads.suite", "envs is not allowed to import rl_aux"),
        ("envs/memory.py", "import agents.dqn", "envs is not allowed to import agents"),
        ("rl_aux/types.py", "import rl_aux.learner", "rl_aux.types is not allowed to import"),
        (
            "rl_aux/heads/base.py",
            "def f():\n    from rl_aux.heads import future",
            "No cycles are allowed in rl_aux.heads",
        ),
        (
            "experiments/plot.py",
            "import experiments.sources",
            "No cycles are allowed in experiments",
        ),
    ],
)
def test_a_bad_import_breaks_a_contract(tmp_path, module, line, expected):
    for pkg in PACKAGES:
        shutil.copytree(
            os.path.join(ROOT, pkg),
            tmp_path / pkg,
            ignore=shutil.ignore_patterns("__pycache__", "data", "configs", "figures"),
        )
    shutil.copy(os.path.join(ROOT, "pyproject.toml"), tmp_path / "pyproject.toml")
    with open(tmp_path / module, "a") as f:
        f.write(f"\n{line}\n")
    res = lint_imports(str(tmp_path))
    assert res.returncode == 1, res.stdout + res.stderr
    assert expected in res.stdout, res.stdout
    assert "BROKEN" in res.stdout
