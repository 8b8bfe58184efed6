"""LLM subgoal rewards as reward modules: `reward=subgoal` (CALM judge) and `reward=ellm`.

The host-side `rl_aux.llm.shaper.SubgoalShaper` fills `extras["r_aux/subgoal"]` at the end of
each rollout; in the update the module returns r_ext + r_aux (both stay in the batch, so the
bilevel `blend` module can weigh them instead, with `reward=blend reward.sources=[subgoal]`).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from rl_aux.rewards.base import RewardModule, aux_rewards, register_reward
from rl_aux.typed_config import spec

SOURCE = "subgoal"
KEYROOM_TASK = "pick up the key, unlock and open the door, and reach the stairs down"


@dataclasses.dataclass(frozen=True)
class SubgoalRewardConfig:
    kind: str = spec("judge", choices=("judge", "ellm"))
    # the floats are read on the host (rl_aux/llm/shaper.py), outside the trace: off grid.*
    beta: float = spec(0.1, ge=0.0, grid=False)  # bonus per subgoal, first completion per episode
    task: str = KEYROOM_TASK  # what the LLM decomposes when `subgoals` is empty
    subgoals: tuple = ()  # descriptions; empty: proposed by the LLM (cached)
    evidence_hints: tuple = ()  # judge prompt: the text that shows each subgoal; () or one each
    subgoal_ids: tuple = ()  # judge prompt: short ids, () or one each (default: slugs)
    max_subgoals: int = spec(5, ge=1)
    threshold: float = spec(0.5, ge=-1.0, le=1.0, grid=False)  # ELLM cosine threshold T
    # judge only captions with cos >= this; -1 off
    prefilter: float = spec(-1.0, ge=-1.0, le=1.0, grid=False)
    table_size: int = spec(65536, ge=2)  # fixed rows of the reward table (row 0: overflow)
    caption_message: bool = True  # include the message line in captions
    canonical_digits: bool = True
    dqn_history: int = spec(64, ge=1)  # DQN: earlier distinct captions kept per transition


@dataclasses.dataclass(frozen=True)
class EllmRewardConfig(SubgoalRewardConfig):
    kind: str = spec("ellm", choices=("judge", "ellm"))
    # KeyRoom goal texts and T chosen on the dev set (docs/results/llm-subgoal-rewards.md)
    subgoals: tuple = (
        "a key enters the inventory",
        "a closed door opens",
        "the agent steps onto the stairs down",
    )


@register_reward("subgoal")
class SubgoalReward(RewardModule):
    """r = r_ext + r_aux/subgoal (naive shaping; the bonus is already beta-scaled)."""

    Config = SubgoalRewardConfig

    def reward(self, params, tr):
        r_aux = aux_rewards(tr, (SOURCE,))[..., 0]
        return jnp.asarray(tr.reward, float) + r_aux, jnp.asarray(self.gamma, float)


@register_reward("ellm")
class EllmReward(SubgoalReward):
    Config = EllmRewardConfig
