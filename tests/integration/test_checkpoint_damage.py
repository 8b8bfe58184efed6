"""Damaged and half-written checkpoints: resume falls back to the newest intact one.

One finished reference run is copied per test; a copy with status "running" is what a run
killed after its last checkpoint leaves. Resuming a damaged copy must give the reference's
metrics rows exactly (every column but wall-clock)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

from experiments.cli import main
from experiments.compose import load_config
from experiments.train import WALL_CLOCK_COLUMNS, run
from rl_aux.checkpoint import MANIFEST, Checkpointer

# 8 chunks of 512 steps, a checkpoint after each; keep=2 leaves steps 6 and 7
COMMON = [
    "total_timesteps=4096",
    "logger.log_interval=512",
    "checkpoint.every=512",
    "logger.progress=false",
    "eval.episodes=2",
]
TMP = ".orbax-checkpoint-tmp"


def _metrics(run_dir) -> pd.DataFrame:
    df = pd.read_csv(os.path.join(run_dir, "metrics.csv"))
    return df.drop(columns=list(WALL_CLOCK_COLUMNS))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> str:
    """A finished, uninterrupted run."""
    path = str(tmp_path_factory.mktemp("ckpt") / "reference")
    run(load_config([*COMMON, f"run_dir={path}"]), quiet=True)
    assert sorted(os.listdir(os.path.join(path, "checkpoints"))) == ["6", "7"]
    return path


def _killed_copy(reference: str, dest) -> str:
    """A copy of the reference as a run killed after its last checkpoint leaves it."""
    shutil.copytree(reference, dest)
    with open(os.path.join(dest, "status.json"), "w") as f:
        json.dump({"status": "running", "global_step": 4096}, f)
    return str(dest)


def _data_file(step_dir: str) -> str:
    """The largest file of a step's state: array data restore cannot do without."""
    files = [
        os.path.join(r, n) for r, _, ns in os.walk(os.path.join(step_dir, "state")) for n in ns
    ]
    return max(files, key=os.path.getsize)


def test_truncated_latest_checkpoint_falls_back_and_resumes_to_the_same_metrics(
    reference, tmp_path, capsys
):
    run_dir = _killed_copy(reference, tmp_path / "run")
    bad = _data_file(os.path.join(run_dir, "checkpoints", "7"))
    os.truncate(bad, os.path.getsize(bad) // 2)
    rel = os.path.relpath(bad, os.path.join(run_dir, "checkpoints", "7"))

    run(load_config([*COMMON, f"run_dir={run_dir}", "resume=true"]), quiet=True)

    warning = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warning) == 1, warning
    assert "checkpoint step 7 is damaged" in warning[0] and rel in warning[0]
    assert "resuming from step 6" in warning[0]
    pd.testing.assert_frame_equal(_metrics(reference), _metrics(run_dir))
    with open(os.path.join(run_dir, "config.yaml")) as f:  # a copied run dir resumes in place
        assert yaml.safe_load(f)["run_dir"] == run_dir
    assert os.path.isdir(os.path.join(run_dir, "checkpoints_damaged", "7"))  # kept, not deleted
    ckpt = Checkpointer(os.path.join(run_dir, "checkpoints"))
    try:
        assert ckpt.all_steps() == [6, 7] and ckpt.check(7) == []  # step 7 written anew
    finally:
        ckpt.close()


def test_manifest_names_missing_and_truncated_files(reference, tmp_path):
    run_dir = _killed_copy(reference, tmp_path / "run")
    step_dir = os.path.join(run_dir, "checkpoints", "6")
    os.remove(os.path.join(step_dir, "meta", "metadata"))
    bad = _data_file(step_dir)
    size = os.path.getsize(bad)
    os.truncate(bad, 0)
    ckpt = Checkpointer(os.path.join(run_dir, "checkpoints"))
    try:
        assert ckpt.check(7) == []
        problems = ckpt.check(6)
    finally:
        ckpt.close()
    rel = os.path.relpath(bad, step_dir)
    assert problems == sorted(["meta/metadata: missing", f"{rel}: 0 bytes, {size} written"])


