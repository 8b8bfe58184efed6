"""Every shell command of README.md, docs/*.md and docs/results/*.md runs as written.

What counts as a command: each line (backslash continuations joined, `#` comment lines and
blank lines dropped; in ```console blocks only lines after `$ `) of every fenced block tagged
```bash, ```sh or ```console. Inline `code` in prose is not run. An untagged fenced block or an
indented block that starts with a command fails `test_shell_blocks_are_tagged`, so no command
hides from this test.

How they run: in bash, in a fresh temporary directory per doc block (commands of one block
share it, so `rl-aux plot runs/x` finds what `rl-aux train run_dir=runs/x` wrote), with
`rl-aux` and `python` on PATH pointing at this checkout, and with RL_AUX_DOC_TEST=1, which
makes `experiments.train.run` cap every run at 2 updates, 2 seeds, 2 eval episodes of <= 100
steps and print that cap (experiments/doc_test.py). Study scripts and benchmarks have their
own budget flags; the test appends BUDGET_ARGS to them (argparse: the last value wins) and
prints the command it ran.

Skips: a doc marks a block `<!-- doc-test: skip (reason) -->`, or one command of the next block
`<!-- doc-test: skip "command prefix" (reason) -->`, on the lines just before it. A skipped
command is reported by name with its reason; a skipped `rl-aux train` command is still
composed and validated (no compile), so a config error in it fails.

Split: FAST (one command per distinct code path: PPO and DQN on a JAX env, heads and grids,
resume, plot, a plugin head, the reward blend, a host-stepped NLE env, an experiment with
variants) runs by default, ~2-3 min on 2 idle cores, except those in IN_GOLDEN, whose paths the
golden runs already train by default; every other command is
`@pytest.mark.slow` (`pytest -m slow tests/integration/test_docs_commands.py`; tens of minutes).
DEPENDS
names the earlier command of the same block whose output a command reads; it runs first.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "docs" / "results").glob("*.md")),
]
SHELL_TAGS = ("bash", "sh", "console")
COMMAND_START = re.compile(r"^(?:(?:rl-aux|python|make|pytest|nice)\b|PYTHONPATH=)")
MARKER = re.compile(r'^<!--\s*doc-test:\s*skip\s*(?:"([^"]+)")?\s*\((.+)\)\s*-->\s*$')

# (doc, command prefix): the default, fast set.
FAST = [
    (
        "README.md",
        "rl-aux train agent=ppo env=gymnax/CartPole-v1 num_seeds=4 total_timesteps=500000 "
        "run_dir=runs/cartpole$",
    ),
    ("README.md", "rl-aux train experiment=dqn_cartpole head=reward_pred"),
    ("README.md", "rl-aux train head=next_latent grid.lr="),
    (
        "README.md",
        "rl-aux train agent=ppo env=gymnax/CartPole-v1 num_seeds=4 total_timesteps=500000 "
        "run_dir=runs/cartpole resume=true",
    ),
    ("README.md", "rl-aux plot runs/cartpole"),
    (
        "add-an-auxiliary-head.md",
        "PYTHONPATH=. rl-aux train plugins=[examples.plugins.inverse_dynamics] agent=ppo",
    ),
    ("bilevel-and-balancers.md", "rl-aux train agent=ppo env=barfi/grid-centre reward=blend"),
    ("nethack.md", "rl-aux train experiment=minihack_ppo agent.network.core=none"),
    ("sweeps.md", "rl-aux train experiment=sweep_cartpole$"),
]
# (doc, command prefix) -> (doc, command prefix) of the earlier command whose output it reads
DEPENDS = {
    FAST[3]: FAST[0],
    FAST[4]: FAST[0],
    ("add-an-auxiliary-head.md", "rl-aux plot"): FAST[5],
    ("results/future-prediction.md", "python -m experiments.studies.future_analysis"): (
        "results/future-prediction.md",
        "rl-aux train experiment=future_tmaze",
    ),
    ("results/future-prediction.md", "rl-aux plot runs/fs_grid_transfer"): (
        "results/future-prediction.md",
        "PYTHONPATH=. python -m experiments.studies.fs_grid_transfer --out runs/fs_grid_transfer",
    ),
    ("llm-subgoal-rewards.md", "rl-aux plot runs/llm_keyroom_ppo"): (
        "llm-subgoal-rewards.md",
        "rl-aux train experiment=llm_keyroom_ppo",
    ),
    ("sweeps.md", "rl-aux train experiment=sweep_cartpole resume=true"): FAST[8],
    **{
        ("evaluate.md", f"rl-aux eval runs/cp{tail}"): ("evaluate.md", "rl-aux train agent=ppo")
        for tail in ("$", " --episodes", " --video")
    },
}
# command prefix -> flags appended to shrink a study script or benchmark (not `rl-aux train`)
BUDGET_ARGS = {
    "rl-aux bench": ["--repeats", "1", "--scale", "0.01", "--seeds", "1"],
    "python -m experiments.studies.fs_grid_transfer": [
        *("--seeds", "1", "--phase-steps", "400", "--eval-every", "200"),
    ],
    "PYTHONPATH=. python -m experiments.studies.fs_grid_transfer": [
        *("--seeds", "1", "--phase-steps", "400", "--eval-every", "200"),
    ],
    "python -m experiments.studies.future_analysis": ["--episodes", "2"],
    "python -m experiments.studies.balancer_cartpole": ["--seeds", "1", "--steps", "2048"],
}
FAST_TIMEOUT_S, SLOW_TIMEOUT_S = 600, 3600


@dataclasses.dataclass(frozen=True)
class Command:
    doc: str  # path under docs/ (README.md for the README), e.g. results/pvn.md
    line: int  # 1-based line of the command in the doc
    block: int  # 1-based line of the block's opening fence
    text: str  # the command, continuations joined
    skip: str | None  # reason, when the doc marks it skipped

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}: {self.text[:90]}"

    @property
    def bare(self) -> str:
        """The command without a trailing `# comment`, whitespace collapsed (for matching)."""
        return " ".join(re.split(r"\s+#\s", self.text, maxsplit=1)[0].split())

    def matches(self, key: tuple[str, str]) -> bool:
        """key = (doc, prefix of the bare command); a prefix ending in `$` must match whole."""
        prefix = key[1]
        if prefix.endswith("$"):
            return self.doc == key[0] and self.bare == prefix[:-1]
        return self.doc == key[0] and self.bare.startswith(prefix)


def _markers_before(lines: list[str], fence: int) -> list[tuple[str | None, str]]:
    """The skip markers on the lines just above line index `fence` (blank lines allowed)."""
    out, i = [], fence - 1
    while i >= 0 and (not lines[i].strip() or MARKER.match(lines[i].strip())):
        m = MARKER.match(lines[i].strip())
        if m:
            out.append((m.group(1), m.group(2).strip()))
        i -= 1
    return out


def _block_commands(body: list[tuple[int, str]], tag: str) -> list[tuple[int, str]]:
    """(line, command) of a block's lines: continuations joined, comments/blanks dropped."""
    cmds: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for no, raw in body:
        line = raw.rstrip()
        if pending is None:
            if tag == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            pending = (no, line.strip())
        else:
            pending = (pending[0], pending[1] + " " + line.strip())
        if pending[1].endswith("\\"):
            pending = (pending[0], pending[1][:-1].rstrip())
            continue
        cmds.append(pending)
        pending = None
    if pending is not None:
        cmds.append(pending)
    return cmds


