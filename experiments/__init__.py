"""Experiment entry points: configs, `rl-aux train`, `rl-aux plot`, `rl-aux bench`."""
