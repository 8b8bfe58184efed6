"""Torsos map an observation to a feature vector z: MLP, Nature-CNN, IMPALA-CNN."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh, "elu": nn.elu, "gelu": nn.gelu}


def _kernel_init(init: str, scale: float = np.sqrt(2)):
    return (
        nn.initializers.orthogonal(scale)
        if init == "orthogonal"
        else nn.initializers.lecun_normal()
    )


def _as_float(obs: jnp.ndarray) -> jnp.ndarray:
    """uint8 frames are scaled to [0, 1]; float observations pass unchanged."""
    return obs.astype(jnp.float32) / 255.0 if obs.dtype == jnp.uint8 else obs.astype(jnp.float32)


class MLPTorso(nn.Module):
    """Flattens the observation and applies Dense+activation layers."""

    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"
    init: str = "orthogonal"
    obs_ndim: int = 1  # trailing observation dims to flatten

    @nn.compact
    def __call__(self, obs):
        x = _as_float(obs)
        x = x.reshape(x.shape[: x.ndim - self.obs_ndim] + (-1,))
        act = ACTIVATIONS[self.activation]
        for width in self.hidden:
            x = act(
                nn.Dense(
                    width, kernel_init=_kernel_init(self.init), bias_init=nn.initializers.zeros
                )(x)
            )
        return x


class NatureCNN(nn.Module):
    """Mnih et al. (2015) conv torso: 32x8s4, 64x4s2, 64x3s1, Dense(512); input [..., H, W, C]."""

    features: int = 512
    init: str = "orthogonal"

    @nn.compact
    def __call__(self, obs):
        x = _as_float(obs)
        lead = x.shape[:-3]
        x = x.reshape((-1,) + x.shape[-3:])
        k = _kernel_init(self.init)
        x = nn.relu(nn.Conv(32, (8, 8), (4, 4), padding="VALID", kernel_init=k)(x))
        x = nn.relu(nn.Conv(64, (4, 4), (2, 2), padding="VALID", kernel_init=k)(x))
        x = nn.relu(nn.Conv(64, (3, 3), (1, 1), padding="VALID", kernel_init=k)(x))
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(self.features, kernel_init=k)(x))
        return x.reshape(lead + (self.features,))


class _ResidualBlock(nn.Module):
    channels: int

    @nn.compact
    def __call__(self, x):
        y = nn.Conv(self.channels, (3, 3))(nn.relu(x))
        y = nn.Conv(self.channels, (3, 3))(nn.relu(y))
        return x + y


class ImpalaCNN(nn.Module):
    """Espeholt et al. (2018) torso: per stack conv3x3 -> maxpool3x3/2 -> 2 residual blocks."""

    stack_sizes: Sequence[int] = (16, 32, 32)
    width_multiplier: float = 1.0
    features: int = 256

    @nn.compact
    def __call__(self, obs):
        x = _as_float(obs)
        lead = x.shape[:-3]
        x = x.reshape((-1,) + x.shape[-3:])
        for size in self.stack_sizes:
            c = int(size * self.width_multiplier)
            x = nn.Conv(c, (3, 3))(x)
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
            x = _ResidualBlock(c)(x)
            x = _ResidualBlock(c)(x)
        x = nn.relu(x).reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(self.features)(x))
        return x.reshape(lead + (self.features,))


TORSOS = {"mlp": MLPTorso, "nature_cnn": NatureCNN, "impala_cnn": ImpalaCNN}
