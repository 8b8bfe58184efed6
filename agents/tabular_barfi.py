"""Tabular BARFI learner on the 7x7 gridworld (Gupta et al. 2023): softmax policy, A2C inner step.

`build(cfg, arm)` returns the pure functions of one arm (primary-only, naive r_p + r_aux, BARFI
with the one-step lookahead or the Neumann implicit hypergradient), `train(key)` among them,
jit- and vmap-able over seeds. Used by the study experiments/studies/barfi_grid.py, the blend
bench and the hypergradient tests.
"""

from __future__ import annotations

import dataclasses
import types

import jax
import jax.numpy as jnp
import optax

from envs.barfi_grid import BarfiGrid
from rl_aux.rewards.blend import BlendConfig, BlendReward
from rl_aux.rewards.hypergrad import lookahead_hypergrad, neumann_hypergrad
from rl_aux.rl_math import gae
from rl_aux.types import Transition

ARMS = ("primary", "naive", "lookahead", "neumann")


@dataclasses.dataclass(frozen=True)
class GridExpConfig:
    aux: str = "centre"  # centre (misaligned) | distance (helpful)
    iterations: int = 600
    episodes: int = 8  # per batch; each iteration draws an inner and an outer batch
    lr: float = 0.05  # inner SGD on the tabular logits
    ent_coef: float = 0.05
    gamma: float = 0.99  # the primary objective's discount (and the fixed arms')
    lam: float = 0.95
    critic_lr: float = 0.5  # tabular critics: step toward the per-cell mean target
    meta_lr: float = 0.05
    gamma_l2: float = 0.0
    reward_l2: float = 0.0
    neumann_k: int = 5
    neumann_alpha: float = 0.05


def _batch_transition(env: BarfiGrid, b: dict) -> Transition:
    """Time-major [T, E] batch -> Transition with features and r_aux in extras."""
    return Transition(
        obs=b["obs"],
        action=b["action"],
        reward=b["r_p"],
        terminated=b["terminated"],
        truncated=b["done"],
        next_obs=b["obs"],
        extras={"features": b["obs"], "r_aux/aux": b["r_aux"]},
    )


