"""NetHack / MiniHack torsos over dict observations (glyphs, crops, blstats, message).

`NetHackEncoder` follows the NLE baseline (Kuettler et al. 2020, Sec. 5 "Baseline models"):
glyph embeddings over the full 21x79 map and over an egocentric crop around the hero, each
through a small conv stack, an MLP over the bottom-line stats, and a character-level CNN over
the message line; the parts are concatenated into one feature vector. Every branch reads a
key only if the observation has it, so the same module is the small MiniHack crop encoder
(`glyphs_crop`/`chars_crop` + blstats). Convolutions are patches + matmul (`PatchConv`): conv
weight-gradients inside `lax.scan` take a very slow XLA:CPU path (docs/results/atari.md).
`crop_layers=0` flattens the embedded 9x9 crops straight into their Dense (no convs): the
MiniHack default, much cheaper forward + backward on CPU (docs/nethack.md).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

MAX_GLYPH = 5976  # nle.nethack.MAX_GLYPH (glyph ids are < MAX_GLYPH; nle 1.x)
MAP_SHAPE = (21, 79)


class PatchConv(nn.Module):
    """A 2-D convolution as image patches + Dense: x [B, H, W, C] -> [B, H', W', features]."""

    features: int
    kernel: tuple = (3, 3)
    stride: tuple = (1, 1)
    padding: str = "SAME"

    @nn.compact
    def __call__(self, x):
        (kh, kw), (sh, sw) = self.kernel, self.stride
        h, w = x.shape[1:3]
        if self.padding == "SAME":  # shifted strided slices (no one-hot patch convolution)
            oh, ow = -(-h // sh), -(-w // sw)
            ph, pw = max((oh - 1) * sh + kh - h, 0), max((ow - 1) * sw + kw - w, 0)
            x = jnp.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
        else:
            oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
        cols = [
            x[:, i : i + (oh - 1) * sh + 1 : sh, j : j + (ow - 1) * sw + 1 : sw]
            for i in range(kh)
            for j in range(kw)
        ]
        return nn.Dense(self.features)(jnp.concatenate(cols, -1))


def _log_scale(x):
    x = x.astype(jnp.float32)
    return jnp.sign(x) * jnp.log1p(jnp.abs(x))


def egocentric_crop(glyphs, x, y, size: int):
    """[B, H, W] map -> [B, size, size] window centred on column x, row y (padded with 0)."""
    r = size // 2
    padded = jnp.pad(glyphs, ((0, 0), (r, r), (r, r)))
    return jax.vmap(lambda g, xi, yi: jax.lax.dynamic_slice(g, (yi, xi), (size, size)))(
        padded, x, y
    )


class _ConvStack(nn.Module):
    channels: int
    layers: int
    stride: int

    @nn.compact
    def __call__(self, x):
        for _ in range(self.layers):
            x = nn.elu(PatchConv(self.channels, (3, 3), (self.stride, self.stride))(x))
        return x.reshape(x.shape[0], -1)


class NetHackEncoder(nn.Module):
    """Dict observation [B, ...] per key -> features [B, features] (see module docstring)."""

    embed: int = 16
    channels: int = 16
    layers: int = 2  # conv layers over the full map
    crop_layers: int = 2  # conv layers over the crops (0: embedded crop -> Dense)
    crop: int = 9
    features: int = 256
    map_stride: int = 2  # the full map is large: strided convs before the Dense

    @nn.compact
    def __call__(self, obs: dict):
        glyph_embed = nn.Embed(MAX_GLYPH, self.embed, name="glyph_embed")
        parts = []
        if "glyphs" in obs:
            g = obs["glyphs"].astype(jnp.int32)
            full = _ConvStack(self.channels, self.layers, self.map_stride, name="map")(
                glyph_embed(g)
            )
            parts.append(nn.elu(nn.Dense(self.features, name="map_out")(full)))
            if "blstats" in obs:
                xy = obs["blstats"][:, :2].astype(jnp.int32)
                crop = egocentric_crop(g, xy[:, 0], xy[:, 1], self.crop)
                c = _ConvStack(self.channels, self.crop_layers, 1, name="crop")(glyph_embed(crop))
                parts.append(nn.elu(nn.Dense(self.features // 2, name="crop_out")(c)))
        for key, table in (("glyphs_crop", MAX_GLYPH), ("chars_crop", 256)):
            if key in obs:
                emb = glyph_embed if table == MAX_GLYPH else nn.Embed(256, self.embed, name=key)
                c = _ConvStack(self.channels, self.crop_layers, 1, name=f"{key}_conv")(
                    emb(obs[key].astype(jnp.int32))
                )
                parts.append(nn.elu(nn.Dense(self.features // 2, name=f"{key}_out")(c)))
        if "blstats" in obs:
            b = _log_scale(obs["blstats"])
            b = nn.elu(nn.Dense(64, name="blstats_1")(b))
            parts.append(nn.elu(nn.Dense(64, name="blstats_2")(b)))
        if "message" in obs:
            parts.append(MessageEncoder(name="message")(obs["message"]))
        if not parts:
            raise ValueError(f"NetHackEncoder: no known key in observation keys {sorted(obs)}")
        return nn.elu(nn.Dense(self.features, name="out")(jnp.concatenate(parts, -1)))


class MessageEncoder(nn.Module):
    """Character-level CNN over the 256-byte message: embed, two width-4 stride-4 convs, max."""

    embed: int = 16
    channels: int = 64

    @nn.compact
    def __call__(self, msg):
        x = nn.Embed(256, self.embed)(msg.astype(jnp.int32))  # [B, 256, E]
        b = x.shape[0]
        x = nn.elu(nn.Dense(self.channels)(x.reshape(b, -1, 4 * self.embed)))  # [B, 64, C]
        x = nn.elu(nn.Dense(self.channels)(x.reshape(b, -1, 4 * self.channels)))  # [B, 16, C]
        return x.max(1)
