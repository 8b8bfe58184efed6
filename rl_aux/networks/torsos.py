"""Torsos map an observation to a feature vector z: MLP, small CNN, Nature-CNN, IMPALA-CNN."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rl_aux.networks.conv import CanonicalConv, ConvLayer

ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh, "elu": nn.elu, "gelu": nn.gelu}


def _kernel_init(init: str, scale: float = np.sqrt(2)):
    return orthogonal(scale) if init == "orthogonal" else nn.initializers.lecun_normal()


def orthogonal(scale: float = 1.0):
    """nn.initializers.orthogonal, but under `vmap` (seeds) the QRs run one after another.

    A batched QR of a large kernel (Nature-CNN's 3136x512 Dense, 2 vmapped seeds) waits
    forever inside jaxlib 0.10.2's CPU LAPACK kernel (ParallelBatchMap on XLA's thread pool;
    seen in a gdb backtrace); `lax.map` gives it one matrix at a time."""
    base = nn.initializers.orthogonal(scale)

    def init(key, shape, dtype=jnp.float32):
        @jax.custom_batching.custom_vmap
        def one(k):
            return base(k, shape, dtype)

        @one.def_vmap
        def _batched(axis_size, in_batched, k):
            if not in_batched[0]:
                k = jnp.broadcast_to(k, (axis_size,) + k.shape)
            return jax.lax.map(lambda kk: base(kk, shape, dtype), k), True

        return one(key)

    return init


def _as_float(obs: jnp.ndarray) -> jnp.ndarray:
    """uint8 frames are scaled to [0, 1]; float observations pass unchanged."""
    return obs.astype(jnp.float32) / 255.0 if obs.dtype == jnp.uint8 else obs.astype(jnp.float32)


def _image_batch(obs: jnp.ndarray) -> tuple[jnp.ndarray, tuple]:
    """[..., H, W, C] images as one float [N, H, W, C] batch, and the leading shape to restore."""
    x = _as_float(obs)
    return x.reshape((-1,) + x.shape[-3:]), x.shape[:-3]


class MLPTorso(nn.Module):
    """Flattens the observation and applies Dense+activation layers."""

    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"
    init: str = "orthogonal"
    obs_ndim: int = 1  # trailing observation dims to flatten
    linear_out: bool = False  # no activation after the last layer (a linear latent)

    @nn.compact
    def __call__(self, obs):
        x = _as_float(obs)
        x = x.reshape(x.shape[: x.ndim - self.obs_ndim] + (-1,))
        return _dense_stack(x, self.hidden, self.activation, self.init, self.linear_out)


def _dense_stack(x, widths, activation: str, init: str, linear_out: bool):
    act = ACTIVATIONS[activation]
    for i, width in enumerate(widths):
        x = nn.Dense(width, kernel_init=_kernel_init(init), bias_init=nn.initializers.zeros)(x)
        x = x if linear_out and i == len(widths) - 1 else act(x)
    return x


class SmallCNN(nn.Module):
    """Small-grid conv torso (gridworlds, MinAtar): VALID convs + ReLU, optional max-pool, then
    the MLP `hidden` widths; e.g. Fang & Stachenfeld's encoder is channels (16, 32), kernel 2,
    pool 2, hidden (32, latent) with a linear latent. Input [..., H, W, C]."""

    channels: Sequence[int] = (16, 32)
    kernel: int = 2
    pool: int = 2  # max-pool window and stride after the convs (<= 1: none)
    hidden: Sequence[int] = (32,)
    activation: str = "relu"
    init: str = "orthogonal"
    conv: str = "patches"
    linear_out: bool = False

    @nn.compact
    def __call__(self, obs):
        x, lead = _image_batch(obs)
        k = _kernel_init(self.init)
        for c in self.channels:
            x = nn.relu(_conv(self.conv)(c, (self.kernel,) * 2, (1, 1), "VALID", kernel_init=k)(x))
        if self.pool > 1:
            x = nn.max_pool(x, (self.pool,) * 2, (self.pool,) * 2)
        x = _dense_stack(
            x.reshape(x.shape[0], -1), self.hidden, self.activation, self.init, self.linear_out
        )
        return x.reshape(lead + x.shape[-1:])


class PatchConv(ConvLayer):
    """A 2-D convolution as strided slices + one matmul, with nn.Conv's parameters.

    XLA:CPU runs convolution weight-gradients inside loops (`lax.scan`) on a very slow path
    (jax-ml/jax#12868); as a matmul the same layer is fast in and out of loops (timings in
    docs/results/atari.md). Input [B, H, W, C]; padding 'VALID' or 'SAME'."""

    @nn.compact
    def __call__(self, x):
        x, w, b = self.params_and_pad(x)
        (kh, kw), (sh, sw), cin = self.kernel_size, self.strides, x.shape[-1]
        oh, ow = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
        cols = [
            x[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :]
            for i in range(kh)
            for j in range(kw)
        ]
        patches = jnp.stack(cols, -2).reshape(x.shape[0], oh, ow, kh * kw * cin)
        return patches @ w.reshape(kh * kw * cin, self.features) + b


def _conv(impl: str):
    """nn.Conv (XLA's convolution), PatchConv (slices + matmul) or CanonicalConv (XLA's
    convolution, hand-written gradients); all three have the same parameters."""
    return {"patches": PatchConv, "canonical": CanonicalConv}.get(impl, nn.Conv)


class NatureCNN(nn.Module):
    """Mnih et al. (2015) conv torso: 32x8s4, 64x4s2, 64x3s1, Dense(512); input [..., H, W, C]."""

    features: int = 512
    init: str = "orthogonal"
    conv: str = "lax"  # 'patches'/'canonical': fast weight-gradients inside lax.scan on CPU

    @nn.compact
    def __call__(self, obs):
        x, lead = _image_batch(obs)
        k = _kernel_init(self.init)
        conv = _conv(self.conv)
        x = nn.relu(conv(32, (8, 8), (4, 4), "VALID", kernel_init=k, name="Conv_0")(x))
        x = nn.relu(conv(64, (4, 4), (2, 2), "VALID", kernel_init=k, name="Conv_1")(x))
        x = nn.relu(conv(64, (3, 3), (1, 1), "VALID", kernel_init=k, name="Conv_2")(x))
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(self.features, kernel_init=k)(x))
        return x.reshape(lead + (self.features,))


class _ResidualBlock(nn.Module):
    channels: int
    conv: str = "lax"

    @nn.compact
    def __call__(self, x):
        y = _conv(self.conv)(self.channels, (3, 3), name="Conv_0")(nn.relu(x))
        y = _conv(self.conv)(self.channels, (3, 3), name="Conv_1")(nn.relu(y))
        return x + y


class ImpalaCNN(nn.Module):
    """Espeholt et al. (2018) torso: per stack conv3x3 -> maxpool3x3/2 -> 2 residual blocks."""

    stack_sizes: Sequence[int] = (16, 32, 32)
    width_multiplier: float = 1.0
    features: int = 256
    conv: str = "lax"  # 'patches': PatchConv (see NatureCNN)

    @nn.compact
    def __call__(self, obs):
        x, lead = _image_batch(obs)
        for i, size in enumerate(self.stack_sizes):
            c = int(size * self.width_multiplier)
            x = _conv(self.conv)(c, (3, 3), name=f"Conv_{i}")(x)
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
            x = _ResidualBlock(c, self.conv)(x)
            x = _ResidualBlock(c, self.conv)(x)
        x = nn.relu(x).reshape(x.shape[0], -1)
        x = nn.relu(nn.Dense(self.features)(x))
        return x.reshape(lead + (self.features,))


TORSOS = {"mlp": MLPTorso, "small_cnn": SmallCNN, "nature_cnn": NatureCNN, "impala_cnn": ImpalaCNN}