def build(cfg: GridExpConfig, arm: str) -> types.SimpleNamespace:
    """The arm's pieces: `train(key) -> metrics` for one seed (jit/vmap it), and the rollout,
    inner/outer losses and modules it is made of (the hypergradient tests reuse them)."""
    env = BarfiGrid()
    n_cells, T, E = env.size**2, env.horizon, cfg.episodes
    module = BlendReward(
        BlendConfig(
            sources=("aux",),
            learn_gamma=arm in ("lookahead", "neumann"),
            gamma_init=cfg.gamma,
            gamma_l2=cfg.gamma_l2,
            reward_l2=cfg.reward_l2,
        ),
        cfg.gamma,
    )
    inner_opt = optax.sgd(cfg.lr)
    meta_opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(cfg.meta_lr))

    def rollout(theta, key):
        """E episodes of exactly T steps; steps after an episode's end are masked."""

        def one_episode(k):
            k_reset, k_run = jax.random.split(k)
            state, obs = env.reset(k_reset)

            def step(c, k):
                state, obs, alive = c
                k_a, k_e = jax.random.split(k)
                a = jax.random.categorical(k_a, theta["pi"][env.cell(state.pos)])
                r_aux = env.aux_reward(cfg.aux, state.pos)
                nstate, nobs, r, term, trunc = env.step(k_e, state, a)
                rec = dict(
                    obs=obs,
                    action=a,
                    r_p=r * alive,
                    r_aux=r_aux * alive,
                    terminated=jnp.logical_or(term, ~alive),
                    done=jnp.logical_or(term | trunc, ~alive),
                    mask=alive.astype(jnp.float32),
                    success=(term & alive).astype(jnp.float32),
                )
                alive = alive & ~(term | trunc)
                return (nstate, nobs, alive), rec

            _, tr = jax.lax.scan(step, (state, obs, jnp.array(True)), jax.random.split(k_run, T))
            return tr

        b = jax.vmap(one_episode, out_axes=1)(jax.random.split(key, E))
        b["logp_old"] = _logp(theta, b)
        return b

    def _logp(theta, b):
        logits = b["obs"] @ theta["pi"]
        return jnp.take_along_axis(jax.nn.log_softmax(logits), b["action"][..., None], -1)[..., 0]

    def advantages(r, v, b, gamma):
        """GAE over [T, E] with per-step values v (differentiable in r and gamma)."""
        nv = jnp.concatenate([v[1:], jnp.zeros_like(v[:1])], 0)
        return gae(r * b["mask"], v * b["mask"], nv, b["terminated"], b["done"], gamma, cfg.lam)

    def inner_loss(theta, phi, b):
        """A2C on r_phi (unclipped, so the Hessian is smooth): -E[log pi . A_phi] - c_ent H."""
        r, gam = module.reward(phi, _batch_transition(env, b))
        adv, _ = advantages(r, jax.lax.stop_gradient(b["v_phi"]), b, gam)
        logits = b["obs"] @ theta["pi"]
        logp_all = jax.nn.log_softmax(logits)
        logp = jnp.take_along_axis(logp_all, b["action"][..., None], -1)[..., 0]
        ent = -jnp.sum(jnp.exp(logp_all) * logp_all, -1)
        n = jnp.maximum(b["mask"].sum(), 1.0)
        return -jnp.sum(b["mask"] * (logp * adv + cfg.ent_coef * ent)) / n

    def outer_loss(theta, b):
        """Primary objective on a fresh batch: -E[pi/pi_old . A_p], A_p from r_p, V_p, gamma."""
        ratio = jnp.exp(_logp(theta, b) - b["logp_old"])
        n = jnp.maximum(b["mask"].sum(), 1.0)
        return -jnp.sum(b["mask"] * ratio * b["adv_p"]) / n

    def critic_step(v_table, b, ret):
        cells = b["obs"] * b["mask"][..., None]  # [T, E, C]
        err = jnp.einsum("tec,te->c", cells, ret - b["obs"] @ v_table)
        count = cells.sum((0, 1))
        return v_table + cfg.critic_lr * err / jnp.maximum(count, 1.0)

    def iteration(c, key):
        theta, opt_state, phi, meta_state, v_phi, v_p = c
        k_in, k_out = jax.random.split(key)
        b_in, b_out = rollout(theta, k_in), rollout(theta, k_out)
        b_in["v_phi"], b_out["v_phi"] = b_in["obs"] @ v_phi, b_out["obs"] @ v_phi
        adv_p, _ = advantages(b_out["r_p"], b_out["obs"] @ v_p, b_out, cfg.gamma)
        b_out["adv_p"] = adv_p
        meta = {}
        if arm in ("lookahead", "neumann"):
            if arm == "lookahead":
                batches = jax.tree.map(lambda x: x[None], b_in)
                _, g_phi = lookahead_hypergrad(
                    inner_loss, outer_loss, inner_opt, phi, theta, opt_state, batches, b_out
                )
            else:
                _, g_phi = neumann_hypergrad(
                    inner_loss,
                    outer_loss,
                    phi,
                    theta,
                    b_in,
                    b_out,
                    cfg.neumann_alpha,
                    cfg.neumann_k,
                )
            g_pen = jax.grad(module.penalty)(phi)
            g_phi = jax.tree.map(jnp.add, g_phi, g_pen)
            meta["hypergrad_norm"] = optax.tree.norm(g_phi)
            upd, meta_state = meta_opt.update(g_phi, meta_state, phi)
            phi = optax.apply_updates(phi, upd)
        # inner A2C steps on both batches with the (new) blend; then the critics
        for b in (b_in, b_out):
            g = jax.grad(inner_loss)(theta, phi, b)
            upd, opt_state = inner_opt.update(g, opt_state, theta)
            theta = optax.apply_updates(theta, upd)
            r, gam = module.reward(phi, _batch_transition(env, b))
            _, ret = advantages(r, b["obs"] @ v_phi, b, gam)
            v_phi = critic_step(v_phi, b, ret)
            _, ret_p = advantages(b["r_p"], b["obs"] @ v_p, b, cfg.gamma)
            v_p = critic_step(v_p, b, ret_p)
        keys = ("success", "r_p", "r_aux", "mask")
        both = {k: jnp.concatenate([b_in[k], b_out[k]], 1) for k in keys}
        ep_success = both["success"].sum(0)  # [2E]
        metrics = {
            "success": ep_success.mean(),
            "primary_return": (both["r_p"]).sum(0).mean(),
            "centre_frac": (both["r_aux"] > 0).sum() / both["mask"].sum()
            if cfg.aux == "centre"
            else jnp.zeros(()),
            "gamma_phi": module.discount(phi),
            **meta,
        }
        return (theta, opt_state, phi, meta_state, v_phi, v_p), metrics

    def train(key):
        k_init, k_run = jax.random.split(key)
        theta = {"pi": jnp.zeros((n_cells, 4))}
        phi = module.init(k_init, env.spec, n_cells)
        if arm == "primary":  # w = 0: the blend is r_p alone
            phi = {**phi, "c": jnp.zeros_like(phi["c"])}
        carry = (
            theta,
            inner_opt.init(theta),
            phi,
            meta_opt.init(phi),
            jnp.zeros(n_cells),
            jnp.zeros(n_cells),
        )
        carry, metrics = jax.lax.scan(iteration, carry, jax.random.split(k_run, cfg.iterations))
        phi = carry[2]
        b, w = module.blend_terms(phi, jnp.eye(n_cells))
        metrics["w_map"] = w[:, 0].reshape(env.size, env.size)
        metrics["b_map"] = b.reshape(env.size, env.size)
        return metrics

    return types.SimpleNamespace(
        train=train,
        rollout=rollout,
        inner_loss=inner_loss,
        outer_loss=outer_loss,
        advantages=advantages,
        module=module,
        inner_opt=inner_opt,
        env=env,
    )
