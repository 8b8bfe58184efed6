"""Action-conditional k-step future-observation prediction from the history features h_t.

The PSR-style loss of DRL² (Kwon, Yang, Nowak, Hanna, arXiv 2402.07102): from h_t and the
actions a_t..a_{t+j-1}, predict o_{t+j} for j = 1..k, with cross-entropy on one-hot parts and
squared error on real parts of the observation. Targets never cross an episode end. Combined
with `network.rl_reads_sg_features=true` this is the decoupled mode (history trained only by
prediction); with `stop_gradient_to_torso=true` it is a probe that never shapes h.
"""

from __future__ import annotations

import dataclasses
import re
from typing import cast

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from rl_aux.heads.base import AuxHead, HeadConfig, HeadInputs, register_head
from rl_aux.typed_config import ConfigError, spec
from rl_aux.types import Array, EnvSpec


@dataclasses.dataclass(frozen=True)
class FutureConfig(HeadConfig):
    k: int = spec(1, ge=1)  # prediction horizon (steps ahead)
    hidden: int = spec(128, ge=1)
    # Observation layout: "auto" (the env's own `obs_parts`, else one real vector) or e.g.
    # "cat:5,cat:3,mse:1" (one-hot parts predicted with cross-entropy, real parts with MSE).
    parts: str = "auto"


def parse_parts(parts: str, obs_dim: int) -> tuple[tuple[str, int], ...]:
    """'cat:5,mse:2' -> (('cat', 5), ('mse', 2)), checked against the observation size."""
    out = []
    for item in parts.split(","):
        m = re.fullmatch(r"\s*(cat|mse):(\d+)\s*", item)
        if not m or int(m.group(2)) < 1:
            raise ConfigError(
                f"heads.future.parts={parts!r}: bad item {item!r}; accepted: comma-separated "
                "'cat:<n>' or 'mse:<n>' with n >= 1, or 'auto'"
            )
        out.append((m.group(1), int(m.group(2))))
    if sum(n for _, n in out) != obs_dim:
        raise ConfigError(
            f"heads.future.parts={parts!r} sums to {sum(n for _, n in out)} but the observation "
            f"has {obs_dim} entries"
        )
    return tuple(out)


def resolve_parts(parts: str, env_spec: EnvSpec) -> tuple[tuple[str, int], ...]:
    """The head's observation layout: `parts`, or for "auto" the env spec's `obs_parts`."""
    if len(env_spec.obs_shape) != 1:
        raise ConfigError(
            f"head future needs flat vector observations; env {env_spec.name} has shape "
            f"{env_spec.obs_shape}"
        )
    dim = env_spec.obs_shape[0]
    if parts == "auto":
        parts = env_spec.obs_parts or f"mse:{dim}"
    return parse_parts(parts, dim)


class _FuturePredictor(nn.Module):
    """[h, a_{t..t+k-1} (actions beyond step j zeroed), onehot(j)] -> o_{t+j}, for every j."""

    k: int
    hidden: int
    num_actions: int
    obs_dim: int

    @nn.compact
    def __call__(self, h: Array, actions: Array) -> Array:
        # h [..., H], actions [..., k] int -> predictions [..., k, obs_dim]
        k, A = self.k, self.num_actions
        a = jax.nn.one_hot(actions, A)  # [..., k, A]
        keep = jnp.tril(jnp.ones((k, k)))  # row j keeps actions 0..j
        a_j = keep[:, :, None] * a[..., None, :, :]  # [..., k(j), k, A]
        a_j = a_j.reshape(a_j.shape[:-2] + (k * A,))
        j = jnp.broadcast_to(jnp.eye(k), a_j.shape[:-1] + (k,))
        hj = jnp.broadcast_to(h[..., None, :], a_j.shape[:-1] + h.shape[-1:])
        x = jnp.concatenate([hj, a_j, j], -1)
        x = nn.relu(nn.Dense(self.hidden)(x))
        x = nn.relu(nn.Dense(self.hidden)(x))
        return nn.Dense(self.obs_dim)(x)


