"""PPO (Schulman et al. 2017) with auxiliary heads, feed-forward or recurrent, fully jittable.

`PPO.train_chunk` runs `n` updates (rollout of num_steps x num_envs, GAE, epochs x minibatches)
inside one `lax.scan`; the trainer vmaps it over seeds and hyperparameter grid points.
Recurrent networks use truncated BPTT over the rollout (no burn-in), minibatching over envs.
An optional reward module (`reward=...`, rl_aux/rewards) sets the reward and discount each
update optimises, through `rl_aux/rewards/hook.py`; without one the env reward is used as is.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, cast

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct

from rl_aux.agent import register_agent
from rl_aux.balancers import BalancerConfig
from rl_aux.clipping import CLIP_SCOPES, ClipGroups
from rl_aux.heads.base import AuxHead
from rl_aux.heads.suite import HeadSuite
from rl_aux.learner import (
    TrainCarry,
    annealed_lr,
    as_hparams,
    balancer_at,
    balancer_from,
    default_hparams,
    episode_metrics,
    epsilon_greedy,
    gradient_step,
    hp,
    init_opt_state,
    init_params,
    make_optimizer,
    set_lr,
)
from rl_aux.networks.network import NetworkConfig, make_network, network_initial_carry, unroll
from rl_aux.rewards.hook import RewardHook
from rl_aux.rl_math import gae, successor_values, truncations_per_env
from rl_aux.typed_config import ConfigError, spec
from rl_aux.types import Rollout, Struct, Transition


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PPO hyperparameters; defaults are PureJaxRL's CartPole-v1 config (Lu et al. 2022)."""

    num_envs: int = spec(4, ge=1)
    num_steps: int = spec(128, ge=1)
    update_epochs: int = spec(4, ge=1)
    num_minibatches: int = spec(4, ge=1)
    gamma: float = spec(0.99, ge=0.0, le=1.0)
    gae_lambda: float = spec(0.95, ge=0.0, le=1.0)
    clip_eps: float = spec(0.2, gt=0.0)
    ent_coef: float = spec(0.01, ge=0.0)
    # Entropy coefficient at the last update, reached linearly from ent_coef (None: constant;
    # the bilevel inner loss of rl_aux/rewards/hook.py keeps ent_coef).
    ent_coef_end: float | None = spec(None, ge=0.0)
    vf_coef: float = spec(0.5, ge=0.0)
    max_grad_norm: float = spec(0.5, gt=0.0, grid=False)  # static in the optimiser's clip
    clip_scope: str = spec("auto", choices=CLIP_SCOPES)  # rl_aux/clipping.py
    lr: float = spec(2.5e-4, gt=0.0)
    anneal_lr: bool = True
    adam_eps: float = spec(1e-5, gt=0.0, grid=False)  # static in the optimiser
    clip_value_loss: bool = True
    bootstrap_truncation: bool = True  # V(final obs) at time-limit ends (False: treat as terminal)
    normalize_advantages: bool = True
    # agent.balancer.name=<balancer> (or agent.balancer=<balancer>), its options as
    # agent.balancer.<option>=... (rl-aux describe balancer=<balancer>)
    balancer: BalancerConfig = BalancerConfig()
    network: NetworkConfig = NetworkConfig(separate_critic=True)

    @property
    def samples_per_gradient_step(self) -> int:
        """One minibatch: sizes the CPU thread pool (rl_aux/cpu_threads.py)."""
        return self.num_envs * self.num_steps // self.num_minibatches


@struct.dataclass(kw_only=True)
class Batch(Struct):
    """What PPO's losses read, time-major [T, N] (a minibatch: [B] samples, or [T, B]
    sequences for recurrent networks). `carry0` is each env's carry at the rollout's start
    ([N, ...], envs first); `first` and `carry_in` are None for feed-forward networks."""

    tr: Transition
    logp: jax.Array
    value: jax.Array
    adv: jax.Array
    ret: jax.Array
    first: jax.Array | None = None
    carry_in: Any = None
    carry0: Any = None


class ActorCarry(NamedTuple):
    """The rollout scan's carry: env state, the obs to act on, episode starts, core, key."""

    env_state: Any
    obs: jax.Array
    first: jax.Array
    carry: Any
    key: chex.PRNGKey


class EpochCarry(NamedTuple):
    """The epoch scan's carry: the gradient step's state and the key of the next epoch."""

    train: TrainCarry
    key: chex.PRNGKey


