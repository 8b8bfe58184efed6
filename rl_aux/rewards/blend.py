"""BARFI's learned reward blend: r_phi = r_p + b_phi(s) + sum_j w_phi,j(s) r_aux,j, gamma_phi.

Gupta et al. 2023 (BARFI), Sec. 4: the primary reward keeps weight 1; b and w are linear (or a
small MLP) in stop-gradient features; gamma_phi = sigmoid(g). Initialised as naive shaping
(w = 1, b = 0, gamma = gamma_init), so the outer loop starts from r_p + r_aux.
"""

from __future__ import annotations

import dataclasses

import chex
import jax
import jax.numpy as jnp

from rl_aux.rewards.base import RewardModule, aux_rewards, register_reward, stop_features
from rl_aux.typed_config import spec
from rl_aux.types import Array, Params, Transition


@dataclasses.dataclass(frozen=True)
class BlendConfig:
    sources: tuple = ()  # names of extras["r_aux/<name>"] sources; () = all the env publishes
    hidden: int = spec(0, ge=0)  # 0: linear in the features; >0: one tanh hidden layer
    learn_gamma: bool = True
    # false: no b_phi(s) (r_phi = r_p + w . r_aux): on episodic tasks a drifting per-step bias
    # can swamp r_p or pay the agent to avoid the goal (KeyRoom:
    # docs/results/bilevel-and-balancers.md)
    learn_bias: bool = True
    gamma_init: float = spec(0.99, gt=0.0, lt=1.0)
    reward_l2: float = spec(0.0, ge=0.0)  # ||phi_r||^2 weight (BARFI `reward_L2`)
    gamma_l2: float = spec(0.0, ge=0.0)  # gamma_phi weight (BARFI `gamma_L2`; pushes gamma down)
    hypergrad: str = spec("lookahead", choices=("lookahead", "neumann", "none"))  # none: naive
    lookahead_steps: int = spec(1, ge=1)  # M in the truncated M-step lookahead
    neumann_k: int = spec(5, ge=0)
    neumann_alpha: float = spec(5e-4, gt=0.0)
    meta_lr: float = spec(5e-3, gt=0.0)
    meta_clip: float = spec(1.0, gt=0.0)  # global-norm clip of the phi gradient
    critic_hidden: int = spec(64, ge=0)  # learner's primary critic V_p on features (0: linear)
    critic_lr: float = spec(1e-3, gt=0.0)  # its Adam step size (update_epochs steps per update)


OUTER_OPTIONS = ("meta_lr", "meta_clip", "neumann_alpha", "reward_l2", "gamma_l2")  # phi's step


@register_reward("blend")
class BlendReward(RewardModule):
    Config = BlendConfig

    @classmethod
    def unread_options(cls, cfg: BlendConfig) -> dict[str, str]:
        """The outer step's options without an outer step (hypergrad=none), neumann_alpha
        without the Neumann hypergradient, gamma_l2 without a learned gamma."""
        if cfg.hypergrad == "none":
            return {k: "read only by the outer step on phi" for k in OUTER_OPTIONS}
        unread = {}
        if cfg.hypergrad != "neumann":
            unread["neumann_alpha"] = "read only with reward.hypergrad=neumann"
        if not cfg.learn_gamma:
            unread["gamma_l2"] = "read only with reward.learn_gamma=true"
        return unread

    def init(self, key, spec, feat_dim: int) -> Params:
        """Zero weights and biases (1 for every w_j): exactly naive shaping at the start."""
        cfg = self.cfg
        n_out = 1 + len(cfg.sources)
        bias = jnp.concatenate([jnp.zeros(1), jnp.ones(len(cfg.sources))])
        g = jnp.log(cfg.gamma_init) - jnp.log1p(-cfg.gamma_init)
        if cfg.hidden:
            k1, _ = jax.random.split(key)
            w1 = jax.random.normal(k1, (feat_dim, cfg.hidden)) / jnp.sqrt(feat_dim)
            mlp = {"W1": w1, "c1": jnp.zeros(cfg.hidden), "W": jnp.zeros((cfg.hidden, n_out))}
            return {**mlp, "c": bias, "g": g}
        return {"W": jnp.zeros((feat_dim, n_out)), "c": bias, "g": g}

    def blend_terms(self, params: Params, feats: Array) -> tuple[Array, Array]:
        """b_phi(s) [B] and w_phi(s) [B, S]."""
        x = feats
        if "W1" in params:
            x = jnp.tanh(x @ params["W1"] + params["c1"])
        out = x @ params["W"] + params["c"]
        b = out[..., 0] if self.cfg.learn_bias else jnp.zeros_like(out[..., 0])
        return b, out[..., 1:]

    def discount(self, params: Params) -> Array:
        if not self.cfg.learn_gamma:
            return jnp.asarray(self.cfg.gamma_init, float)
        return jax.nn.sigmoid(params["g"])

    def reward(self, params: Params, tr: Transition) -> tuple[Array, Array]:
        """BARFI Eq. (r_phi): r_p + b_phi(s) + w_phi(s) . r_aux, and gamma_phi."""
        feats = stop_features(tr)
        r_aux = aux_rewards(tr, tuple(self.cfg.sources))
        b, w = self.blend_terms(params, feats)
        chex.assert_equal_shape([w, r_aux])
        r = jnp.asarray(tr.reward, float) + b + jnp.sum(w * r_aux, -1)
        return r, self.discount(params)

    def penalty(self, params: Params) -> Array:
        """reward_l2 * ||phi_r||^2 + gamma_l2 * gamma_phi (BARFI's regularisers, minimised)."""
        cfg = self.cfg
        sq = sum(jnp.sum(v**2) for k, v in params.items() if k in ("W", "W1"))
        pen = cfg.reward_l2 * sq
        if cfg.learn_gamma:
            pen = pen + cfg.gamma_l2 * jax.nn.sigmoid(params["g"])
        return pen
