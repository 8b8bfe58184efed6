"""Shared fixtures. Tests run on CPU, offline; the jax cache keeps reruns fast."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("WANDB_MODE", "disabled")
# One XLA:CPU pool thread, as `cpu_threads=auto` gives the MLP runs that most tests are
# (rl_aux/cpu_threads.py); the pool is sized when the first test starts jax.
os.environ.setdefault("PJRT_NPROC", "1")
