"""Reward modules inside PPO: the reward and discount an update optimises, and the blend's
outer (bilevel) step.

`RewardHook(module, agent)` is what `PPO.learn` calls once per update, before GAE:

    rstate, reward [T, N], gamma, metrics = hook(rstate, params, opt_state, traj)

- A module without parameters (`env`, `subgoal`, `ellm`) is applied as is:
  `module.reward({}, traj.tr)` (`traj`: the update's `Rollout`, rl_aux/types.py).
- A module with parameters (`blend`, BARFI, Gupta et al. 2023) owns a `BlendState` in
  `PPOState.reward`: phi, its optax state, and a separate primary critic V_p (an MLP on the
  stop-gradient torso features `h`) trained on the primary reward with the learner's gamma.
  Each update first takes one outer step on phi, then returns r_phi and gamma_phi (no gradient)
  for the ordinary PPO update. The outer step splits the rollout's envs: the first half is the
  inner batch, the second half the fresh outer batch. The hypergradient (`reward.hypergrad`) is
  `lookahead`: M steps of the learner's own optax update (Adam with eps_root > 0, so it
  is differentiable where a gradient is 0) on the inner half (M =
  `reward.lookahead_steps`, one env slice each), then the primary objective on the outer half
  (Xu et al. 2018, Eq. 3); or `neumann`: BARFI's implicit gradient (Sec. 4.2); or `none`: phi
  stays at its initialisation (naive shaping r_p + r_aux, the baseline arm).

Inner loss = the learner's PPO loss without the clip (so it is smooth in theta; aux heads and
balancers are not part of it): -E[ratio A_phi] + c_v (V - R_phi)^2 / 2 - c_ent H, with A_phi,
R_phi from GAE(r_phi, gamma_phi) differentiable in phi. Outer loss: -E[ratio A_p] on the outer
half, A_p = GAE(r_p, V_p, gamma) (normalised like PPO's advantages).

The transitions must carry `extras["r_aux/<source>"]` ([T, N]) for each blended source; the
features are recomputed here from the params, so host-stepped loops need pass nothing else.
"""

from __future__ import annotations

from typing import Any, cast

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from rl_aux.learner import make_optimizer
from rl_aux.networks.network import unroll
from rl_aux.rewards.base import RewardModule, reward_at
from rl_aux.rewards.hypergrad import lookahead_hypergrad, neumann_hypergrad
from rl_aux.rl_math import gae
from rl_aux.typed_config import ConfigError
from rl_aux.types import Array, Rollout, Struct, Transition

FEATURES = "h"  # network output the reward module and the primary critic read (stop-gradient)


@struct.dataclass
class BlendState:
    phi: Any  # the reward module's params
    meta_opt: Any  # optax state of phi
    critic: Any  # primary critic V_p params
    critic_opt: Any


@struct.dataclass(kw_only=True)
class HookBatch(Struct):
    """Time-major [T, n] data the bilevel losses read: a slice of the update's rollout.

    `term` cuts the bootstrap (terminated, or done when truncation is terminal); `adv_p` the
    primary advantage (set once V_p has run); `first` and `carry0` (each env's initial carry,
    envs on axis 0) only for recurrent networks.
    """

    # fields in the order of the sorted dict keys this struct replaced: its leaves flatten in
    # the same order, so the compiled outer step is the same program
    adv_p: Array | None = None
    carry0: Any = None
    first: Array | None = None
    logp: Array
    next_value: Array
    term: Array
    tr: Transition
    value: Array


class PrimaryCritic(nn.Module):
    """V_p(features): the primary return's value, for the outer advantage (BARFI Sec. 4)."""

    hidden: int

    @nn.compact
    def __call__(self, x):
        if self.hidden:
            x = nn.tanh(nn.Dense(self.hidden)(x))
        return nn.Dense(1)(x)[..., 0]


