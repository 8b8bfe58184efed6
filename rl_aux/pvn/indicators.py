"""Random indicator tasks r_i(x) = 1[x in S_i] for PVN (Farebrother et al. 2023, Sec. 4).

Two families, as in the paper's code (google-research `pvn/indicator_functions.py`):
- "rnd": frozen randomly initialised nets give scores s_i(x) >= 0; a learned per-task bias b_i,
  fitted by quantile regression, sets r_i(x) = 1[s_i(x) + b_i > 0] to fire on a fraction p.
- "hash": a Carter-Wegman multiply-shift hash of the uint8 observation, r_i(x) =
  1[h_i(x) mod round(1/p) == 0]: random subsets of exact observations.
Params are {"nets": frozen, "bias": trained} ("rnd") or {"a", "b": frozen ints} ("hash"); only
`bias` ever receives a gradient (everything else is behind stop_gradient).
"""

from __future__ import annotations

import math
from typing import cast

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from rl_aux.types import Array, Params, PRNGKey

HASH_PRIME = 2**13 - 1  # Mersenne prime of the multiply-shift hash (as in the paper's code)
_HASH_CHUNK = 1024  # int32 partial sums: 1024 * 255 * 8190 < 2**31


class ScoreNet(nn.Module):
    """One frozen random net: Nature-DQN convs (images >= 36 px) or an MLP, then Dense+ReLU."""

    tasks: int
    kind: str  # "nature_cnn" | "mlp"
    hidden: int = 64
    final_relu: bool = True  # paper code: ReLU scores; a task whose score is 0 on more than
    # 1 - p of the states then cannot fire on exactly p (its threshold sits at 0)

    @nn.compact
    def __call__(self, obs: Array) -> Array:
        init = nn.initializers.xavier_uniform()
        x = obs.astype(jnp.float32) / 255.0 if obs.dtype == jnp.uint8 else obs.astype(jnp.float32)
        if self.kind == "nature_cnn":
            for ch, k, s in ((32, 8, 4), (64, 4, 2), (64, 3, 1)):
                x = nn.relu(nn.Conv(ch, (k, k), (s, s), padding="VALID", kernel_init=init)(x))
            x = x.reshape(x.shape[:-3] + (-1,))
            x = nn.relu(nn.Dense(512, kernel_init=init)(x))
        else:
            x = nn.relu(nn.Dense(self.hidden, kernel_init=init)(x))
        s = nn.Dense(self.tasks, kernel_init=init)(x)
        return nn.relu(s) if self.final_relu else s


def rnd_net_kind(obs_shape: tuple, requested: str) -> str:
    """'auto' picks the Nature-DQN convs for images of at least 36x36, an MLP otherwise."""
    if requested != "auto":
        return requested
    return "nature_cnn" if len(obs_shape) == 3 and min(obs_shape[:2]) >= 36 else "mlp"


def _flat_obs(obs: Array, obs_ndim: int) -> Array:
    return obs.reshape(obs.shape[: obs.ndim - obs_ndim] + (-1,))


