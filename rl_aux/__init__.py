"""rl-aux: JIT-compiled JAX reinforcement learning with auxiliary heads."""

__version__ = "0.1.0"
