"""PVN offline pre-training and linear evaluation (Farebrother et al., ICLR 2023).

`PVNPretrainer`: the torso + PVN head trained by successor-measure TD on a fixed dataset of
transitions (rl_aux/dataset.py), vmappable over seeds, with the quantile-regression warm-up and
an EMA target (paper code: pvn/offline.py). `run_pretrain` is the `agent=pvn_pretrain` trainer
(`rl-aux train experiment=pvn_pretrain`): its chunks in the shared run loop, then
`pvn_params.msgpack`.
`PVNLinearEval` is DQN on a pre-trained torso: frozen (only the linear Q layer learns) or
fine-tuned (paper code: pvn/online.py, `--use_trainable_encoder`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization, struct

from agents.dqn import DQN, DQNConfig
from rl_aux.agent import register_agent
from rl_aux.dataset import load_transitions
from rl_aux.heads.base import HeadInputs
from rl_aux.heads.pvn import PVNConfig, PVNHead
from rl_aux.learner import apply_gradients, target_update
from rl_aux.networks.network import NetworkConfig, make_network
from rl_aux.typed_config import ConfigError, spec
from rl_aux.types import EnvSpec, Transition

PARAMS_FILE = "pvn_params.msgpack"
PARAMS_META = "pvn_params.json"


@dataclasses.dataclass(frozen=True)
class PVNPretrainConfig:
    """Offline pre-training; the PVN options themselves are `heads.pvn.*` (head=pvn)."""

    dataset: str = ""  # directory in the rl-aux-transitions/1 format (docs/pvn.md)
    dataset_limit: int = spec(0, ge=0)  # use only the first N transitions (0 = all)
    num_envs: int = spec(1, ge=1)  # unused offline (kept for the shared config surface)
    batch_size: int = spec(256, ge=1)
    lr: float = spec(1.05e-4, gt=0.0)  # paper code: 6.25e-5 * (256/32)^(1/4)
    adam_eps: float = spec(1.5e-4, gt=0.0)
    max_grad_norm: float = spec(0.0, ge=0.0)  # 0 = no clipping (paper code: none)
    warmup_steps: int = spec(62_500, ge=0)  # TD term off while the thresholds settle
    qr_steps: int = spec(0, ge=0)  # thresholds fitted for this many steps (0 = always, paper)
    decay_steps: int = spec(0, ge=0)  # > 0: lr decays linearly to lr/10 (0 = constant, paper)
    network: NetworkConfig = NetworkConfig(torso="impala_cnn", impala_width=8.0, features=4096)


@struct.dataclass
class PretrainState:
    params: Any  # {"net": AgentNetwork params, "heads": {"pvn": head params}}
    target: Any  # EMA copy (1% per step)
    opt_state: Any
    step: jax.Array
    key: chex.PRNGKey


class PVNPretrainer:
    """Torso + linear PVN head, trained on a dataset Transition with leaves [N, ...]."""

    def __init__(
        self,
        network: NetworkConfig,
        head_cfg: PVNConfig,
        spec: EnvSpec,
        batch_size: int = 256,
        lr: float = 1.05e-4,
        adam_eps: float = 1.5e-4,
        max_grad_norm: float = 0.0,
        warmup_steps: int = 0,
        qr_steps: int = 0,
        decay_steps: int = 0,
    ):
        if network.core != "none":
            raise ConfigError(
                f"agent.network.core={network.core!r}: PVN pre-training has no recurrent "
                "variant; accepted: none"
            )
        self.spec = spec
        self.net = make_network(network, spec.num_actions, spec.obs_shape, "q")
        self.head = PVNHead(head_cfg, spec)
        self.batch_size = batch_size
        self.warmup_steps = warmup_steps
        self.qr_steps = qr_steps
        # decay_steps > 0: lr decays linearly to lr / 10 (CPU-scale runs; the paper keeps it
        # constant). With qr_steps > 0 the thresholds' lr decays to 0 over the QR phase, so
        # they stop at a settled value instead of mid-oscillation.
        net_lr = optax.linear_schedule(lr, lr / 10, decay_steps) if decay_steps else lr
        bias_lr = optax.linear_schedule(lr, 0.0, qr_steps) if qr_steps else lr
        clip = [optax.clip_by_global_norm(max_grad_norm)] if max_grad_norm > 0 else []
        self.tx = optax.multi_transform(
            {
                "train": optax.chain(*clip, optax.adam(net_lr, eps=adam_eps)),
                "bias": optax.adam(bias_lr, eps=adam_eps),
                "frozen": optax.set_to_zero(),  # frozen random nets / hash constants
            },
            _labels,
        )

    def init(self, key) -> PretrainState:
        k_net, k_head, key = jax.random.split(key, 3)
        obs = jnp.zeros((1,) + self.spec.obs_shape, self.spec.obs_dtype)
        net_params = self.net.init(k_net, obs)
        out, _ = self.net.apply(net_params, obs)
        inputs = _inputs(obs, jnp.zeros(1, jnp.int32), jnp.zeros(1, bool), out, self.spec)
        params = {"net": net_params, "heads": {"pvn": self.head.init(k_head, inputs)}}
        return PretrainState(
            params=params,
            target=params,
            opt_state=self.tx.init(params),
            step=jnp.zeros((), jnp.int32),
            key=key,
        )

    def loss(self, params, target, tr: Transition, td_on, qr_on=1.0):
        """(TD on the successor measure x td_on + threshold QR x qr_on, metrics), batch [B]."""
        (b,) = tr.action.shape
        chex.assert_shape(tr.terminated, (b,))
        out, _ = self.net.apply(params["net"], tr.obs)
        out_next, _ = self.net.apply(target["net"], tr.next_obs)
        phi_next = jax.lax.stop_gradient(out_next[self.head.cfg.features])
        inputs = _inputs(tr.obs, tr.action, tr.terminated, out, self.spec)
        td, qr, m = self.head.terms(
            params["heads"]["pvn"], target["heads"]["pvn"], inputs, phi_next
        )
        m["td_on"] = td_on
        return td_on * td + qr_on * qr, m

    def step(self, state: PretrainState, data: Transition):
        """One gradient step on a uniformly sampled batch; EMA target update."""
        key, k = jax.random.split(state.key)
        n = data.action.shape[0]
        idx = jax.random.randint(k, (self.batch_size,), 0, n)
        tr = jax.tree.map(lambda x: x[idx], data)
        td_on = (state.step >= self.warmup_steps).astype(jnp.float32)
        qr_on = ((self.qr_steps == 0) | (state.step < self.qr_steps)).astype(jnp.float32)
        grads, m = jax.grad(self.loss, has_aux=True)(state.params, state.target, tr, td_on, qr_on)
        params, opt_state = apply_gradients(self.tx, grads, state.opt_state, state.params)
        target = target_update(state.target, params, self.head.cfg.target_tau)
        return PretrainState(
            params=params, target=target, opt_state=opt_state, step=state.step + 1, key=key
        ), m

    def train(self, state: PretrainState, data: Transition, num_steps: int):
        """`num_steps` gradient steps in one lax.scan; metrics averaged over the steps."""
        state, m = jax.lax.scan(lambda s, _: self.step(s, data), state, None, num_steps)
        return state, jax.tree.map(jnp.mean, m)

    def features(self, params, obs):
        """phi(x): the torso features the PVN head reads."""
        return self.net.apply(params["net"], obs)[0][self.head.cfg.features]

    def psi(self, params, obs):
        return self.head.psi(params["heads"]["pvn"], self.features(params, obs))


def _labels(params):
    def label(path, _):
        keys = [getattr(p, "key", getattr(p, "name", None)) for p in path]
        if "indicator" not in keys:
            return "train"
        return "bias" if keys[-1] == "bias" else "frozen"

    return jax.tree_util.tree_map_with_path(label, params)


def _inputs(obs, action, terminated, out, spec: EnvSpec) -> HeadInputs:
    z = jnp.zeros(action.shape, jnp.float32)
    return HeadInputs(
        obs=obs,
        action=action,
        reward=z,
        terminated=terminated,
        truncated=jnp.zeros_like(terminated),
        next_obs=obs,
        feats=out,
        num_actions=spec.num_actions,
    )


def spec_from_meta(meta: dict) -> EnvSpec:
    return EnvSpec(
        name=meta.get("env", "") or "dataset",
        obs_shape=tuple(meta["obs_shape"]),
        obs_dtype=jnp.dtype(meta["obs_dtype"]),
        num_actions=int(meta["num_actions"]),
        max_episode_steps=0,
    )


def save_params(run_dir: str, params, network: NetworkConfig, spec: EnvSpec, extra: dict) -> str:
    """Seed-stacked params to <run_dir>/pvn_params.msgpack + a json of what built them."""
    path = os.path.join(run_dir, PARAMS_FILE)
    with open(path, "wb") as f:
        f.write(serialization.to_bytes(jax.device_get(params)))
    meta = {
        "network": dataclasses.asdict(network),
        "obs_shape": list(spec.obs_shape),
        "num_actions": spec.num_actions,
        **extra,
    }
    with open(os.path.join(run_dir, PARAMS_META), "w") as f:
        json.dump(meta, f, indent=1)
    return path


def load_torso(path: str, seed_index: int, network: NetworkConfig, expected):
    """One seed's pre-trained torso params, checked against the torso that will read them.

    `expected`: the reading network's torso params (or their eval_shape); the tree and every
    shape must match, and so must the activation (which shapes do not show).
    """
    run_dir = path if os.path.isdir(path) else os.path.dirname(path)
    meta_path = os.path.join(run_dir, PARAMS_META)
    if not os.path.exists(meta_path):
        raise ValueError(f"agent.pretrained={path}: no {PARAMS_META} (run pvn_pretrain first)")
    with open(meta_path) as f:
        meta = json.load(f)
    if meta["network"]["activation"] != network.activation and network.torso == "mlp":
        raise ValueError(
            f"agent.pretrained={path}: network.activation {meta['network']['activation']!r} "
            f"!= {network.activation!r}"
        )
    with open(os.path.join(run_dir, PARAMS_FILE), "rb") as f:
        raw = serialization.msgpack_restore(f.read())
    torso = raw["net"]["params"]["torso"]
    seeds = jax.tree.leaves(torso)[0].shape[0]
    if not 0 <= seed_index < seeds:
        raise ValueError(f"agent.pretrained_seed={seed_index}; accepted: 0..{seeds - 1}")
    torso = jax.tree.map(lambda x: jnp.asarray(x[seed_index]), torso)
    got = jax.tree.map(lambda x: tuple(x.shape), torso)
    want = jax.tree.map(lambda x: tuple(x.shape), expected)
    if got != want:
        raise ValueError(
            f"agent.pretrained={path}: its torso (pre-trained with network={meta['network']}) "
            f"does not fit agent.network (shapes {got} vs {want})"
        )
    return torso


def _norm(v):
    return list(v) if isinstance(v, (list, tuple)) else v


# ------------------------------------------------------------------------------ host loop
def pretrainer(cfg) -> tuple[PVNPretrainer, Any, dict, EnvSpec]:
    """The pre-trainer of `cfg.agent`, its dataset (on device), the dataset's meta and spec."""
    a: PVNPretrainConfig = cfg.agent
    if "pvn" not in cfg.heads:
        raise ValueError("agent=pvn_pretrain needs head=pvn (its options are heads.pvn.*)")
    if not a.dataset:
        raise ValueError("agent.dataset is empty; give a transition directory (docs/pvn.md)")
    data, meta = load_transitions(a.dataset, a.dataset_limit or None)
    spec_ = spec_from_meta(meta)
    pre = PVNPretrainer(
        a.network,
        cfg.heads["pvn"],
        spec_,
        a.batch_size,
        a.lr,
        a.adam_eps,
        a.max_grad_norm,
        a.warmup_steps,
        a.qr_steps,
        a.decay_steps,
    )
    return pre, jax.device_put(data), meta, spec_


