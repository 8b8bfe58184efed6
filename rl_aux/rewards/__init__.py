"""Reward modules: the plugin contract (base.py), the identity `env` reward and BARFI's `blend`."""

from rl_aux.rewards import blend as _blend  # noqa: F401  (registers "blend")
from rl_aux.rewards.base import (
    RewardModule,
    aux_rewards,
    register_reward,
    registered_rewards,
    reward_class,
)

__all__ = ["RewardModule", "aux_rewards", "register_reward", "registered_rewards", "reward_class"]
