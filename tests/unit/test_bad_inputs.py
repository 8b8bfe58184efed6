"""Every bad input exits 2 before any compile, naming the field or file, the value and what is
accepted; `--help` stays jax-free; the light name catalogue equals the live registries."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from experiments import catalog
from experiments.cli import main

FAST = ["total_timesteps=1000", "logger.progress=false"]


@pytest.fixture(autouse=True)
def no_compile(monkeypatch):
    """A bad input must be refused before the trainer compiles anything."""
    import experiments.train as train

    def refuse(*_a, **_k):
        raise AssertionError("a bad input reached the compiler")

    monkeypatch.setattr(train, "vmapped_chunk", refuse)
    monkeypatch.setattr(train, "vmapped_init", refuse)


@pytest.mark.parametrize(
    "argv,expect",
    [
        (["agent.lr=["], ["agent.lr=[", "malformed override", "key=[a,b]"]),
        (["head=["], ["head=[", "malformed override"]),
        (["--cfg", "hydra"], ["--cfg", "hydra", "job"]),
        (["--frobnicate"], ["--frobnicate", "--help"]),
        (["print_config=maybe"], ["print_config", "true or false"]),
        (["run_dir=/proc/x"], ["run_dir='/proc/x'", "cannot be written", "create and write"]),
        (["total_timesteps=10"], ["total_timesteps=10", "less than one update", ">= 512"]),
        (["agent=dqn", "agent.network.core=lstm"], ["agent.network.core='lstm'", "none"]),
        (["agent=dqn", "agent.buffer_size=5"], ["agent.buffer_size=5", ">= "]),
        (["num_seeds=abc"], ["num_seeds", "abc", "integer"]),
        (["num_seeds=0"], ["num_seeds=0", ">= 1"]),
        (["seed=-1"], ["seed=-1", ">= 0"]),
        (["total_timesteps=-5"], ["total_timesteps=-5", ">= 1"]),
        (["foo=1"], ["foo", "not a known key", "num_seeds"]),
        (["+foo=1"], ["foo", "not a known key"]),
        (["env="], ["env=''", "rl-aux describe env", "gymnax/* (11)"]),
        (["env=gymnax/CartPol-v1"], ["Close matches: gymnax/CartPole-v1", "describe env"]),
        (["env=gymnax/cartpole-v1"], ["gymnax/CartPole-v1"]),
        (["experiment=nope"], ["experiment='nope'", "quickstart", "describe experiment"]),
        (["grid.unknown=[1]"], ["grid.unknown", "lr"]),
        (["grid.lr=1e-3"], ["grid.lr=0.001", "non-empty list"]),
        (["grid.lr=[-1]"], ["grid.lr", "-1", "> 0"]),
        (["grid.reward_pred.weight=[0.1,1]"], ["grid.reward_pred.weight", "head=reward_pred"]),
        (["head=nope"], ["head='nope'", "plugins=[my_pkg.my_head]", "reward_pred"]),
        (["head=[reward_pred,nope]"], ["nope", "plugins=["]),
        (["heads=3"], ["heads=3", "mapping", "head=<name>"]),
        (["agent=nope"], ["agent='nope'", "ppo", "dqn"]),
        (["agent="], ["agent", "ppo"]),
        (["reward=nope"], ["reward='nope'", "blend"]),
        (["agent.balancer=pcgrd"], ["agent.balancer='pcgrd'", "Close matches: pcgrad", "gcs"]),
        (["agent.balancer.name=pcgrd"], ["agent.balancer='pcgrd'", "pcgrad", "plugins=["]),
        (
            ["agent.balancer.ema=0.1"],
            ["agent.balancer.ema", "agent.balancer=weighted_sum", "Accepted options: none"],
        ),
        (
            ["agent.balancer=bloop", "agent.balancer.ema=2"],
            ["agent.balancer.ema=2.0", "<= 1.0"],
        ),
        (
            ["agent.balancer=gradnorm", "agent.balancer.alpah=1"],
            ["agent.balancer.alpah", "alpha, lr, learn_main"],
        ),
        (["agent.bloop_ema=0.1"], ["agent.bloop_ema", "agent.balancer.ema"]),
        (["plugins=[/no/such/plugin.py]"], ["plugins", "/no/such/plugin.py", ".py files"]),
        (["agent.lr=abc"], ["agent.lr", "abc", "number"]),
        (["agent.num_envs=0"], ["agent.num_envs=0", ">= 1"]),
        (["logger.wandb.mode=loud"], ["logger.wandb.mode", "offline"]),
        (["eval=3"], ["eval", "mapping"]),
        (["cpu_threads=abc"], ["cpu_threads", "abc"]),
        (["plugins=[no_such_pkg.head]"], ["plugins", "no_such_pkg.head"]),
        (["run_batching=loop"], ["run_batching='loop'", "vmap"]),
    ],
)
def test_bad_input_exits_2_naming_the_field(argv, expect, capsys, tmp_path):
    run_dir = [] if any(a.startswith("run_dir=") for a in argv) else [f"run_dir={tmp_path}/r"]
    assert main(["train", *FAST, *run_dir, *argv]) == 2
    err = capsys.readouterr().err
    for word in expect:
        assert word in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv,expect",
    [
        (["agent.lr=["], ["malformed override 'agent.lr=['"]),
        (["head=reward_pred,nxt_latent"], ["head='nxt_latent'", "next_latent"]),
        (["foo=1,2"], ["foo is not a known key"]),
        (["agent.lr=0.001,-1"], ["agent.lr=-1.0", "> 0"]),
    ],
)
def test_bad_sweep_exits_2_before_any_job(argv, expect, capsys, tmp_path):
    assert main(["sweep", f"run_dir={tmp_path}/s", *argv]) == 2
    err = capsys.readouterr().err
    for word in expect:
        assert word in err, err
    assert not (tmp_path / "s").exists()


def test_unknown_env_message_is_short_and_points_to_the_full_list(capsys):
    assert main(["train", "env=gymnax/Nope"]) == 2
    err = capsys.readouterr().err
    assert len(err) < 1000, len(err)  # not every four-rooms goal and Atari game
    assert "rl-aux describe env" in err and "Close matches" in err


def test_cfg_job_and_print_config_print_the_resolved_config(capsys):
    for argv in (["--cfg", "job"], ["print_config=true"], ["--cfg=job"]):
        assert main(["train", *argv, "num_seeds=3", "agent=dqn"]) == 0
        cfg = yaml.safe_load(capsys.readouterr().out)
        assert cfg["num_seeds"] == 3 and cfg["agent"]["name"] == "dqn"


def test_run_dir_check_leaves_nothing_behind(tmp_path, capsys):
    """The writability probe removes the directories it created (a refused run leaves none)."""
    target = tmp_path / "a" / "b"
    assert main(["train", f"run_dir={target}", "total_timesteps=10"]) == 2
    assert "total_timesteps=10" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def test_fuzzed_overrides_exit_0_or_2_never_a_traceback(capsys, tmp_path, monkeypatch):
    """Seeded mutations of valid overrides: the CLI either accepts them (printing the resolved
    config via --cfg job, so nothing trains) or exits 2 with a message; never raises."""
    valid = [
        "agent=dqn",
        "env=gymnax/Acrobot-v1",
        "head=[reward_pred,next_latent]",
        "num_seeds=2",
        "grid.lr=[0.001,0.0003]",
        "agent.lr=0.001",
        "heads.reward_pred.weight=0.5",
        "eval.episodes=4",
        "logger.wandb.mode=offline",
        "reward=env",
        "experiment=quickstart",
        "cpu_threads=2",
    ]
    junk = [
        "[",
        "]",
        ",",
        "=",
        "-1",
        "abc",
        "",
        "1e9",
        "{",
        "'",
        "nope",
        "0",
        ".",
        "~",
        "+",
        "null",
    ]
    rng = random.Random(0)
    for _ in range(20):
        argv = []
        for o in rng.sample(valid, rng.randint(1, 3)):
            key, _, value = o.partition("=")
            kind = rng.randrange(4)
            if kind == 0:
                value = rng.choice(junk)
            elif kind == 1:
                pos = rng.randrange(len(value) + 1)
                value = value[:pos] + rng.choice(junk) + value[pos:]
            elif kind == 2:
                key = key[: rng.randrange(1, len(key) + 1)] + rng.choice(["", "x", "_"])
            argv.append(f"{key}={value}")
        rc = main(["train", "--cfg", "job", *argv])
        err = capsys.readouterr().err
        assert rc in (0, 2), (argv, rc, err)
        if rc == 2:
            assert err.startswith("rl-aux train:"), (argv, err)


def test_train_help_is_fast_and_does_not_import_jax():
    code = (
        "import sys; from experiments.cli import main; rc = main(['train', '--help']); "
        "rc = rc or main(['describe', 'env']) or main(['describe', 'head']); "
        "heavy = [m for m in ('jax', 'flax', 'hydra', 'omegaconf', 'optax') if m in sys.modules]; "
        "assert not heavy, heavy; sys.exit(rc)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    t0 = time.time()
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    elapsed = time.time() - t0
    assert p.returncode == 0, p.stderr
    assert elapsed < 3.0, elapsed
    for word in ("agent=", "head=", "reward=", "agent.balancer=", "experiment=", "env="):
        assert word in p.stdout
    for word in ("gymnax/", "four_rooms/", "quickstart", "num_seeds", "plugins=[", "docs/"):
        assert word in p.stdout
    assert "rl-aux describe env" in p.stdout


def test_catalog_equals_the_live_registries():
    from agents.registry import registered_agents
    from envs.registry import ENV_FAMILIES, registered_envs
    from rl_aux.balancers import BALANCERS
    from rl_aux.heads.base import registered_heads
    from rl_aux.rewards import registered_rewards

    builtin_agents = set(catalog.AGENTS)  # plugins imported by other tests may add more
    assert builtin_agents <= set(registered_agents())
    assert set(catalog.BALANCERS) <= set(BALANCERS.names())
    builtin_envs = {f: n for f, n in catalog.FAMILY_NOTES.items()}
    assert {f: ENV_FAMILIES.get(f).note for f in builtin_envs} == catalog.FAMILY_NOTES
    assert list(ENV_FAMILIES.names())[: len(builtin_envs)] == list(builtin_envs)
    code = (  # in a fresh process (no plugin imported), the lists are equal
        "from agents.registry import registered_agents; from rl_aux.balancers import BALANCERS; "
        "from envs.registry import ENV_FAMILIES; from experiments import catalog; "
        "assert sorted(registered_agents()) == sorted(catalog.AGENTS), registered_agents(); "
        "assert sorted(BALANCERS.names()) == sorted(catalog.BALANCERS), BALANCERS.names(); "
        "assert ENV_FAMILIES.names() == list(catalog.FAMILY_NOTES), ENV_FAMILIES.names()"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert sorted(catalog.REWARDS) == registered_rewards()
    builtin_names = [n for n in registered_envs() if n.partition("/")[0] in catalog.FAMILY_NOTES]
    assert catalog.env_names() == builtin_names
    builtin = set(catalog.HEADS)
    assert builtin <= set(registered_heads())  # plugins imported by other tests add more
    assert set(registered_heads()) - builtin <= set(catalog.PLUGIN_HEADS) | {
        n for n in registered_heads() if n not in catalog.PLUGIN_HEADS and n not in builtin
    }
    code = (
        "from rl_aux.heads.base import registered_heads; from experiments import catalog; "
        "assert registered_heads() == sorted(catalog.HEADS), registered_heads(); "
        "import importlib; [importlib.import_module(m) for m in catalog.PLUGIN_HEADS.values()]; "
        "assert registered_heads() == sorted([*catalog.HEADS, *catalog.PLUGIN_HEADS])"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize(
    "argv,expect",
    [
        (["head=next_latent"], ["heads.next_latent.weight", "= 1.0", ">= 0.0", "target_tau"]),
        (["agent=dqn"], ["agent.buffer_size", "transitions (rows x num_envs)", "mse, huber"]),
        (["env"], ["gymnax/CartPole-v1", "four_rooms/goal103", "memory/"]),
        (["env=gymnax"], ["gymnax/ (11)", "gymnax/Breakout-MinAtar"]),
        (["balancer=pcgrad"], ["PCGrad"]),
        (["eval"], ["eval.epsilon", "<= 1.0"]),
        (["experiment=quickstart"], ["experiment: quickstart"]),
        (["head"], ["noise_target", "plugins=[examples.plugins.inverse_dynamics]"]),
    ],
)
def test_describe_lists_fields_and_names(argv, expect, capsys):
    assert main(["describe", *argv]) == 0
    out = capsys.readouterr().out
    for word in expect:
        assert word in out, out


def test_train_help_with_a_group_option_describes_it(capsys):
    assert main(["train", "head=reward_pred", "--help"]) == 0
    assert "heads.reward_pred.weight" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,expect",
    [
        (["head=nope"], ["head='nope'", "plugins=["]),
        (["nope"], ["'nope' is not a config group", "head"]),
        (["env=gymnax/Nope"], ["gymnax/Nope", "Close matches"]),
        (["agent=ppoo"], ["agent='ppoo'", "ppo"]),
    ],
)
def test_describe_bad_names_exit_2(argv, expect, capsys):
    assert main(["describe", *argv]) == 2
    err = capsys.readouterr().err
    for word in expect:
        assert word in err, err


def test_plot_skips_a_metrics_csv_with_bad_bytes(tmp_path, capsys):
    from tests.unit.test_plot import write_run

    write_run(tmp_path / "runs" / "good_a", "a", 0.0)
    write_run(tmp_path / "runs" / "good_b", "b", 5.0)
    bad = tmp_path / "runs" / "bad"
    bad.mkdir(parents=True)
    (bad / "metrics.csv").write_bytes(b"global_step,seed\n\xff\xfe\x00\x81garbage\x9c\n")
    torn = tmp_path / "runs" / "torn"
    torn.mkdir(parents=True)
    (torn / "metrics.csv").write_text('global_step,seed,grid\n1,0,0\n"unterminated,1\n')
    out = tmp_path / "plots"
    assert main(["plot", str(tmp_path / "runs"), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    warnings = [ln for ln in captured.err.splitlines() if ln.startswith("warning:")]
    assert any(str(bad / "metrics.csv") in w and "skipped" in w for w in warnings), captured.err
    assert (out / "final.csv").exists()
    assert {"a", "b"} <= set(captured.out.split())


def test_plot_with_only_unreadable_runs_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "metrics.csv").write_bytes(b"\xff\xfe\x00\x81")
    assert main(["plot", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no readable metrics.csv" in capsys.readouterr().err
