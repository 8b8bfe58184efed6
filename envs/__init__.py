"""Environments behind one functional, batched contract (see envs/core.py)."""

from envs.registry import make_env, registered_envs

__all__ = ["make_env", "registered_envs"]