def _doc_name(path: Path) -> str:
    """How FAST and DEPENDS name a doc: its path under docs/, or README.md."""
    docs = ROOT / "docs"
    return str(path.relative_to(docs)) if path.is_relative_to(docs) else path.name


def extract(path: Path) -> list[Command]:
    """Every command of the shell-tagged fenced blocks of one markdown file."""
    lines = path.read_text().splitlines()
    out: list[Command] = []
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        tag, start = fence.group(1), i
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        if tag in SHELL_TAGS:
            markers = _markers_before(lines, start)
            body = [(k + 1, lines[k]) for k in range(start + 1, j)]
            for no, text in _block_commands(body, tag):
                reason = next((r for p, r in markers if p is None or text.startswith(p)), None)
                out.append(Command(_doc_name(path), no, start + 1, text, reason))
        i = j + 1
    return out


ALL = [c for p in DOCS for c in extract(p)]


def _find(key: tuple[str, str]) -> Command:
    hits = [c for c in ALL if c.matches(key)]
    assert len(hits) == 1, f"{key} matches {len(hits)} documented commands (want exactly 1)"
    return hits[0]


# FAST commands whose code path the golden runs (tests/integration/test_golden.py) already
# train by default; they run with -m slow, to keep the default suite inside CI's budget.
IN_GOLDEN = [FAST[1], FAST[2], FAST[6]]


def _is_fast(c: Command) -> bool:
    return any(c.matches(k) for k in FAST if k not in IN_GOLDEN)


def _params() -> list:
    out = []
    for c in ALL:
        marks = [] if _is_fast(c) or c.skip else [pytest.mark.slow]
        out.append(pytest.param(c, id=c.id, marks=marks))
    return out


