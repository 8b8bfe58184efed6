"""The built-in learners, registered: look agents up through this module (it imports them).

`agent_class(name)` also finds learners a plugin registered with `rl_aux.agent.register_agent`.
"""

from __future__ import annotations

from agents import dqn, ppo, pvn  # noqa: F401  (registration side effects)
from rl_aux.agent import AGENTS, agent_class, is_offline


def registered_agents() -> list[str]:
    """Names of every registered learner, in registration order."""
    return AGENTS.names()


__all__ = ["AGENTS", "agent_class", "is_offline", "registered_agents"]