@struct.dataclass
class PPOState(Struct):
    params: Any  # {"net": ..., "heads": {...}}
    target: Any  # EMA copy of params for heads that need a target, else None
    opt_state: Any
    bal_state: Any
    env_state: Any
    obs: jax.Array
    first: jax.Array  # [N] obs is the first of its episode (resets the recurrent core)
    carry: Any
    key: chex.PRNGKey
    update: jax.Array  # number of updates done
    # vmappable floats: lr, aux weights, and any grid.<field> (rl_aux/learner.hp),
    # grid.balancer.<opt> (learner.balancer_at) or grid.reward.<opt> (RewardHook.at)
    hparams: dict
    reward: Any = None  # the reward module's learned state (rl_aux/rewards/hook.py), or None


@register_agent("ppo")
class PPO:
    """agent=ppo: the Agent protocol of rl_aux/agent.py."""

    Config = PPOConfig
    kind = "actor_critic"
    SHARED_FIELDS = ("update",)  # equal across vmapped seeds (see rl_aux/vectorize.py)

    def __init__(self, cfg: PPOConfig, env, heads: list[AuxHead], total_updates: int, reward=None):
        """`reward`: a RewardModule (rl_aux/rewards) or None for the env reward unchanged."""
        self.cfg = cfg
        self.env = env
        self.spec = env.spec
        self.suite = HeadSuite(heads)
        self.total_updates = total_updates
        self.net = make_network(cfg.network, self.spec.num_actions, self.spec.obs_shape, self.kind)
        self.recurrent = cfg.network.core != "none"
        self.balancer = balancer_from(cfg)
        # a stop-gradient's two sides are clipped apart, so detached equals weight 0
        self.clip_groups = ClipGroups.from_config(cfg.network, self.suite.heads)
        self.tx = make_optimizer(cfg, groups=self.clip_groups)
        self.reward = None if reward is None else RewardHook(reward, self)
        batch = cfg.num_envs * cfg.num_steps
        split = cfg.num_envs if self.recurrent else batch
        if split % cfg.num_minibatches:
            what = "num_envs" if self.recurrent else "num_envs * num_steps"
            raise ConfigError(
                f"agent.num_minibatches={cfg.num_minibatches} must divide {what}={split}"
            )

    # ------------------------------------------------------------------ hyperparameters
    def default_hparams(self) -> dict:
        return default_hparams(self.cfg, self.suite)

    # ------------------------------------------------------------------ init
    def init(self, key: chex.PRNGKey, hparams: dict) -> PPOState:
        cfg = self.cfg
        k_env, k_net, k_head, key = jax.random.split(key, 4)
        k_reward = jax.random.fold_in(k_head, 1)  # a new stream: the other keys stay as before
        env_state, ts = self.env.reset(k_env)
        carry = network_initial_carry(cfg.network, cfg.num_envs)
        first = jnp.ones(cfg.num_envs, bool)
        example = Transition(
            obs=ts.obs,
            action=jnp.zeros(cfg.num_envs, jnp.int32),
            reward=ts.reward,
            terminated=ts.terminated,
            truncated=ts.truncated,
            next_obs=ts.obs,
        )
        params = init_params(self.net, self.suite, k_net, k_head, example, carry, first)
        net_params = params["net"]
        return PPOState(
            params=params,
            target=params if self.suite.needs_target else None,
            opt_state=init_opt_state(self.tx, params, hparams),
            bal_state=self.balancer.tx.init(params),
            env_state=env_state,
            obs=ts.obs,
            first=first,
            carry=carry,
            key=key,
            update=jnp.zeros((), jnp.int32),
            hparams=as_hparams(hparams),
            reward=None
            if self.reward is None
            else self.reward.at(hparams).init(k_reward, net_params, ts.obs, carry, first),
        )

    # ------------------------------------------------------------------ acting
    def act(self, params, obs, carry, first, key, greedy: bool = False, epsilon: float = 0.0):
        """Sample an action (or the mode when greedy, with epsilon-random actions)."""
        out, carry = self.net.apply(params["net"], obs, carry, first)
        logits = out["logits"]
        if greedy:
            a = epsilon_greedy(key, logits, epsilon)
        else:
            a = jax.random.categorical(key, logits)
        return a, carry, out

    # ------------------------------------------------------------------ one update
    def _rollout(self, state: PPOState) -> tuple[PPOState, Rollout]:
        cfg = self.cfg

        def step(c: ActorCarry, _) -> tuple[ActorCarry, Rollout]:
            key, k_act, k_env = jax.random.split(c.key, 3)
            action, carry, out = self.act(state.params, c.obs, c.carry, c.first, k_act)
            logp = jax.nn.log_softmax(out["logits"])[jnp.arange(cfg.num_envs), action]
            env_state, ts = self.env.step(c.env_state, action, k_env)
            next_obs = ts.extras["next_obs"]
            # auxiliary reward sources travel with the transition for the reward module
            aux = {k: v for k, v in ts.extras.items() if k.startswith("r_aux/")}
            rec = Rollout(
                tr=Transition(
                    obs=c.obs,
                    action=action,
                    reward=ts.reward,
                    terminated=ts.terminated,
                    truncated=ts.truncated,
                    next_obs=next_obs,
                    extras=aux if self.reward is not None else {},
                ),
                first=c.first,
                carry_in=c.carry,
                logp=logp,
                value=out["value"],
                ep_return=ts.extras["episode_return"],
                ep_length=ts.extras["episode_length"],
                # envs with a goal: logged as charts/success
                success=ts.extras.get("success"),
            )
            nxt = ActorCarry(env_state=env_state, obs=ts.obs, first=ts.done, carry=carry, key=key)
            return nxt, rec

        init = ActorCarry(
            env_state=state.env_state,
            obs=state.obs,
            first=state.first,
            carry=state.carry,
            key=state.key,
        )
        c, traj = jax.lax.scan(step, init, None, cfg.num_steps)
        state = state.replace(
            env_state=c.env_state, obs=c.obs, first=c.first, carry=c.carry, key=c.key
        )
        return state, traj

    def _next_values(self, state_before: PPOState, state_after: PPOState, traj: Rollout):
        """[T, N] values that bootstrap each step (see `Rollout.next_value`): the next step's
        value from the rollout, and with `bootstrap_truncation` V of the final observation
        (given the history, for a recurrent core) at time-limit ends."""
        cfg = self.cfg
        params = state_before.params["net"]  # the acting params: the rollout's values are theirs
        if self.recurrent:
            last, _ = self.net.apply(
                state_after.params["net"], state_after.obs, state_after.carry, state_after.first
            )
        else:
            last, _ = self.net.apply(state_after.params["net"], state_after.obs)
        if not cfg.bootstrap_truncation:
            return jnp.concatenate([traj.value[1:], last["value"][None]], 0)
        k = truncations_per_env(cfg.num_steps, self.env.spec.max_episode_steps)
        if self.recurrent:  # the carry after step t is the one fed to step t + 1
            after = jax.tree.map(
                lambda seq, end: jnp.concatenate([seq[1:], end[None]], 0),
                traj.carry_in,
                state_after.carry,
            )
            successors = (traj.tr.next_obs, after)

            def value_of(s):
                obs, carry = s
                first = jnp.zeros(obs.shape[0], bool)
                return self.net.apply(params, obs, carry, first)[0]["value"]
        else:
            successors = traj.tr.next_obs

            def value_of(s):
                return self.net.apply(params, s)[0]["value"]

        return successor_values(
            traj.value, last["value"], traj.tr.truncated, successors, value_of, k
        )

    def _losses(self, params, target, mb: Batch, hparams, key, ent_coef=None):
        """((main, weighted aux), metrics) on a minibatch: [B] samples or [T, B] sequences.

        `ent_coef`: this update's entropy coefficient (default: ent_coef of `hparams`/cfg).
        """
        cfg = self.cfg
        ent_coef = hp(hparams, "ent_coef", cfg.ent_coef) if ent_coef is None else ent_coef
        clip_eps = hp(hparams, "clip_eps", cfg.clip_eps)
        tr = mb.tr
        lead = mb.adv.shape  # [B], or [T, B] sequences
        chex.assert_equal_shape([tr.action, mb.logp, mb.value, mb.adv, mb.ret])
        if self.recurrent:
            chex.assert_rank(mb.adv, 2)
            chex.assert_shape(mb.first, lead)
            out, carries = unroll(self.net, params["net"], tr.obs, mb.carry0, mb.first)

            def feats_fn(p, which):
                obs = tr.obs if which == "obs" else tr.next_obs
                cs = carries if which == "next_obs" else mb.carry_in
                first = cast(jax.Array, mb.first)  # recurrent minibatches carry it
                firsts = jnp.zeros_like(first) if which == "next_obs" else first
                return jax.vmap(lambda o, c, f: self.net.apply(p, o, c, f)[0])(obs, cs, firsts)
        else:
            out, _ = self.net.apply(params["net"], tr.obs)
            feats_fn = lambda p, which: self.net.apply(
                p, tr.obs if which == "obs" else tr.next_obs
            )[0]

        chex.assert_shape(out["logits"], (*lead, self.spec.num_actions))
        chex.assert_shape(out["value"], lead)
        logp_all = jax.nn.log_softmax(out["logits"])
        logp = jnp.take_along_axis(logp_all, tr.action[..., None], -1)[..., 0]
        entropy = -jnp.sum(jnp.exp(logp_all) * logp_all, -1).mean()
        adv = mb.adv
        if cfg.normalize_advantages:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        ratio = jnp.exp(logp - mb.logp)
        pg = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps) * adv).mean()
        v = out["value"]
        if cfg.clip_value_loss:
            v_clip = mb.value + jnp.clip(v - mb.value, -clip_eps, clip_eps)
            v_loss = 0.5 * jnp.maximum((v - mb.ret) ** 2, (v_clip - mb.ret) ** 2).mean()
        else:
            v_loss = 0.5 * ((v - mb.ret) ** 2).mean()
        main = pg + hp(hparams, "vf_coef", cfg.vf_coef) * v_loss - ent_coef * entropy
        metrics = {
            "losses/policy": pg,
            "losses/value": v_loss,
            "losses/entropy": entropy,
            "losses/approx_kl": ((ratio - 1) - jnp.log(ratio)).mean(),
            "losses/clipfrac": (jnp.abs(ratio - 1) > clip_eps).mean(),
        }
        aux = jnp.zeros(())
        if self.suite:
            inp = self.suite.inputs(params, target, tr, out, feats_fn, self.spec.num_actions)
            aux, m = self.suite.loss(params, target, inp, hparams["aux_weights"], key)
            metrics.update(m)
        return (main, aux), metrics

    def _update(self, state: PPOState, _):
        before = state
        state, traj = self._rollout(state)
        traj = traj.replace(next_value=self._next_values(before, state, traj))
        return self.learn(state, traj)

    def learn(self, state: PPOState, traj: Rollout):
        """One PPO update (GAE, epochs x minibatches) from a collected rollout.

        `traj` is a time-major [T, N] `Rollout` (rl_aux/types.py) with `next_value` set, and
        for recurrent networks `carry_in`. `_update` feeds it from the jitted rollout;
        host-stepped envs feed it from their host loop (agents/host_loop.py,
        `learner_rollout`), so both paths share this code. With a reward
        module, `tr.extras["r_aux/<source>"]` ([T, N]) carries its auxiliary rewards; optional
        `success` ([T, N] bool) is logged as the success rate of the finished episodes.
        """
        cfg = self.cfg
        tr = traj.tr
        chex.assert_rank(traj.value, 2)
        chex.assert_equal_shape([tr.action, tr.reward, tr.terminated, traj.value, traj.logp])
        chex.assert_equal_shape([traj.value, traj.next_value, traj.ep_return, traj.ep_length])
        terminated = tr.terminated if cfg.bootstrap_truncation else tr.done
        lr = annealed_lr(state.hparams["lr"], state.update, self.total_updates, cfg.anneal_lr)
        opt_state = set_lr(state.opt_state, lr)
        ent_coef = self.ent_coef_at(state.update, state.hparams)
        balancer = balancer_at(cfg, state.hparams, self.balancer)
        gamma = hp(state.hparams, "gamma", cfg.gamma)
        reward, reward_state, reward_metrics = tr.reward, state.reward, {}
        if self.reward is not None:  # the reward module's r and gamma (and its outer step)
            reward_state, reward, gamma, reward_metrics = self.reward.at(state.hparams)(
                state.reward, state.params, opt_state, traj
            )
        gae_lambda = hp(state.hparams, "gae_lambda", cfg.gae_lambda)
        next_value = cast(jax.Array, traj.next_value)  # the rollout always sets it for PPO
        adv, ret = gae(reward, traj.value, next_value, terminated, tr.done, gamma, gae_lambda)
        # Minibatches carry only what the losses read: every extra leaf is a gather per epoch.
        tr_mb = (
            tr
            if self.suite
            else tr.replace(reward=None, terminated=None, truncated=None, next_obs=None, extras={})
        )
        data = Batch(tr=tr_mb, logp=traj.logp, value=traj.value, adv=adv, ret=ret)
        if self.recurrent:  # resets, per-step carries and each env's initial carry
            carry0 = jax.tree.map(lambda c: c[0], traj.carry_in)
            data = data.replace(first=traj.first, carry_in=traj.carry_in, carry0=carry0)

        def epoch(c: EpochCarry, _):
            key, k_perm, k_loss = jax.random.split(c.key, 3)
            mbs = self._minibatches(data, k_perm)

            def mb_step(c: tuple[TrainCarry, chex.PRNGKey], mb: Batch):
                train, k = c
                k, k_l = jax.random.split(k)
                fn = lambda p: self._losses(p, train.target, mb, state.hparams, k_l, ent_coef)
                train, m = gradient_step(fn, train, self.tx, balancer, self.suite.target_tau)
                return (train, k), m

            (train, _), m = jax.lax.scan(mb_step, (c.train, k_loss), mbs)
            return EpochCarry(train=train, key=key), m

        key, k_epochs = jax.random.split(state.key)
        train = TrainCarry(
            params=state.params,
            target=state.target,
            opt_state=opt_state,
            bal_state=state.bal_state,
        )
        c, m = jax.lax.scan(epoch, EpochCarry(train=train, key=k_epochs), None, cfg.update_epochs)
        metrics = jax.tree.map(jnp.mean, m)
        metrics.update(episode_metrics(tr.done, traj.ep_return, traj.ep_length))
        metrics["lr"] = lr
        if cfg.ent_coef_end is not None:
            metrics["ent_coef"] = ent_coef
        metrics.update(reward_metrics)
        if traj.success is not None:
            d = tr.done.astype(jnp.float32)
            metrics["charts/success"] = (traj.success * d).sum() / jnp.maximum(d.sum(), 1.0)
        state = state.replace(
            reward=reward_state,
            params=c.train.params,
            target=c.train.target,
            opt_state=c.train.opt_state,
            bal_state=c.train.bal_state,
            key=key,
            update=state.update + 1,
        )
        return state, metrics

    def ent_coef_at(self, update: jax.Array, hparams: dict | None = None) -> jax.Array:
        """The entropy coefficient of update `update`: constant, or linear to ent_coef_end
        (from `hparams["ent_coef"]` when a grid sweeps it, else cfg.ent_coef)."""
        cfg = self.cfg
        start = hp(hparams or {}, "ent_coef", cfg.ent_coef)
        if cfg.ent_coef_end is None:
            return jnp.asarray(start, jnp.float32)
        steps = max(self.total_updates - 1, 1)
        return cast(jax.Array, optax.linear_schedule(start, cfg.ent_coef_end, steps)(update))

    def _minibatches(self, data: Batch, key) -> Batch:
        """`data` shuffled and split into [num_minibatches, ...] (recurrent: over envs)."""
        cfg = self.cfg
        n = cfg.num_minibatches
        if self.recurrent:  # shuffle envs, keep sequences: [T, N] -> [n, T, N/n]
            perm = jax.random.permutation(key, cfg.num_envs)

            def split(x, axis):
                x = jnp.take(x, perm, axis=axis)
                x = jnp.moveaxis(x, axis, 0)
                x = x.reshape((n, -1) + x.shape[1:])
                return jnp.moveaxis(x, 1, axis + 1)

            out = jax.tree.map(lambda x: split(x, 1), data.replace(carry0=None))
            return out.replace(carry0=jax.tree.map(lambda x: split(x, 0), data.carry0))
        size = cfg.num_envs * cfg.num_steps
        perm = jax.random.permutation(key, size)
        flat = jax.tree.map(lambda x: x.reshape((size,) + x.shape[2:]), data)
        return jax.tree.map(lambda x: jnp.take(x, perm, 0).reshape((n, -1) + x.shape[1:]), flat)

    # ------------------------------------------------------------------ public
    def train_chunk(self, state: PPOState, num_updates: int):
        """`num_updates` PPO updates; metrics stacked over updates."""
        return jax.lax.scan(self._update, state, None, num_updates)

    @property
    def steps_per_update(self) -> int:
        return self.cfg.num_envs * self.cfg.num_steps