@pytest.fixture(scope="session")
def doc_runner(tmp_path_factory):
    """Runs commands once per session, each block in its own directory; returns results."""
    shims = tmp_path_factory.mktemp("doc_bin")
    path = f"{ROOT}${{PYTHONPATH:+:$PYTHONPATH}}"
    for name, target in (("rl-aux", "-m experiments.cli"), ("python", "")):
        f = shims / name
        f.write_text(f'#!/bin/sh\nPYTHONPATH="{path}" exec {sys.executable} {target} "$@"\n')
        f.chmod(0o755)
    env = {**os.environ, "RL_AUX_DOC_TEST": "1", "PATH": f"{shims}:{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    env["PYTHONUNBUFFERED"] = "1"
    dirs: dict[tuple[str, int], Path] = {}
    done: dict[Command, subprocess.CompletedProcess] = {}

    def run(c: Command, timeout: int) -> subprocess.CompletedProcess:
        dep = next((d for k, d in DEPENDS.items() if c.matches(k)), None)
        if dep is not None:
            first = run(_find(dep), timeout)
            if first.returncode != 0:
                pytest.fail(f"{c.id}: needs {dep[1]!r}, which failed (rc {first.returncode})")
        if c not in done:
            key = (c.doc, c.block)
            if key not in dirs:
                stem = c.doc.split(".")[0].replace("/", "_")
                dirs[key] = tmp_path_factory.mktemp(f"doc_{stem}_{c.block}")
            extra = next((a for p, a in BUDGET_ARGS.items() if c.text.startswith(p)), [])
            cmd = " ".join([c.text, *extra])
            print(f"\n[doc-test] {c.doc}:{c.line} in {dirs[key]}\n$ {cmd}", flush=True)
            done[c] = subprocess.run(
                ["bash", "-c", cmd],
                cwd=dirs[key],
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            print(done[c].stdout[-3000:], done[c].stderr[-3000:], sep="\n", flush=True)
        return done[c]

    return run


def _config_check(c: Command) -> None:
    """A skipped `rl-aux train` command still composes and validates (exit 2 on bad input)."""
    args = shlex.split(c.text, comments=True)
    if args[:2] != ["rl-aux", "train"]:
        return
    from experiments.compose import ConfigError, load_config

    try:
        load_config(args[2:])
    except ConfigError as e:
        pytest.fail(f"{c.id}: config error: {e}")


@pytest.mark.parametrize("cmd", _params())
def test_documented_command_runs(cmd: Command, doc_runner):
    if cmd.skip:
        _config_check(cmd)
        pytest.skip(f"{cmd.doc}:{cmd.line} `{cmd.text[:70]}`: {cmd.skip}")
    res = doc_runner(cmd, FAST_TIMEOUT_S if _is_fast(cmd) else SLOW_TIMEOUT_S)
    assert res.returncode == 0, (
        f"{cmd.id}\nexit code {res.returncode}\n--- stdout (tail)\n{res.stdout[-2000:]}"
        f"\n--- stderr (tail)\n{res.stderr[-4000:]}"
    )


def test_fast_and_depends_name_documented_commands():
    for key in [*FAST, *DEPENDS, *DEPENDS.values()]:
        _find(key)
    assert all(not _find(k).skip for k in FAST), "a FAST command is marked skipped"


def test_shell_blocks_are_tagged():
    """Commands live in ```bash blocks: none in an untagged fence or an indented block."""
    bad = []
    for path in DOCS:
        lines = path.read_text().splitlines()
        in_fence = False
        for i, line in enumerate(lines):
            if line.startswith("```"):
                if not in_fence and line.strip() == "```":
                    nxt = next((x for x in lines[i + 1 :] if x.strip()), "")
                    if COMMAND_START.match(nxt.strip()):
                        bad.append(f"{path.name}:{i + 1}: untagged fence holds `{nxt.strip()}`")
                in_fence = not in_fence
                continue
            prev_blank = i == 0 or not lines[i - 1].strip()
            indented = line.startswith("    ") and not in_fence and prev_blank
            if indented and COMMAND_START.match(line.strip()):
                bad.append(f"{path.name}:{i + 1}: indented block holds `{line.strip()}`")
    assert not bad, "tag shell commands as ```bash blocks:\n" + "\n".join(bad)


def test_commands_extract_as_written():
    """The extractor joins continuations, drops comments and applies skip markers."""
    doc = ROOT / "README.md"
    text = doc.read_text()
    assert "```bash" in text and len(ALL) >= 20, len(ALL)
    body = [(1, "rl-aux train a=1 \\"), (2, "    b=2  # two"), (3, "# note"), (4, "make x")]
    assert _block_commands(body, "bash") == [(1, "rl-aux train a=1 b=2  # two"), (4, "make x")]
    assert _block_commands([(1, "$ ls"), (2, "out")], "console") == [(1, "ls")]
    lines = ['<!-- doc-test: skip "rl-aux sweep" (needs a Slurm cluster) -->', "", "```bash"]
    assert _markers_before(lines, 2) == [("rl-aux sweep", "needs a Slurm cluster")]
