"""Learners built from rl_aux parts: PPO (policy) and DQN (value)."""
