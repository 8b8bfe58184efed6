"""DQN (Mnih et al. 2015) with n-step returns, double Q, hard/soft targets and auxiliary heads.

Each iteration steps the vectorised env once (epsilon-greedy), writes the transitions to the
device-resident replay and, once `learning_starts` env steps are stored, takes
`gradient_steps` updates every `train_interval` iterations. All of it is one `lax.scan`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

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
    linear_epsilon,
    make_optimizer,
    set_lr,
    target_update,
)
from rl_aux.networks.network import NetworkConfig, make_network
from rl_aux.replay import replay_functions
from rl_aux.typed_config import ConfigError, spec
from rl_aux.types import Struct, Transition


@dataclasses.dataclass(frozen=True)
class DQNConfig:
    """DQN hyperparameters; defaults are PureJaxRL's CartPole-v1 DQN config."""

    num_envs: int = spec(10, ge=1)
    buffer_size: int = spec(10_000, ge=1)  # transitions (rows x num_envs)
    batch_size: int = spec(128, ge=1)
    learning_starts: int = spec(10_000, ge=0)  # env steps before the first update
    train_interval: int = spec(1, ge=1)  # iterations (vector steps) between updates
    gradient_steps: int = spec(1, ge=1)
    gamma: float = spec(0.99, ge=0.0, le=1.0)
    n_step: int = spec(1, ge=1)
    double_q: bool = False
    target_update_interval: int = spec(500, ge=1)  # env steps between target updates
    tau: float = spec(1.0, gt=0.0, le=1.0)  # 1.0 = hard copy; < 1 = Polyak step per update
    eps_start: float = spec(1.0, ge=0.0, le=1.0)
    eps_finish: float = spec(0.05, ge=0.0, le=1.0)
    eps_anneal_steps: int = spec(250_000, ge=0)  # env steps
    lr: float = spec(2.5e-4, gt=0.0)
    anneal_lr: bool = False
    adam_eps: float = spec(1e-8, gt=0.0, grid=False)  # static in the optimiser
    max_grad_norm: float = spec(10.0, gt=0.0, grid=False)  # static in the optimiser's clip
    clip_scope: str = spec("auto", choices=CLIP_SCOPES)  # rl_aux/clipping.py
    # l1: the TD loss of an early version of Fang & Stachenfeld's Agent.py, which later versions
    # replaced by MSE (docs/results/future-prediction.md)
    loss: str = spec("mse", choices=("mse", "huber", "l1"))
    replay: str = spec("uniform", choices=("uniform", "frames"))  # frames: Atari stacks
    # agent.balancer.name=<balancer> (or agent.balancer=<balancer>), its options as
    # agent.balancer.<option>=... (rl-aux describe balancer=<balancer>)
    balancer: BalancerConfig = BalancerConfig()
    network: NetworkConfig = NetworkConfig(hidden=(120, 84), activation="relu", init="lecun")

    @property
    def samples_per_gradient_step(self) -> int:
        """One sampled batch: sizes the CPU thread pool (rl_aux/cpu_threads.py)."""
        return self.batch_size


class ReplayBatch(NamedTuple):
    """One gradient step's input: a replayed batch, its n-step discounts, the loss key."""

    tr: Transition
    discount: jax.Array
    key: chex.PRNGKey


@struct.dataclass
class DQNState(Struct):
    params: Any
    target_params: Any  # the DQN target network (full params tree)
    aux_target: Any  # EMA copy for heads that need one, else None
    opt_state: Any
    bal_state: Any
    replay: Any  # rl_aux.replay.ReplayState or rl_aux.frame_replay.FrameReplayState
    env_state: Any
    obs: jax.Array
    key: chex.PRNGKey
    update: jax.Array  # iterations done
    grad_steps: jax.Array
    hparams: dict
    aux_table: Any = None  # [N_max, G] reward table read at sampling time (with_sample_reward)