class Indicators:
    """T indicator tasks over observations of shape `obs_shape` (batched over leading dims)."""

    def __init__(
        self,
        family: str,
        num_tasks: int,
        p: float,
        obs_shape: tuple,
        tasks_per_module: int = 10,
        net: str = "auto",
        hidden: int = 64,
        bias_scale: float = 1.0,
        final_relu: bool = True,
    ):
        if family not in ("rnd", "hash"):
            raise ValueError(f"indicator family={family!r}; accepted: rnd, hash")
        if family == "rnd" and num_tasks % tasks_per_module:
            raise ValueError(
                f"num_tasks={num_tasks} must be a multiple of tasks_per_module={tasks_per_module}"
            )
        self.family, self.num_tasks, self.p = family, num_tasks, p
        self.obs_shape = tuple(obs_shape)
        self.modules = num_tasks // tasks_per_module if family == "rnd" else 0
        self.kind = rnd_net_kind(self.obs_shape, net)
        self.net = ScoreNet(tasks_per_module, self.kind, hidden, final_relu)
        self.modulus = max(int(round(1.0 / p)), 1)
        # b = bias_scale * params["bias"]: under Adam the threshold then moves ~bias_scale * lr
        # per step, so it settles in fewer steps than the paper's 62.5k at small budgets
        self.bias_scale = bias_scale

    def init(self, key: PRNGKey) -> Params:
        if self.family == "hash":
            dim = math.prod(self.obs_shape)
            ka, kb = jax.random.split(key)
            # float32 holds these integers exactly (< 2**24) and keeps every param a float,
            # so jax.grad over a params tree that holds them works (their gradient is zero)
            a = jax.random.randint(ka, (self.num_tasks, dim), 1, HASH_PRIME).astype(jnp.float32)
            b = jax.random.randint(kb, (self.num_tasks,), 0, HASH_PRIME).astype(jnp.float32)
            return {"a": a, "b": b}
        x = jnp.zeros((1,) + self.obs_shape, jnp.float32)
        if self.kind == "mlp":
            x = _flat_obs(x, len(self.obs_shape))
        keys = jax.random.split(key, self.modules)
        nets = jax.vmap(lambda k: self.net.init(k, x))(keys)
        return {"nets": nets, "bias": jnp.zeros((self.num_tasks,), jnp.float32)}

    def scores(self, params: Params, obs: Array) -> Array:
        """Pre-threshold u = s(x) + b, [..., T] (the frozen part is stop-gradiented)."""
        x = obs if self.kind != "mlp" else _flat_obs(obs, len(self.obs_shape))
        nets = jax.lax.stop_gradient(params["nets"])
        apply = lambda p: cast(Array, self.net.apply(p, x))
        s = jax.vmap(apply, out_axes=-2)(nets)  # [..., M, tpm]
        s = jax.lax.stop_gradient(s.reshape(s.shape[:-2] + (self.num_tasks,)))
        return s + self.bias_scale * params["bias"]

    def __call__(self, params: Params, obs: Array) -> tuple[Array, Array]:
        """(r, u): indicators r_i(x) in {0, 1} and the pre-threshold u_i(x), both [..., T]."""
        chex.assert_shape(obs, (..., *self.obs_shape))
        if self.family == "hash":
            h = self.hash(params, obs)
            r = (h % self.modulus == 0).astype(jnp.float32)
            return r, r
        u = self.scores(params, obs)
        return (u > 0).astype(jnp.float32), u

    def hash(self, params: Params, obs: Array) -> Array:
        """h_i(x) = (sum_j a_ij x_j + b_i) mod P over the uint8 observation, exact in int32."""
        x = obs
        if jnp.issubdtype(x.dtype, jnp.floating):  # float frames in [0, 1] -> uint8 levels
            x = jnp.round(jnp.clip(x, 0.0, 1.0) * 255.0)
        x = _flat_obs(x.astype(jnp.int32), len(self.obs_shape))
        a = jax.lax.stop_gradient(params["a"]).astype(jnp.int32)
        b = jax.lax.stop_gradient(params["b"]).astype(jnp.int32)
        dim = a.shape[1]
        pad = (-dim) % _HASH_CHUNK
        x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, pad)])
        a = jnp.pad(a, [(0, 0), (0, pad)])
        xc = x.reshape(x.shape[:-1] + (-1, _HASH_CHUNK))  # [..., C, K]
        ac = a.reshape(a.shape[0], -1, _HASH_CHUNK)  # [T, C, K]
        part = jnp.einsum("...ck,tck->...tc", xc, ac, preferred_element_type=jnp.int32)
        h = jnp.sum(part % HASH_PRIME, axis=-1) + b
        return h % HASH_PRIME


def quantile_loss(u: Array, p: float, mask: Array | None = None) -> Array:
    """Quantile regression of the bias toward firing rate p: mean u * ((1 - p) - 1[u < 0]).

    Its minimiser over b puts a fraction p of states at u > 0 (the (1-p)-quantile of -s).
    """
    rho = u * ((1.0 - p) - (u < 0).astype(u.dtype))
    if mask is None:
        return jnp.mean(rho)
    m = mask.reshape(mask.shape + (1,) * (rho.ndim - mask.ndim)).astype(rho.dtype)
    return jnp.sum(rho * m) / jnp.maximum(jnp.sum(m) * rho.shape[-1], 1.0)