def test_every_checkpoint_damaged_exits_2_naming_the_files(reference, tmp_path, capsys):
    run_dir = _killed_copy(reference, tmp_path / "run")
    ckpts = os.path.join(run_dir, "checkpoints")
    bad7 = _data_file(os.path.join(ckpts, "7"))
    os.truncate(bad7, 10)
    # step 6 as a crash right after orbax's rename may leave it: no manifest, a short file
    os.remove(os.path.join(ckpts, "6", MANIFEST))
    os.truncate(_data_file(os.path.join(ckpts, "6")), 10)
    before = sorted(os.listdir(ckpts))

    assert main(["train", *COMMON, f"run_dir={run_dir}", "resume=true"]) == 2
    err = capsys.readouterr().err
    assert "every checkpoint in" in err
    assert f"{os.path.relpath(bad7, os.path.join(ckpts, '7'))}: 10 bytes" in err
    assert os.path.join(ckpts, "6") in err and "does not restore" in err
    assert sorted(os.listdir(ckpts)) == before  # nothing moved: left for inspection
    assert not os.path.exists(os.path.join(run_dir, "checkpoints_damaged"))


def test_on_disk_state_of_a_kill_mid_write_resumes(reference, tmp_path, capsys):
    # A kill while step 7 was being written leaves 7's rows in metrics.csv (rows are logged
    # before the save), step 6 intact and a partial `7.orbax-checkpoint-tmp` directory.
    run_dir = _killed_copy(reference, tmp_path / "run")
    ckpts = os.path.join(run_dir, "checkpoints")
    os.rename(os.path.join(ckpts, "7"), os.path.join(ckpts, "7" + TMP))
    os.remove(os.path.join(ckpts, "7" + TMP, MANIFEST))  # written after orbax's rename
    os.truncate(_data_file(os.path.join(ckpts, "7" + TMP)), 10)

    run(load_config([*COMMON, f"run_dir={run_dir}", "resume=true"]), quiet=True)

    assert "warning" not in capsys.readouterr().err  # a tmp dir is no checkpoint: no damage
    pd.testing.assert_frame_equal(_metrics(reference), _metrics(run_dir))
    assert sorted(os.listdir(ckpts)) == ["6", "7"]  # the leftover tmp dir is gone


@pytest.mark.slow  # a fresh process (imports + compile: ~20 s on a loaded 2-core machine)
def test_sigkill_during_a_checkpoint_write_resumes_to_the_same_metrics(reference, tmp_path):
    run_dir = str(tmp_path / "killed")
    ckpts = os.path.join(run_dir, "checkpoints")
    cmd = [sys.executable, "-m", "experiments.cli", "train", *COMMON, f"run_dir={run_dir}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    writing = None
    deadline = time.time() + 240
    try:  # kill inside a write (a tmp dir exists) once an earlier checkpoint is complete
        while time.time() < deadline and proc.poll() is None:
            names = os.listdir(ckpts) if os.path.isdir(ckpts) else []
            tmp = [n for n in names if TMP in n]
            if tmp and any(n.isdigit() for n in names):
                writing = tmp[0]
                time.sleep(0.005)  # into the write (a CartPole step takes ~0.1 s to write)
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.001)
    finally:
        proc.kill()
        proc.wait()
    assert writing is not None, "the run ended before a checkpoint write could be caught"
    assert proc.returncode == -signal.SIGKILL
    assert os.path.exists(os.path.join(ckpts, writing)), "the write finished before the kill"

    run(load_config([*COMMON, f"run_dir={run_dir}", "resume=true"]), quiet=True)

    a, b = _metrics(reference), _metrics(run_dir)
    assert not b.duplicated(["global_step", "seed", "grid"]).any()
    pd.testing.assert_frame_equal(a, b)
    assert not [n for n in os.listdir(ckpts) if TMP in n]
