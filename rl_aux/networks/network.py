"""`AgentNetwork`: torso -> optional recurrent core -> policy/value/Q heads, in one apply.

One `apply` returns every output the learner and auxiliary heads need:
`z` (torso features), `h` (history features after the core; `z` when there is none),
and `logits`/`value` (policy learners) or `q` (value learners).
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rl_aux.networks.cores import RecurrentCore, initial_carry, lstm_scan
from rl_aux.networks.torsos import ACTIVATIONS, TORSOS, MLPTorso, orthogonal
from rl_aux.typed_config import spec


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """What to build; every field has a sane default for small vector observations."""

    torso: str = spec(
        "mlp", choices=("mlp", "small_cnn", "nature_cnn", "impala_cnn", "nethack", "minihack")
    )
    hidden: tuple = (64, 64)  # MLP widths (small_cnn: the widths after its convs)
    linear_out: bool = False  # mlp/small_cnn: no activation on the last torso layer
    conv_channels: tuple = (16, 32)  # small_cnn
    conv_kernel: int = spec(2, ge=1)  # small_cnn
    conv_pool: int = spec(2, ge=0)  # small_cnn: max-pool after the convs (<= 1: none)
    activation: str = spec("tanh", choices=tuple(ACTIVATIONS))
    init: str = spec("orthogonal", choices=("orthogonal", "lecun"))
    features: int = spec(512, ge=1)  # CNN torso output width
    impala_width: float = spec(1.0, gt=0.0)
    # CNN convolutions: XLA's, matmuls, or XLA's with hand-written gradients (networks/conv.py)
    conv: str = spec("lax", choices=("lax", "patches", "canonical"))
    # ... on GPU/TPU instead (`patches`/`canonical` exist for XLA:CPU; `same`: keep `conv`)
    conv_off_cpu: str = spec("lax", choices=("lax", "patches", "canonical", "same"))
    # nethack/minihack: conv layers over the 9x9 crops; -1 = the torso's default (nethack 2,
    # minihack 0: the embedded crop goes straight into a Dense, much cheaper on CPU)
    crop_conv_layers: int = spec(-1, ge=-1)
    separate_critic: bool = False  # PPO: a second torso for the value (PureJaxRL style)
    core: str = spec("none", choices=("none", "lstm", "gru"))
    core_hidden: int = spec(128, ge=1)
    head_hidden: tuple = ()  # hidden layers between h and the Q/policy/value outputs
    # the activation on h before the head layers (Fang & Stachenfeld's Q: act -> Dense -> ...)
    head_pre_activation: bool = False
    rl_reads_sg_features: bool = False  # decoupled mode: RL heads see stop_gradient(h)


def effective_conv(cfg: NetworkConfig) -> str:
    """The convolution implementation to build: `conv` on CPU, `conv_off_cpu` elsewhere."""
    from rl_aux import backend

    if backend.on_cpu() or cfg.conv_off_cpu == "same":
        return cfg.conv
    return cfg.conv_off_cpu


def _torso(cfg: NetworkConfig, obs_ndim: int, name: str) -> nn.Module:
    if cfg.torso == "mlp":
        return MLPTorso(cfg.hidden, cfg.activation, cfg.init, obs_ndim, cfg.linear_out, name=name)
    if cfg.torso == "small_cnn":
        return TORSOS["small_cnn"](
            cfg.conv_channels,
            cfg.conv_kernel,
            cfg.conv_pool,
            cfg.hidden,
            cfg.activation,
            cfg.init,
            effective_conv(cfg),
            cfg.linear_out,
            name=name,
        )
    if cfg.torso == "nature_cnn":
        return TORSOS["nature_cnn"](cfg.features, cfg.init, effective_conv(cfg), name=name)
    if cfg.torso == "impala_cnn":
        return TORSOS["impala_cnn"](
            width_multiplier=cfg.impala_width,
            features=cfg.features,
            conv=effective_conv(cfg),
            name=name,
        )
    if cfg.torso in ("nethack", "minihack"):  # dict observations (envs/nethack.py)
        from rl_aux.networks.nethack import NetHackEncoder

        minihack = cfg.torso == "minihack"
        embed = 8 if minihack else 16  # minihack: crops only, a smaller table
        crop_layers = cfg.crop_conv_layers if cfg.crop_conv_layers >= 0 else (0 if minihack else 2)
        return NetHackEncoder(
            embed=embed, crop_layers=crop_layers, features=cfg.features, name=name
        )
    raise ValueError(f"network.torso={cfg.torso!r}; accepted: {', '.join(TORSOS)}")


class AgentNetwork(nn.Module):
    """The whole agent network; `kind` is 'actor_critic' (PPO) or 'q' (DQN)."""

    cfg: NetworkConfig
    num_actions: int
    obs_ndim: int
    kind: str = "actor_critic"

    def setup(self):
        cfg = self.cfg
        self.torso = _torso(cfg, self.obs_ndim, "torso")
        if cfg.separate_critic:
            self.critic_torso = _torso(cfg, self.obs_ndim, "critic_torso")
        if cfg.core != "none":
            self.core = RecurrentCore(cfg.core, cfg.core_hidden)
        orth = cfg.init == "orthogonal"
        k = lambda s: orthogonal(s) if orth else nn.initializers.lecun_normal()
        act = ACTIVATIONS[cfg.activation]
        self._act = act
        self.head_layers = [nn.Dense(w, kernel_init=k(np.sqrt(2))) for w in cfg.head_hidden]
        if self.kind == "actor_critic":
            self.policy = nn.Dense(self.num_actions, kernel_init=k(0.01))
            self.value = nn.Dense(1, kernel_init=k(1.0))
        elif self.kind == "q":
            self.q = nn.Dense(self.num_actions, kernel_init=k(1.0))
        else:
            raise ValueError(f"network kind={self.kind!r}; accepted: actor_critic, q")

    def __call__(self, obs, carry=None, reset=None) -> tuple[dict[str, Any], Any]:
        """obs [B, ...] (one step). Returns (outputs, new_carry)."""
        z = self.encode(obs)
        h = z
        if self.cfg.core != "none":
            if reset is None:
                reset = jnp.zeros(z.shape[:1], bool)
            h, carry = self.core_step(z, carry, reset)
        return self.outputs(obs, z, h), carry

    def encode(self, obs):
        """Torso features z [B, D] of obs [B, ...]."""
        return self.torso(obs)

    def core_step(self, z, carry, reset):
        """One recurrent step: (h [B, H], new carry); `reset` [B] zeroes the carry first."""
        return self.core(z, carry, reset)

    def outputs(self, obs, z, h) -> dict[str, Any]:
        """Every output from the torso features z and history features h (obs: critic torso)."""
        x = jax.lax.stop_gradient(h) if self.cfg.rl_reads_sg_features else h
        if self.cfg.head_pre_activation:
            x = self._act(x)
        for layer in self.head_layers:
            x = self._act(layer(x))
        out: dict[str, Any] = {"z": z, "h": h}
        if self.kind == "actor_critic":
            out["logits"] = self.policy(x)
            if self.cfg.separate_critic:
                v_in = self.critic_torso(obs)
                if self.cfg.rl_reads_sg_features:
                    v_in = jax.lax.stop_gradient(v_in)
            else:
                v_in = x
            out["value"] = self.value(v_in)[..., 0]
        else:
            out["q"] = self.q(x)
        return out


def unroll(net: AgentNetwork, params, obs, carry, first) -> tuple[dict[str, Any], Any]:
    """A recurrent network over sequences: obs [T, B, ...], first [T, B] -> (outputs [T, B, ...],
    carries [T, B, ...] after each step). Equal to stepping `net.apply` T times, but the torso
    and heads run once on all T x B inputs and only the core is scanned: per-step convolutions
    inside `lax.scan` cost T small kernels where one large one does (test_network.py)."""
    t, b = first.shape
    merge = lambda x: x.reshape((t * b, *x.shape[2:]))
    flat_obs = jax.tree.map(merge, obs)
    z = cast(jax.Array, net.apply(params, flat_obs, method=AgentNetwork.encode))

    def step(c, x):
        z_t, f_t = x
        h_t, c = net.apply(params, z_t, c, f_t, method=AgentNetwork.core_step)
        return c, (h_t, c)

    if net.cfg.core == "lstm":  # fused kernels, input projection outside the loop
        cell = params["params"]["core"]["cell"]
        h, carries = lstm_scan(cell, z.reshape((t, b, -1)), carry, first)
    else:
        _, (h, carries) = jax.lax.scan(step, carry, (z.reshape((t, b, -1)), first))
    out = net.apply(params, flat_obs, z, merge(h), method=AgentNetwork.outputs)
    return jax.tree.map(lambda x: x.reshape((t, b, *x.shape[1:])), out), carries


def make_network(cfg: NetworkConfig, num_actions: int, obs_shape: tuple, kind: str) -> AgentNetwork:
    dict_obs = bool(obs_shape) and isinstance(obs_shape[0], tuple)  # (("key", shape), ...)
    if dict_obs != (cfg.torso in ("nethack", "minihack")):
        raise ValueError(
            f"network.torso={cfg.torso!r} does not fit observations {obs_shape}: dict "
            "observations (nethack/*, minihack/*) need torso nethack or minihack, and those "
            "torsos need dict observations"
        )
    obs_ndim = len(obs_shape) if cfg.torso == "mlp" else 3
    return AgentNetwork(cfg, num_actions, obs_ndim, kind)


def network_initial_carry(cfg: NetworkConfig, batch: int):
    """Zero carry for `batch` sequences, or None for feed-forward networks."""
    return None if cfg.core == "none" else initial_carry(cfg.core, cfg.core_hidden, batch)