class RewardHook:
    """Applies a reward module in PPO's update; see the module docstring."""

    def __init__(self, module: RewardModule, agent):
        self.module, self.agent = module, agent
        mcfg: Any = getattr(module, "cfg", None)  # a learned module's config (BlendConfig)
        self.learned = hasattr(module, "blend_terms")  # owns phi and an outer step
        self.hypergrad = getattr(mcfg, "hypergrad", "none") if self.learned else "none"
        if self.learned:
            n = agent.cfg.num_envs
            m = mcfg.lookahead_steps if self.hypergrad == "lookahead" else 1
            if self.hypergrad != "none" and n % (2 * m):
                raise ConfigError(
                    f"reward.hypergrad={self.hypergrad}: agent.num_envs={n} must be a multiple "
                    f"of {2 * m} (half the envs are the inner batch, split into "
                    f"reward.lookahead_steps={m} steps; the other half the outer batch)"
                )
            self.meta_opt = optax.chain(
                optax.clip_by_global_norm(mcfg.meta_clip), optax.adam(mcfg.meta_lr)
            )
            # the learner's optimiser (same state) with eps_root > 0: d sqrt(nu)/d g is infinite
            # where nu = 0, so plain Adam's lookahead is NaN
            self.inner_opt = make_optimizer(agent.cfg, eps_root=1e-8, groups=agent.clip_groups)
            self.critic = PrimaryCritic(mcfg.critic_hidden)
            self.critic_opt = optax.adam(mcfg.critic_lr)

    def at(self, hparams: dict) -> RewardHook:
        """This hook with the reward options a grid put in `hparams` (`reward.<opt>`) traced
        per grid point: the module and its optimisers (phi's Adam step, its clip, V_p's step)
        rebuilt inside the trace (their states do not hold the step sizes, so the state built
        by `init` fits either); `self` when there are none, so runs without such an axis
        trace exactly as before."""
        module = reward_at(self.module, hparams)
        return self if module is self.module else RewardHook(module, self.agent)

    # ------------------------------------------------------------------ state
    def init(self, key: chex.PRNGKey, net_params, obs, carry, first) -> BlendState | None:
        if not self.learned:
            return None
        out, _ = self.agent.net.apply(net_params, obs, carry, first)
        feat_dim = out[FEATURES].shape[-1]
        k_phi, k_v = jax.random.split(key)
        phi = self.module.init(k_phi, self.agent.spec, feat_dim)
        critic = self.critic.init(k_v, jnp.zeros((1, feat_dim)))
        return BlendState(phi, self.meta_opt.init(phi), critic, self.critic_opt.init(critic))

    # ------------------------------------------------------------------ network pieces
    def _outputs(self, params, b: HookBatch) -> dict:
        """Network outputs over time-major [T, n] data (recurrent: from each env's carry0)."""
        net, tr = self.agent.net, b.tr
        if self.agent.recurrent:
            out, carries = unroll(net, params["net"], tr.obs, b.carry0, b.first)
            return {**out, "carries": carries}
        t, n = tr.action.shape
        obs = jax.tree.map(lambda x: x.reshape((t * n,) + x.shape[2:]), tr.obs)  # dict obs too
        out, _ = net.apply(params["net"], obs)
        return jax.tree.map(lambda x: x.reshape((t, n) + x.shape[1:]), out)

    def _features(self, params, b: HookBatch):
        """Stop-gradient features of each step's state and of its true successor, [T, n, F]."""
        net, tr = self.agent.net, b.tr
        out = self._outputs(params, b)
        if self.agent.recurrent:
            no_reset = jnp.zeros(tr.action.shape[1], bool)
            nxt = jax.vmap(lambda o, c: net.apply(params["net"], o, c, no_reset)[0][FEATURES])(
                tr.next_obs, out["carries"]
            )
        else:
            t, n = tr.action.shape
            nobs = jax.tree.map(lambda x: x.reshape((t * n,) + x.shape[2:]), tr.next_obs)
            nxt = net.apply(params["net"], nobs)[0][FEATURES].reshape((t, n, -1))
        return jax.lax.stop_gradient((out[FEATURES], nxt))

    def _logp_entropy(self, out: dict, action):
        logp_all = jax.nn.log_softmax(out["logits"])
        logp = jnp.take_along_axis(logp_all, action[..., None], -1)[..., 0]
        return logp, -jnp.sum(jnp.exp(logp_all) * logp_all, -1).mean()

    def _normalise(self, adv):
        if self.agent.cfg.normalize_advantages:
            return (adv - adv.mean()) / (adv.std() + 1e-8)
        return adv

    # ------------------------------------------------------------------ bilevel losses
    def inner_loss(self, params, phi, b: HookBatch):
        """PPO's loss on r_phi without the clip (BARFI Sec. 4.2: the inner objective J_phi)."""
        cfg = self.agent.cfg
        tr = b.tr
        r, gamma = self.module.reward(phi, tr)
        adv, ret = gae(r, b.value, b.next_value, b.term, tr.done, gamma, cfg.gae_lambda)
        out = self._outputs(params, b)
        logp, entropy = self._logp_entropy(out, tr.action)
        ratio = jnp.exp(logp - b.logp)
        pg = -(ratio * self._normalise(adv)).mean()
        v_loss = 0.5 * ((out["value"] - ret) ** 2).mean()
        return pg + cfg.vf_coef * v_loss - cfg.ent_coef * entropy

    def outer_loss(self, params, b: HookBatch):
        """-E[ratio A_p] on a fresh batch: the primary return's surrogate (BARFI Eq. 2)."""
        logp, _ = self._logp_entropy(self._outputs(params, b), b.tr.action)
        adv_p = cast(Array, b.adv_p)  # set before the outer step
        return -(jnp.exp(logp - b.logp) * adv_p).mean()

    # ------------------------------------------------------------------ the call
    def __call__(self, rstate, params, opt_state, traj: Rollout):
        """(rstate, reward [T, N], gamma, metrics) for this update's PPO step."""
        cfg = self.agent.cfg
        tr: Transition = traj.tr
        if not self.learned:
            r, gamma = self.module.reward({}, tr)
            return rstate, r, gamma, {}
        term = tr.terminated if cfg.bootstrap_truncation else tr.done
        recurrent = self.agent.recurrent
        data = HookBatch(
            tr=tr,
            logp=traj.logp,
            value=traj.value,
            next_value=cast(Array, traj.next_value),  # PPO's rollouts always set it
            term=term,
            first=traj.first if recurrent else None,
            carry0=jax.tree.map(lambda c: c[0], traj.carry_in) if recurrent else None,
        )
        feat, feat_next = self._features(params, data)
        tr = tr.replace(extras={**tr.extras, "features": feat})
        v_p = cast(Array, self.critic.apply(rstate.critic, feat))
        v_p_next = cast(Array, self.critic.apply(rstate.critic, feat_next))
        adv_p, ret_p = gae(tr.reward, v_p, v_p_next, term, tr.done, cfg.gamma, cfg.gae_lambda)
        data = data.replace(tr=tr, adv_p=adv_p)
        phi, meta_opt = rstate.phi, rstate.meta_opt
        metrics = {}
        if self.hypergrad != "none":
            half = cfg.num_envs // 2
            b_in, b_out = _envs(data, 0, half), _envs(data, half, cfg.num_envs)
            b_out = b_out.replace(adv_p=self._normalise(b_out.adv_p))
            mcfg = self.module.cfg
            if self.hypergrad == "lookahead":
                m = mcfg.lookahead_steps
                steps = [_envs(b_in, i * half // m, (i + 1) * half // m) for i in range(m)]
                batches = jax.tree.map(lambda *xs: jnp.stack(xs), *steps)
                outer, g = lookahead_hypergrad(
                    self.inner_loss,
                    self.outer_loss,
                    self.inner_opt,
                    phi,
                    params,
                    opt_state,
                    batches,
                    b_out,
                )
            else:
                outer, g = neumann_hypergrad(
                    self.inner_loss,
                    self.outer_loss,
                    phi,
                    params,
                    b_in,
                    b_out,
                    mcfg.neumann_alpha,
                    mcfg.neumann_k,
                )
            g = jax.tree.map(jnp.add, g, jax.grad(self.module.penalty)(phi))
            upd, meta_opt = self.meta_opt.update(g, meta_opt, phi)
            phi = optax.apply_updates(phi, upd)
            metrics |= {"reward/outer_loss": outer, "reward/hypergrad_norm": optax.tree.norm(g)}

        def critic_step(c, _):
            p, st = c
            loss, grad = jax.value_and_grad(
                lambda p: 0.5 * ((cast(Array, self.critic.apply(p, feat)) - ret_p) ** 2).mean()
            )(p)
            upd, st = self.critic_opt.update(grad, st, p)
            return (optax.apply_updates(p, upd), st), loss

        (critic, critic_opt), c_loss = jax.lax.scan(
            critic_step, (rstate.critic, rstate.critic_opt), None, cfg.update_epochs
        )
        r, gamma = jax.lax.stop_gradient(self.module.reward(phi, tr))
        metrics |= self._blend_metrics(phi, tr, r, gamma)
        metrics["reward/primary_critic_loss"] = c_loss.mean()
        return BlendState(phi, meta_opt, critic, critic_opt), r, gamma, metrics

    def _blend_metrics(self, phi, tr: Transition, r, gamma) -> dict:
        """gamma_phi, mean r_phi, mean b_phi, and per source the mean w_phi where it is non-zero."""
        b, w = cast(Any, self.module).blend_terms(phi, tr.extras["features"])  # learned
        m = {"reward/gamma": gamma, "reward/r_mean": r.mean(), "reward/b_mean": b.mean()}
        for j, s in enumerate(self.module.cfg.sources):
            active = (tr.extras[f"r_aux/{s}"] != 0).astype(jnp.float32)
            m[f"reward/w_{s}_active"] = (w[..., j] * active).sum() / jnp.maximum(active.sum(), 1)
            m[f"reward/w_{s}_mean"] = w[..., j].mean()
        return m


def _envs(data: HookBatch, lo: int, hi: int) -> HookBatch:
    """Envs lo:hi of time-major data (axis 1; `carry0` has envs on axis 0)."""
    cut = lambda x: x[:, lo:hi]
    return HookBatch(
        tr=jax.tree.map(cut, data.tr),
        logp=cut(data.logp),
        value=cut(data.value),
        next_value=cut(data.next_value),
        term=cut(data.term),
        adv_p=jax.tree.map(cut, data.adv_p),
        first=jax.tree.map(cut, data.first),
        carry0=jax.tree.map(lambda x: x[lo:hi], data.carry0),
    )
