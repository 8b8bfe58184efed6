"""Resume pitfalls: nothing to resume, resume=auto, moved run dirs, runners that cannot resume.

Each refusal exits 2 with a message naming the field and value, before any training starts."""

import os

import pytest
import yaml

from experiments.cli import main
from experiments.train import ResumeMismatch, check_resumable

TINY = ["total_timesteps=4096", "logger.log_interval=512", "logger.progress=false"]


@pytest.mark.parametrize("state", ["missing", "empty", "no_run"])
def test_resume_true_with_nothing_to_resume_exits_2(tmp_path, capsys, state):
    run_dir = tmp_path / "run"
    what = {"missing": "does not exist", "empty": "is empty", "no_run": "holds no run"}[state]
    if state != "missing":
        run_dir.mkdir()
    if state == "no_run":
        (run_dir / "notes.txt").write_text("not a run")
    assert main(["train", *TINY, f"run_dir={run_dir}", "resume=true"]) == 2
    err = capsys.readouterr().err
    assert f"resume=true but run_dir='{run_dir}' {what}" in err
    assert "resume=auto" in err and "resume=false" in err  # what is accepted
    assert os.path.exists(run_dir) == (state != "missing")  # nothing created
    if state != "missing":
        assert sorted(os.listdir(run_dir)) == ([] if state == "empty" else ["notes.txt"])


def test_resume_true_on_an_unstarted_experiment_exits_2(tmp_path, capsys):
    args = ["experiment=sweep_cartpole", f"run_dir={tmp_path / 'exp'}", "resume=true", *TINY]
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert "resume=true but no variant of experiment 'sweep_cartpole' has started" in err
    assert str(tmp_path / "exp" / "reward_pred") in err


def test_bad_resume_value_names_the_choices(tmp_path, capsys):
    assert main(["train", *TINY, f"run_dir={tmp_path}", "resume=yes"]) == 2
    err = capsys.readouterr().err
    assert "resume='yes'" in err and "auto" in err


def test_resume_auto_starts_fresh_and_diverging_first_chunk_says_no_checkpoint(tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = [*TINY, f"run_dir={run_dir}", "agent.lr=1e20"]
    assert main(["train", *args, "resume=auto"]) == 3  # fresh start, NaN in chunk 0
    err = capsys.readouterr().err
    assert "non-finite loss" in err and "chunk None" not in err
    assert "has no checkpoint yet" in err and "new run_dir" in err
    assert os.path.exists(run_dir / "metrics.csv")
    # now there is a run: auto resumes, so a changed config is refused like resume=true's
    assert main(["train", *args, "resume=auto", "num_seeds=2"]) == 2
    assert "num_seeds: 1 -> 2" in capsys.readouterr().err


def _write_config(run_dir, resolved: dict) -> None:
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "config.yaml"), "w") as f:
        yaml.safe_dump(resolved, f)


def test_a_moved_run_dir_compares_its_config_without_the_location(tmp_path):
    old, new = str(tmp_path / "old" / "run"), str(tmp_path / "elsewhere" / "run2")
    stored = {"run_dir": old, "seed": 0, "agent": {"dataset": f"{old}/transitions"}}
    _write_config(new, stored)  # the stored config still names the old place
    moved = {"run_dir": new, "seed": 0, "agent": {"dataset": f"{new}/transitions"}}
    check_resumable(new, moved)  # run_dir and the path under it moved with it: resumes
    with pytest.raises(ResumeMismatch, match="seed: 0 -> 1"):
        check_resumable(new, {**moved, "seed": 1})
    with pytest.raises(ResumeMismatch, match="agent.dataset"):  # a path elsewhere did change
        check_resumable(new, {**moved, "agent": {"dataset": "/data/other"}})


@pytest.fixture
def no_env(monkeypatch):
    """Fail the test if training gets as far as building the env (NLE workers) or agent."""
    import experiments.train as train

    def refuse(*a, **k):
        raise AssertionError("the env was built: the refusal came too late")

    monkeypatch.setattr(train, "build_agent", refuse)
    monkeypatch.setattr(train, "make_env", refuse)


@pytest.mark.parametrize(
    "extra, field",
    [
        (["grid.lr=[0.001,0.0003]"], "grid.lr=[0.001, 0.0003]: env={env} is trained by the host"),
        # a host reward source keeps state outside the checkpoint (auto: the dir holds a run)
        (["resume=true", "reward=keyroom_oracle"], "resume=true with reward=keyroom_oracle: on"),
        (["resume=auto", "reward=keyroom_oracle"], "resume=auto with reward=keyroom_oracle: on"),
    ],
)
def test_host_loop_refusals_exit_2_before_any_worker_starts(tmp_path, capsys, no_env, extra, field):
    pytest.importorskip("minihack")
    _write_config(tmp_path, {"run_dir": str(tmp_path)})
    env = "minihack/Room-5x5-v0"
    args = [f"env={env}", f"run_dir={tmp_path}", "logger.progress=false", *extra]
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert field.format(env=env) in err
    assert "Traceback" not in err
    assert "Accepted" in err