@register_agent("dqn")
class DQN:
    """agent=dqn: the Agent protocol of rl_aux/agent.py."""

    Config = DQNConfig
    kind = "q"
    # equal across vmapped seeds: kept unbatched (see rl_aux/vectorize.py)
    SHARED_FIELDS = ("update", "grad_steps", "replay.pos", "replay.size")
    # metrics only a gradient step writes: the trainer averages them over the updates that
    # learned (`learns`) and leaves them empty before the first one (rl_aux/learner.py)
    LEARN_METRIC_PREFIXES = ("losses/", "aux/")

    def __init__(self, cfg: DQNConfig, env, heads: list[AuxHead], total_updates: int):
        if cfg.network.core != "none":
            raise ConfigError(
                f"agent.network.core={cfg.network.core!r}: DQN has no recurrent variant; "
                "accepted: none (recurrent cores lstm/gru need agent=ppo)"
            )
        if cfg.buffer_size < cfg.num_envs * (cfg.n_step + 1):
            raise ConfigError(
                f"agent.buffer_size={cfg.buffer_size} is too small; accepted: >= agent.num_envs "
                f"x (agent.n_step + 1) = {cfg.num_envs * (cfg.n_step + 1)}"
            )
        self.cfg = cfg
        self.env = env
        self.spec = env.spec
        self.suite = HeadSuite(heads)
        self.total_updates = total_updates
        self.net = make_network(cfg.network, self.spec.num_actions, self.spec.obs_shape, self.kind)
        self.recurrent = False
        self.balancer = balancer_from(cfg)
        # a stop-gradient's two sides are clipped apart, so detached equals weight 0
        self.clip_groups = ClipGroups.from_config(cfg.network, self.suite.heads)
        self.tx = make_optimizer(cfg, groups=self.clip_groups)
        self.rows = cfg.buffer_size // cfg.num_envs
        self._replay_init, self._replay_add, self._replay_sample = replay_functions(cfg.replay)
        self.sample_reward: Any = None  # with_sample_reward: has beta, history, table()

    def with_sample_reward(self, sample_reward) -> DQN:
        """Add a reward looked up when a transition is replayed, not when it is stored (LLM
        subgoal labels that arrive late still count). `sample_reward` has `beta`, `history`
        (K) and `table` (the [N_max, G] table now); transitions then carry extras
        `caption_id` [E] and `caption_prior` [E, K] (rl_aux/llm/history.py), and
        `state.aux_table` the table. Call before `init`."""
        if self.cfg.replay != "uniform":
            raise ValueError(
                f"a sample-time reward needs agent.replay=uniform, not {self.cfg.replay!r}"
            )
        self.sample_reward = sample_reward
        return self

    def _aux_reward(self, table):
        from rl_aux.llm.table import sample_aux_rewards

        beta = jnp.asarray(self.sample_reward.beta, jnp.float32)
        return lambda ex: sample_aux_rewards(table, ex["caption_id"], ex["caption_prior"], beta)

    def default_hparams(self) -> dict:
        return default_hparams(self.cfg, self.suite)

    @property
    def steps_per_update(self) -> int:
        return self.cfg.num_envs

    def init(self, key, hparams) -> DQNState:
        cfg = self.cfg
        k_env, k_net, k_head, key = jax.random.split(key, 4)
        env_state, ts = self.env.reset(k_env)
        example = Transition(
            obs=ts.obs,
            action=jnp.zeros(cfg.num_envs, jnp.int32),
            reward=ts.reward,
            terminated=ts.terminated,
            truncated=ts.truncated,
            next_obs=ts.obs,
        )
        aux_table = None
        if self.sample_reward is not None:
            k = self.sample_reward.history
            example = example.replace(
                extras={
                    "caption_id": jnp.zeros(cfg.num_envs, jnp.int32),
                    "caption_prior": jnp.zeros((cfg.num_envs, k), jnp.int32),
                }
            )
            aux_table = jnp.asarray(self.sample_reward.table(), jnp.float32)
        params = init_params(self.net, self.suite, k_net, k_head, example)
        return DQNState(
            params=params,
            target_params=params,
            aux_target=params if self.suite.needs_target else None,
            opt_state=init_opt_state(self.tx, params, hparams),
            bal_state=self.balancer.tx.init(params),
            replay=self._replay_init(example, self.rows),
            env_state=env_state,
            obs=ts.obs,
            key=key,
            update=jnp.zeros((), jnp.int32),
            grad_steps=jnp.zeros((), jnp.int32),
            hparams=as_hparams(hparams),
            aux_table=aux_table,
        )

    def learns(self, update):
        """Whether vector step number `update` (1-based) takes gradient steps; numpy or jnp."""
        cfg = self.cfg
        return (update * cfg.num_envs >= cfg.learning_starts) & (update % cfg.train_interval == 0)

    def epsilon(self, env_steps, hparams: dict | None = None):
        """The training exploration rate after `env_steps` (eps_start/eps_finish from
        `hparams` when a grid sweeps them)."""
        cfg, h = self.cfg, hparams or {}
        start, finish = hp(h, "eps_start", cfg.eps_start), hp(h, "eps_finish", cfg.eps_finish)
        return linear_epsilon(env_steps, start, finish, cfg.eps_anneal_steps)

    def act(self, params, obs, carry, first, key, greedy: bool = False, epsilon=0.0):
        """Epsilon-greedy on Q; `epsilon` is explicit (the training schedule passes its own)."""
        out, _ = self.net.apply(params["net"], obs)
        return epsilon_greedy(key, out["q"], epsilon), carry, out

    def _losses(self, params, target_params, aux_target, tr, discount, hparams, key):
        """((TD loss, weighted aux), metrics) on a replayed batch [B] with its discounts."""
        cfg = self.cfg
        (b,) = tr.action.shape
        chex.assert_shape([tr.reward, discount], (b,))
        out, _ = self.net.apply(params["net"], tr.obs)
        chex.assert_shape(out["q"], (b, self.spec.num_actions))
        q = jnp.take_along_axis(out["q"], tr.action[:, None], -1)[:, 0]
        q_next_t = self.net.apply(target_params["net"], tr.next_obs)[0]["q"]
        if cfg.double_q:
            a_star = jnp.argmax(self.net.apply(params["net"], tr.next_obs)[0]["q"], -1)
            v_next = jnp.take_along_axis(q_next_t, a_star[:, None], -1)[:, 0]
        else:
            v_next = q_next_t.max(-1)
        y = jax.lax.stop_gradient(tr.reward + discount * v_next)
        err = q - y
        td = {"huber": optax.huber_loss, "l1": jnp.abs}.get(cfg.loss, lambda e: 0.5 * e**2)(err)
        main = td.mean()
        metrics = {"losses/td": main, "losses/q_mean": q.mean()}
        aux = jnp.zeros(())
        if self.suite:
            fn = lambda p, which: self.net.apply(p, tr.obs if which == "obs" else tr.next_obs)[0]
            inp = self.suite.inputs(params, aux_target, tr, out, fn, self.spec.num_actions)
            aux, m = self.suite.loss(params, aux_target, inp, hparams["aux_weights"], key)
            metrics.update(m)
        return (main, aux), metrics

    def _learn(self, state: DQNState):
        cfg = self.cfg
        balancer = balancer_at(cfg, state.hparams, self.balancer)

        def one(c: TrainCarry, b: ReplayBatch):
            fn = lambda p: self._losses(
                p, state.target_params, c.target, b.tr, b.discount, state.hparams, b.key
            )
            return gradient_step(fn, c, self.tx, balancer, self.suite.target_tau)

        def keys(c, _):
            c, k_s, k_l = jax.random.split(c, 3)
            return c, (k_s, k_l)

        # every gradient step's batch is drawn before the loop over them: a replay buffer
        # read inside the loop would be carried (copied) through it
        key, k = jax.random.split(state.key)
        _, (k_s, k_l) = jax.lax.scan(keys, k, None, cfg.gradient_steps)
        aux = None if self.sample_reward is None else self._aux_reward(state.aux_table)
        gamma = hp(state.hparams, "gamma", cfg.gamma)
        sample = lambda k: self._replay_sample(
            state.replay, k, cfg.batch_size, cfg.n_step, gamma, *([aux] if aux else [])
        )
        tr, discount = jax.vmap(sample)(k_s)
        lr = annealed_lr(state.hparams["lr"], state.update, self.total_updates, cfg.anneal_lr)
        c0 = TrainCarry(
            params=state.params,
            target=state.aux_target,
            opt_state=set_lr(state.opt_state, lr),
            bal_state=state.bal_state,
        )
        c, m = jax.lax.scan(one, c0, ReplayBatch(tr=tr, discount=discount, key=k_l))
        state = state.replace(
            params=c.params,
            aux_target=c.target,
            opt_state=c.opt_state,
            bal_state=c.bal_state,
            key=key,
            grad_steps=state.grad_steps + cfg.gradient_steps,
        )
        return state, jax.tree.map(jnp.mean, m)

    def _update(self, state: DQNState, _):
        cfg = self.cfg
        key, k_act, k_env = jax.random.split(state.key, 3)
        eps = self.epsilon(state.update * cfg.num_envs, state.hparams)
        action, _, _ = self.act(state.params, state.obs, None, None, k_act, epsilon=eps)
        env_state, ts = self.env.step(state.env_state, action, k_env)
        tr = Transition(
            obs=state.obs,
            action=action,
            reward=ts.reward,
            terminated=ts.terminated,
            truncated=ts.truncated,
            next_obs=ts.extras["next_obs"],
        )
        state = state.replace(env_state=env_state, obs=ts.obs, key=key)
        return self.observe(state, tr, ts)

    def observe(self, state: DQNState, tr: Transition, ts):
        """Store one vector step `tr`, learn when due, sync the target; `ts` gives episode
        statistics. `_update` calls it after its jitted env step; host-stepped envs call it
        from their host loop (agents/host_loop.py)."""
        cfg = self.cfg
        eps = self.epsilon(state.update * cfg.num_envs, state.hparams)
        state = state.replace(replay=self._replay_add(state.replay, tr), update=state.update + 1)
        env_steps = state.update * cfg.num_envs
        learn = self.learns(state.update)
        # the branches return only the fields learning changes: a cond that returned the whole
        # state would copy the replay buffer through it at every step
        learned = lambda s: _learned_fields(*self._learn(s))
        _, m_shape = jax.eval_shape(learned, state)
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), m_shape)
        fields, m = jax.lax.cond(learn, learned, lambda s: (_learned_fields(s), zeros), state)
        state = state.replace(**fields)
        # target network: every target_update_interval env steps (hard copy when tau = 1)
        # the step counter is unbatched across seeds (rl_aux/vectorize.py): a real branch
        sync = (env_steps % cfg.target_update_interval) < cfg.num_envs
        tau = hp(state.hparams, "tau", cfg.tau)
        target = jax.lax.cond(
            sync,
            lambda s: target_update(s.target_params, s.params, tau),
            lambda s: s.target_params,
            state,
        )
        state = state.replace(target_params=target)
        m.update(episode_metrics(ts.done, ts.extras["episode_return"], ts.extras["episode_length"]))
        m["epsilon"] = eps
        m["lr"] = state.opt_state.hyperparams["learning_rate"]
        return state, m

    def train_chunk(self, state: DQNState, num_updates: int):
        return jax.lax.scan(self._update, state, None, num_updates)


LEARNED = ("params", "aux_target", "opt_state", "bal_state", "key", "grad_steps")


def _learned_fields(state: DQNState, metrics: dict | None = None):
    """The DQNState fields `DQN._learn` changes (and its metrics, if given)."""
    fields = {f: getattr(state, f) for f in LEARNED}
    return fields if metrics is None else (fields, metrics)
