"""A 2-D convolution whose gradients are themselves plain NHWC/HWIO convolutions.

XLA:CPU runs the convolutions that `jax.grad` derives for a convolution's weights (and, less
badly, its input) very slowly inside loops such as `lax.scan` (jax-ml/jax#12868; timings in
docs/results/atari.md). Written out by hand as ordinary
convolutions (data in NHWC, kernel in HWIO, no window reversal), the same sums run at their
out-of-loop speed in and out of loops, and give the same numbers as autodiff's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

DIMS = ("NHWC", "HWIO", "NHWC")


def _conv(
    x,
    w,
    strides,
    lhs_dilation=(1, 1),
    rhs_dilation=(1, 1),
    padding: str | Sequence[tuple[int, int]] = "VALID",
):
    return lax.conv_general_dilated(
        x,
        w,
        strides,
        padding,
        lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation,
        dimension_numbers=DIMS,
    )


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_valid(x: jax.Array, w: jax.Array, strides: tuple[int, int]) -> jax.Array:
    """'VALID' convolution of x [N, H, W, Ci] with w [kh, kw, Ci, Co] -> [N, oh, ow, Co]."""
    return _conv(x, w, strides)


def _fwd(x, w, strides):
    return _conv(x, w, strides), (x, w)


def _bwd(strides, res, g):
    x, w = res
    (sh, sw), (kh, kw) = strides, w.shape[:2]
    h, wd = x.shape[1:3]
    oh, ow = g.shape[1:3]
    # dW[i, j, c, o] = sum_{n, p, q} x[n, p*sh + i, q*sw + j, c] g[n, p, q, o]: a convolution
    # of x (channels as batch, N as features) with g (strides as kernel dilation)
    dw = _conv(x.transpose(3, 1, 2, 0), g.transpose(1, 2, 0, 3), (1, 1), rhs_dilation=strides)
    dw = dw[:, :kh, :kw, :].transpose(1, 2, 0, 3)
    # dX: g dilated by the strides, fully padded, against the flipped kernel (Ci <-> Co); rows
    # and columns the forward pass never read get zero
    rh, rw = h - ((oh - 1) * sh + kh), wd - ((ow - 1) * sw + kw)
    pad = ((kh - 1, kh - 1 + rh), (kw - 1, kw - 1 + rw))
    w_t = jnp.flip(w, (0, 1)).transpose(0, 1, 3, 2)
    dx = _conv(g, w_t, (1, 1), lhs_dilation=strides, padding=pad)
    return dx, dw


conv_valid.defvjp(_fwd, _bwd)


def same_pad(size: int, k: int, s: int) -> tuple[int, int]:
    """(low, high) padding of 'SAME' for a dimension of `size`, kernel `k`, stride `s`."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


class ConvLayer(nn.Module):
    """nn.Conv's fields and parameters, for convolutions that compute it another way."""

    features: int
    kernel_size: tuple = (3, 3)
    strides: tuple = (1, 1)
    padding: str = "SAME"
    kernel_init: Callable[..., Any] = nn.initializers.lecun_normal()

    def params_and_pad(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Kernel and bias (inside the compact call), and `x` padded for `padding` ('VALID' or
        'SAME', nn.Conv's split), ready for a VALID convolution."""
        (kh, kw), (sh, sw) = self.kernel_size, tuple(self.strides)
        w = self.param("kernel", self.kernel_init, (kh, kw, x.shape[-1], self.features))
        b = self.param("bias", nn.initializers.zeros, (self.features,))
        if self.padding == "SAME":
            ph, pw = same_pad(x.shape[1], kh, sh), same_pad(x.shape[2], kw, sw)
            x = jnp.pad(x, ((0, 0), ph, pw, (0, 0)))
        return x, w, b


class CanonicalConv(ConvLayer):
    """nn.Conv (same parameters, same outputs) with hand-written canonical gradients.

    Input [B, H, W, C]; padding 'VALID' or 'SAME'."""

    @nn.compact
    def __call__(self, x):
        x, w, b = self.params_and_pad(x)
        return cast(jax.Array, conv_valid(x, w.astype(x.dtype), tuple(self.strides))) + b
