"""Golden runs: short runs over every training path whose metrics.csv (wall-clock columns
dropped) is pinned, so a restructuring that moves a number has to say which and why.

Each case is a list of `rl-aux train` overrides; `run_dir` is added by the runner. Cases with
`needs` run after the named case and may read its run dir as `{run:<name>}`.
Record again with `python -m tests.golden.record [NAME ...]` (docs/golden-runs.md).
"""

from __future__ import annotations

import dataclasses

SHORT = ["logger.progress=false", "eval.episodes=2", "checkpoint.every=0"]
CARTPOLE_PPO = [
    "agent=ppo",
    "env=gymnax/CartPole-v1",
    "total_timesteps=2048",
    "logger.log_interval=512",
    "agent.num_steps=64",
]
CARTPOLE_DQN = [
    "experiment=dqn_cartpole",
    "total_timesteps=1200",
    "logger.log_interval=300",
    "agent.learning_starts=400",
    "agent.buffer_size=1000",
    "agent.batch_size=32",
    "agent.target_update_interval=200",
    "agent.eps_anneal_steps=1000",
]
MINATAR_PPO = [
    "experiment=ppo_minatar",
    "total_timesteps=2048",
    "logger.log_interval=1024",
    "agent.num_envs=8",
    "agent.num_steps=64",
]
MINATAR_DQN = [
    "experiment=dqn_minatar",
    "total_timesteps=800",
    "logger.log_interval=200",
    "agent.learning_starts=400",
    "agent.buffer_size=1000",
    "agent.eps_anneal_steps=1000",
]


@dataclasses.dataclass(frozen=True)
class Case:
    overrides: tuple
    needs: str | None = None  # a case whose run dir this one reads
    host: bool = False  # host-stepped (NLE): needs the nethack extra


CASES: dict[str, Case] = {
    "ppo_ff_cartpole": Case((*CARTPOLE_PPO, "num_seeds=2")),
    "ppo_lstm_cartpole": Case((*CARTPOLE_PPO, "agent.network.core=lstm")),
    "ppo_gru_cartpole_sg_features": Case(
        (
            *CARTPOLE_PPO,
            "agent.network.core=gru",
            "head=future",
            "agent.network.rl_reads_sg_features=true",
            "agent.network.separate_critic=false",
        )
    ),
    "dqn_nstep_double_cartpole": Case((*CARTPOLE_DQN, "agent.n_step=3", "agent.double_q=true")),
    "ppo_minatar_reward_pred": Case((*MINATAR_PPO, "head=reward_pred")),
    "dqn_minatar_next_latent": Case((*MINATAR_DQN, "head=next_latent")),
    "ppo_next_latent": Case((*CARTPOLE_PPO, "head=next_latent")),
    "ppo_pvn": Case(
        (*CARTPOLE_PPO, "head=pvn", "heads.pvn.num_tasks=8", "heads.pvn.tasks_per_module=4")
    ),
    "ppo_future": Case((*CARTPOLE_PPO, "head=future")),
    "dqn_latent_pred": Case((*CARTPOLE_DQN, "head=latent_pred")),
    "dqn_reward_pred_detached": Case(
        (*CARTPOLE_DQN, "head=reward_pred", "heads.reward_pred.stop_gradient_to_torso=true")
    ),
    "ppo_next_latent_detached": Case(
        (*CARTPOLE_PPO, "head=next_latent", "heads.next_latent.stop_gradient_to_torso=true")
    ),
    "ppo_two_heads_bloop": Case(
        (*CARTPOLE_PPO, "head=[reward_pred,next_latent]", "agent.balancer=bloop")
    ),
    "ppo_two_heads_pcgrad": Case(
        (*CARTPOLE_PPO, "head=[reward_pred,next_latent]", "agent.balancer=pcgrad")
    ),
    "ppo_grid_lr_2seeds": Case((*CARTPOLE_PPO, "num_seeds=2", "grid.lr=[0.001,0.0003]")),
    "ppo_blend_barfi": Case(
        (
            "agent=ppo",
            "env=barfi/grid-centre",
            "reward=blend",
            "reward.hypergrad=lookahead",
            "agent.num_envs=16",
            "agent.num_steps=64",
            "agent.lr=0.001",
            "total_timesteps=2048",
            "logger.log_interval=1024",
            "num_seeds=2",
        )
    ),
    "dqn_four_rooms_transitions": Case(
        (
            "agent=dqn",
            "env=four_rooms/goal42",
            "total_timesteps=800",
            "logger.log_interval=400",
            "agent.num_envs=4",
            "agent.learning_starts=400",
            "agent.buffer_size=800",
            "logger.save_transitions=true",
        )
    ),
    "pvn_pretrain": Case(
        (
            "experiment=pvn_pretrain",
            "agent.dataset={run:dqn_four_rooms_transitions}/transitions",
            "total_timesteps=60",
            "agent.warmup_steps=20",
            "agent.qr_steps=20",
            "agent.batch_size=16",
            "heads.pvn.num_tasks=8",
            "heads.pvn.tasks_per_module=4",
            "logger.log_interval=20",
        ),
        needs="dqn_four_rooms_transitions",
    ),
    "pvn_linear_eval": Case(
        (
            "experiment=pvn_linear_eval",
            "agent.pretrained={run:pvn_pretrain}",
            "total_timesteps=800",
            "logger.log_interval=400",
            "agent.learning_starts=400",
            "agent.buffer_size=800",
        ),
        needs="pvn_pretrain",
    ),
    "minihack_room_host": Case(
        (
            "experiment=minihack_ppo",
            "total_timesteps=2048",
            "logger.log_interval=1024",
            "agent.num_envs=8",
            "agent.num_steps=64",
            "agent.network.features=32",
            "agent.network.core_hidden=32",
        ),
        host=True,
    ),
}

# Columns that depend on the machine's speed, not on the computation.
WALL_CLOCK_PREFIXES = ("time/",)
WALL_CLOCK_NAMES = ("charts/sps",)


def overrides(name: str, run_dirs: dict[str, str]) -> list[str]:
    """The case's overrides with `{run:<case>}` filled in from `run_dirs`."""
    out = []
    for o in CASES[name].overrides:
        for dep, d in run_dirs.items():
            o = o.replace(f"{{run:{dep}}}", d)
        out.append(o)
    return [*out, *SHORT]


def order(names: list[str]) -> list[str]:
    """`names` with every case's `needs` before it."""
    out: list[str] = []

    def add(n: str) -> None:
        dep = CASES[n].needs
        if dep is not None and dep not in out:
            add(dep)
        if n not in out:
            out.append(n)

    for n in names:
        add(n)
    return out