def run_pretrain(cfg, quiet: bool = False, resolved: dict | None = None) -> dict:
    """`rl-aux train agent=pvn_pretrain head=pvn`: total_timesteps = gradient steps.

    Chunks of `logger.log_interval` gradient steps in the shared run loop (rl_aux/run_loop.py):
    the same run store, checkpoints and resume as every other run."""
    from rl_aux.run_loop import Chunk, RunLoop, RunPlan
    from rl_aux.run_store import say, scrub_secrets

    pre, data, meta, spec_ = pretrainer(cfg)
    seeds = [cfg.seed + s for s in range(cfg.num_seeds)]
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    total = cfg.total_timesteps
    per = min(cfg.logger.log_interval or max(total // 100, 1), total)
    plan = RunPlan(
        run_dir=cfg.run_dir,
        label=cfg.label,
        resume=bool(cfg.resume),
        total_steps=total,
        ckpt_every=cfg.checkpoint.every or max(total // 10, 1),
        keep=cfg.checkpoint.keep,
        quiet=quiet,
        progress=cfg.logger.progress,
        progress_keys=(("td", "pvn/td"), ("fire_rate", "pvn/fire_rate")),
    )
    config = resolved if resolved is not None else scrub_secrets(cfg.to_yaml_dict())
    with RunLoop(plan, config) as loop:
        t0 = time.time()
        state = jax.jit(jax.vmap(pre.init))(keys)
        got = loop.restore(state)
        restored = None if got is None else got[1]
        box = {"state": state if got is None else got[0], "m": {}}
        chunk = lambda n: jax.jit(jax.vmap(lambda s, d: pre.train(s, d, n), in_axes=(0, None)))
        fns = {per: chunk(per).lower(box["state"], data).compile()}
        _, m_shape = jax.eval_shape(lambda s: jax.vmap(lambda x: pre.step(x, data))(s), state)
        cols = ["global_step", "seed", "grid", *(f"pvn/{k}" for k in sorted(m_shape))]
        compile_s = time.time() - t0
        done = 0 if restored is None else int(restored["global_step"])
        run_meta = {"compile_s": compile_s, "dataset": cfg.agent.dataset}
        loop.start(
            [*cols, "charts/sps", "time/elapsed_s"],
            run_meta | {"dataset_count": meta["count"]},
            restored,
            done,
        )
        say(
            quiet,
            f"[{cfg.label}] pvn pre-training on {meta['count']} transitions of {meta['env']!r}: "
            f"{cfg.num_seeds} seed(s) x {total} steps; compiled in {compile_s:.1f}s",
        )

        def chunk_fn(c: int) -> Chunk:
            prev = c * per
            n = min(per, total - prev)
            if n not in fns:
                fns[n] = chunk(n).lower(box["state"], data).compile()
            box["state"], m = fns[n](box["state"], data)
            box["m"] = m = jax.device_get(m)
            rows = [
                {
                    "global_step": prev + n,
                    "seed": s,
                    "grid": 0,
                    **{f"pvn/{k}": float(np.asarray(v)[i]) for k, v in m.items()},
                }
                for i, s in enumerate(seeds)
            ]
            return Chunk(rows, prev, prev + n, box["state"], final=prev + n == total)

        start = 0 if restored is None else int(restored["chunk"]) + 1
        loop.run(range(start, -(-total // per)), chunk_fn)
        loop.finish()
    path = save_params(
        cfg.run_dir,
        box["state"].params,
        cfg.agent.network,
        spec_,
        {"seeds": seeds, "steps": total, "dataset": cfg.agent.dataset},
    )
    say(quiet, f"[{cfg.label}] done -> {path}")
    last = {k: float(np.mean(v)) for k, v in box["m"].items()}
    return {"run_dir": cfg.run_dir, "label": cfg.label, "final": last}


@register_agent("pvn_pretrain")
class PVNPretrainAgent:
    """The `agent=pvn_pretrain` entry: an offline learner that owns its host loop."""

    Config = PVNPretrainConfig
    run_offline = staticmethod(run_pretrain)


# ------------------------------------------------------------------------------ linear eval
@dataclasses.dataclass(frozen=True)
class PVNLinearConfig(DQNConfig):
    """DQN on a pre-trained PVN torso; defaults are the paper code's online settings."""

    pretrained: str = ""  # run dir (or its pvn_params.msgpack) of pvn_pretrain; "" = random
    pretrained_seed: int = spec(0, ge=0)  # which pre-training seed's torso to load
    mode: str = spec("frozen", choices=("frozen", "finetune"))
    double_q: bool = True
    n_step: int = spec(5, ge=1)
    eps_start: float = spec(0.01, ge=0.0, le=1.0)
    eps_finish: float = spec(0.01, ge=0.0, le=1.0)
    lr: float = spec(6.25e-5, gt=0.0)
    adam_eps: float = spec(1.5e-4, gt=0.0)


@register_agent("pvn_linear")
class PVNLinearEval(DQN):
    """DQN whose Q layer reads a pre-trained torso; `frozen` stops every gradient to it."""

    Config = PVNLinearConfig

    def __init__(self, cfg: PVNLinearConfig, env, heads, total_updates: int):
        if cfg.network.head_hidden:
            raise ValueError(
                f"agent.network.head_hidden={cfg.network.head_hidden}; linear evaluation "
                "needs () (a single linear Q layer on the features)"
            )
        if cfg.mode == "frozen":
            if heads:
                raise ValueError("agent.mode=frozen trains no torso: select no auxiliary head")
            net = dataclasses.replace(cfg.network, rl_reads_sg_features=True)
            cfg = dataclasses.replace(cfg, network=net)
        super().__init__(cfg, env, heads, total_updates)
        self.torso = None
        if cfg.pretrained:
            obs = jnp.zeros((1,) + env.spec.obs_shape, env.spec.obs_dtype)
            shapes = jax.eval_shape(self.net.init, jax.random.PRNGKey(0), obs)
            expected = shapes["params"]["torso"]
            self.torso = load_torso(cfg.pretrained, cfg.pretrained_seed, cfg.network, expected)

    def init(self, key, hparams):
        state = super().init(key, hparams)
        if self.torso is None:
            return state
        params = _with_torso(state.params, self.torso)
        return state.replace(
            params=params,
            target_params=_with_torso(state.target_params, self.torso),
            aux_target=params if state.aux_target is not None else None,
        )  # Adam's moments start at zero whatever the params: opt_state stays valid


def _with_torso(params, torso):
    net = dict(params["net"])
    net["params"] = {**net["params"], "torso": torso}
    return {**params, "net": net}


__all__ = [
    "PVNLinearConfig",
    "PVNLinearEval",
    "PVNPretrainConfig",
    "PVNPretrainer",
    "PVNPretrainAgent",
    "run_pretrain",
]
