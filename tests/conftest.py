"""Shared fixtures. Tests run on CPU, offline; the jax cache keeps reruns fast."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("WANDB_MODE", "disabled")
