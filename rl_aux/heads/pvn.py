"""Proto-value network head (Farebrother et al., "Proto-Value Networks", ICLR 2023).

Psi_i(x, a) = w_{i,a}^T phi(x) + c_{i,a}, one linear map per indicator task i (no hidden layer),
learned by off-policy TD for the successor measure of the uniform-random policy. The indicator
thresholds (family "rnd") are fitted by quantile regression toward the firing rate p.
"""

from __future__ import annotations

import dataclasses
from typing import cast

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from rl_aux.heads.base import (
    AuxHead,
    HeadConfig,
    HeadInputs,
    flatten_time,
    masked_mean,
    register_head,
)
from rl_aux.pvn.indicators import Indicators, quantile_loss
from rl_aux.typed_config import spec
from rl_aux.types import Array


@dataclasses.dataclass(frozen=True)
class PVNConfig(HeadConfig):
    num_tasks: int = spec(100, ge=1)  # T indicator tasks
    indicator: str = spec("rnd", choices=("rnd", "hash"))
    p: float = spec(0.01, gt=0.0, lt=1.0)  # target firing rate of each indicator
    tasks_per_module: int = spec(10, ge=1)  # rnd: tasks per frozen random net
    rnd_net: str = spec("auto", choices=("auto", "nature_cnn", "mlp"))
    rnd_hidden: int = spec(64, ge=1)  # rnd MLP width (small/vector observations)
    bias_scale: float = spec(1.0, gt=0.0)  # rnd: threshold = bias_scale * param (faster QR)
    rnd_relu: bool = True  # rnd: ReLU on the random scores (paper code); see indicators.py
    gamma: float = spec(0.99, ge=0.0, lt=1.0)
    # online warm-up: the TD term is on only while the batch firing rate is within warmup_tol * p
    # of p (offline pre-training uses a step count instead, as the paper's code does)
    warmup_tol: float = spec(0.5, gt=0.0)
    target_tau: float = spec(0.01, gt=0.0, le=1.0)  # EMA target, 1% per step (paper code)


class PsiModule(nn.Module):
    """T independent Dense(num_actions) maps over the same features: Psi [..., T, A]."""

    num_tasks: int
    num_actions: int

    @nn.compact
    def __call__(self, phi: Array) -> Array:
        dense = nn.vmap(
            nn.Dense,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            # flax leaves in_axes unannotated (inferred int from its default); None broadcasts
            in_axes=None,  # pyright: ignore[reportArgumentType]
            out_axes=-2,
            axis_size=self.num_tasks,
        )
        return dense(self.num_actions, kernel_init=nn.initializers.xavier_uniform(), name="psi")(
            phi
        )


def pvn_td_error(
    psi: Array, psi_next_target: Array, reward: Array, action: Array, discount: Array
) -> Array:
    """Successor-measure TD error y - Psi(x_t, a_t), [B, T]; Farebrother et al. 2023, Sec. 4
    (code: pvn/offline.py): y_i = 1_{S_i}(x_t) + gamma (1 - d) mean_a' Psi_i(x_{t+1}, a'; theta^-).

    psi, psi_next_target [B, T, A]; reward = indicators of x_t [B, T]; action [B]; discount
    [B] = gamma * (1 - terminated) (truncation still bootstraps).
    """
    chex.assert_rank([psi, psi_next_target, reward, action, discount], [3, 3, 2, 1, 1])
    chex.assert_equal_shape([psi, psi_next_target])
    psi_sa = jnp.einsum("bta,ba->bt", psi, jax.nn.one_hot(action, psi.shape[-1]))
    v_next = psi_next_target.mean(-1)  # the uniform-random policy: a mean, never a max
    y = jax.lax.stop_gradient(reward + discount[:, None] * v_next)
    return y - psi_sa


@register_head("pvn")
class PVNHead(AuxHead):
    """PVN as an online auxiliary head: the indicator params live beside Psi in this head."""

    Config = PVNConfig
    cfg: PVNConfig  # the instance this head was built with (AuxHead.__init__)
    requires = frozenset({"target_next_feats", "target_head_params"})

    def __init__(self, cfg: PVNConfig, spec):
        super().__init__(cfg, spec)
        self.indicators = Indicators(
            cfg.indicator,
            cfg.num_tasks,
            cfg.p,
            spec.obs_shape,
            cfg.tasks_per_module,
            cfg.rnd_net,
            cfg.rnd_hidden,
            cfg.bias_scale,
            cfg.rnd_relu,
        )

    def module(self) -> nn.Module:
        return PsiModule(self.cfg.num_tasks, self.spec.num_actions)

    def init(self, key, inputs: HeadInputs):
        k_psi, k_ind = jax.random.split(key)
        return {
            "psi": self.module().init(k_psi, self.features(inputs.feats)),
            "indicator": self.indicators.init(k_ind),
        }

    def psi(self, params, phi: Array) -> Array:
        return cast(Array, self.module().apply(params["psi"], phi))

    def terms(self, params, target_params, inputs: HeadInputs, phi_next_target: Array):
        """(td, qr, metrics) on a batch [B]; the caller decides when the TD term is on."""
        cfg = self.cfg
        r, u = self.indicators(params["indicator"], inputs.obs)
        psi = self.psi(params, self.features(inputs.feats))
        psi_next = self.psi(target_params, phi_next_target)
        discount = cfg.gamma * (1.0 - inputs.terminated.astype(jnp.float32))
        err = pvn_td_error(psi, psi_next, r, inputs.action, discount)
        td = masked_mean(0.5 * err**2, inputs.mask)
        qr = quantile_loss(u, cfg.p, inputs.mask) if cfg.indicator == "rnd" else jnp.zeros(())
        rate = masked_mean(r, inputs.mask)
        metrics = {"td": td, "qr": qr, "fire_rate": rate, "psi_mean": psi.mean()}
        return td, qr, metrics

    def loss(self, params, inputs: HeadInputs, key):
        """TD (gated on the firing rate being near p) + quantile regression of the bias."""
        inputs = flatten_time(inputs)  # per transition: sequences are just more transitions
        target_feats = cast(dict, inputs.target_next_feats)  # required: never None here
        phi_next = jax.lax.stop_gradient(target_feats[self.cfg.features])
        td, qr, m = self.terms(params, inputs.target_head_params, inputs, phi_next)
        on = (jnp.abs(m["fire_rate"] - self.cfg.p) <= self.cfg.warmup_tol * self.cfg.p).astype(
            jnp.float32
        )
        m["td_on"] = on
        return on * td + qr, m
