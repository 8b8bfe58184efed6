"""Bad input exits 2 before any compile, naming the field, the value and what is accepted."""

import subprocess
import sys

import pytest

from experiments.cli import main
from experiments.compose import ConfigError, load_config


@pytest.mark.parametrize(
    "argv,expect",
    [
        (["agent=ppoo"], ["agent='ppoo'", "ppo", "dqn"]),
        (["agent.lr=-1"], ["agent.lr", "-1", "> 0"]),
        (["agent.lrr=1"], ["agent.lrr", "Did you mean lr"]),
        (["env=gymnax/CartPol-v1"], ["gymnax/CartPole-v1", "Close matches"]),
        (["agent.network.torso=cnn"], ["agent.network.torso", "nature_cnn"]),
        (["head=reward_prd"], ["reward_pred"]),
        (["heads.reward_pred.weight=2"], ["head=reward_pred"]),
        (["grid.num_steps=[64]"], ["grid.num_steps", "lr", "ent_coef"]),  # shapes the rollout
        (["grid.gamma=[1.5]"], ["grid.gamma=1.5", "<= 1.0"]),
        (["agent=dqn", "agent.loss=l3"], ["agent.loss", "mse", "huber", "l1"]),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(argv, expect, capsys):
    assert main(["train", *argv]) == 2
    err = capsys.readouterr().err
    for word in expect:
        assert word in err, err


def test_cli_process_exit_code():
    """The installed entry point itself returns 2 (checked through a real process)."""
    p = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "train", "agent=ppoo"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2 and "Accepted (4): dqn, ppo" in p.stderr


def test_good_config_resolves_defaults():
    cfg = load_config(["agent=dqn", "head=[reward_pred,next_latent]", "num_seeds=3"])
    assert cfg.label == "dqn+next_latent+reward_pred"
    assert cfg.run_dir == "runs/default/dqn+next_latent+reward_pred"
    assert cfg.agent.lr == 2.5e-4 and cfg.num_seeds == 3
    assert set(cfg.heads) == {"reward_pred", "next_latent"}
    with pytest.raises(ConfigError):
        load_config(["heads.next_latent.target_tau=0"])


def test_reward_modules_not_in_the_trainer_exit_2_instead_of_being_ignored(capsys, tmp_path):
    from experiments.cli import main

    argv = ["train", "agent=dqn", "env=barfi/grid-centre", "reward=blend", f"run_dir={tmp_path}/r"]
    assert main(argv) == 2
    assert "reward=blend is not wired" in capsys.readouterr().err
    argv = [
        "train",
        "agent=dqn",
        "env=minihack/Room-5x5-v0",
        "reward=blend",
        "reward.sources=[oracle]",
    ]
    assert main([*argv, f"run_dir={tmp_path}/r2"]) == 2  # the blend is PPO's; text rewards
    assert "reward=blend is not wired" in capsys.readouterr().err  # run with DQN too
