"""Reward modules: the plugin contract (base.py), `env`, BARFI's `blend`, LLM `subgoal`/`ellm`,
`keyroom_oracle`."""

from rl_aux.rewards import blend as _blend  # noqa: F401  (registers "blend")
from rl_aux.rewards import keyroom_oracle as _oracle  # noqa: F401  (registers "keyroom_oracle")
from rl_aux.rewards import subgoal as _subgoal  # noqa: F401  (registers "subgoal", "ellm")
from rl_aux.rewards.base import (
    RewardModule,
    aux_rewards,
    register_reward,
    registered_rewards,
    reward_class,
)

__all__ = ["RewardModule", "aux_rewards", "register_reward", "registered_rewards", "reward_class"]