def future_targets(inputs: HeadInputs, k: int) -> tuple[Array, Array, Array]:
    """Targets o_{t+j}, actions a_{t..t+k-1} and validity, all from [T, B] sequences.

    o_{t+j} = next_obs[t+j-1]; valid iff t+j-1 < T, no episode ended at t..t+j-2 and the
    sample (and every step it reads) is real per `inputs.mask`. Returns
    (obs [T, B, k, O], actions [T, B, k], valid [T, B, k]).
    """
    T = inputs.action.shape[0]
    done = jnp.logical_or(inputs.terminated, inputs.truncated)
    real = jnp.ones(done.shape, bool) if inputs.mask is None else inputs.mask.astype(bool)

    def shift(x, j, fill):  # x[t+j], `fill` past the end
        pad = jnp.full((j,) + x.shape[1:], fill, x.dtype)
        return jnp.concatenate([x[j:], pad], 0)[:T]

    obs, acts, valid = [], [], []
    alive = real  # no episode end strictly before step t+j-1, within the sequence
    for j in range(1, k + 1):
        obs.append(shift(inputs.next_obs, j - 1, 0))
        acts.append(shift(inputs.action, j - 1, 0))
        in_seq = shift(real, j - 1, False)
        alive = jnp.logical_and(alive, in_seq)
        valid.append(alive)
        alive = jnp.logical_and(alive, ~shift(done, j - 1, True))
    return jnp.stack(obs, 2), jnp.stack(acts, 2), jnp.stack(valid, 2)


def part_losses(pred: Array, target: Array, parts) -> dict[str, Array]:
    """Per-part loss: CE against argmax(target part) for 'cat', mean squared error for 'mse'."""
    out, i = {}, 0
    for n, (kind, size) in enumerate(parts):
        p, y = pred[..., i : i + size], target[..., i : i + size]
        if kind == "cat":
            out[f"part{n}_{kind}"] = optax.softmax_cross_entropy_with_integer_labels(
                p, jnp.argmax(y, -1)
            )
        else:
            out[f"part{n}_{kind}"] = jnp.mean((p - y) ** 2, -1)
        i += size
    return out


@register_head("future")
class FuturePrediction(AuxHead):
    """Predicts o_{t+1..t+k} from h_t and the actions taken (DRL² PSR loss)."""

    Config = FutureConfig
    cfg: FutureConfig  # the instance this head was built with (AuxHead.__init__)
    requires = frozenset()

    def __init__(self, cfg: FutureConfig, spec: EnvSpec):
        super().__init__(cfg, spec)
        self.parts = resolve_parts(cfg.parts, spec)
        self.obs_dim = spec.obs_shape[0]

    def module(self) -> nn.Module:
        return _FuturePredictor(self.cfg.k, self.cfg.hidden, self.spec.num_actions, self.obs_dim)

    def init(self, key, inputs: HeadInputs):
        h = self.features(inputs.feats)
        acts = jnp.zeros(h.shape[:-1] + (self.cfg.k,), jnp.int32)
        return self.module().init(key, h, acts)

    def loss(self, params, inputs: HeadInputs, key):
        """DRL² PSRLoss (Kwon et al., arXiv 2402.07102): sum_j l(o_{t+j}, psi(h_t, a_t..))."""
        if inputs.action.ndim == 1:  # unordered [B] samples: only o_{t+1} is known
            if self.cfg.k != 1:
                raise ConfigError(
                    f"heads.future.k={self.cfg.k} needs time-ordered sequences (recurrent "
                    "PPO); with [B] samples only k=1 is possible"
                )
            inputs = jax.tree.map(lambda x: x[None], inputs)
        h = self.features(inputs.feats)
        chex.assert_rank(h, 3)
        target, acts, valid = future_targets(inputs, self.cfg.k)
        pred = cast(Array, self.module().apply(params, h, acts))
        chex.assert_equal_shape([pred, target])
        losses = part_losses(pred, target, self.parts)
        w = valid.astype(jnp.float32)
        denom = jnp.maximum(w.sum(), 1.0)
        metrics = {name: (v * w).sum() / denom for name, v in losses.items()}
        total = sum(metrics.values())
        step1 = cast(Array, sum(losses.values()))[..., 0]
        metrics["next_obs_loss"] = (step1 * w[..., 0]).sum() / jnp.maximum(w[..., 0].sum(), 1.0)
        metrics["valid_frac"] = w.mean()
        return total, metrics
