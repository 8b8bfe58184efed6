"""An example plugin learner: `agent=a2c`, synchronous advantage actor-critic (Mnih et al.
2016, Alg. S3, one n-step update per rollout, no auxiliary heads).

Not a built-in learner: it shows that one file outside the library adds a learner and its
config by implementing the Agent protocol of rl_aux/agent.py. Load it with
`rl-aux train plugins=[examples/plugins/a2c.py] agent=a2c agent.num_steps=8`.
"""

import dataclasses
from typing import Any

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct

from rl_aux.agent import register_agent
from rl_aux.learner import episode_metrics, make_optimizer, set_lr
from rl_aux.networks.network import NetworkConfig, make_network
from rl_aux.typed_config import ConfigError, spec


@dataclasses.dataclass(frozen=True)
class A2CConfig:
    """agent=a2c hyperparameters (the paper's Atari values scaled to small envs)."""

    num_envs: int = spec(8, ge=1)
    num_steps: int = spec(8, ge=1)  # n of the n-step returns
    gamma: float = spec(0.99, ge=0.0, le=1.0)
    ent_coef: float = spec(0.01, ge=0.0)
    vf_coef: float = spec(0.5, ge=0.0)
    lr: float = spec(7e-4, gt=0.0)
    max_grad_norm: float = spec(0.5, gt=0.0)
    adam_eps: float = spec(1e-5, gt=0.0)
    network: NetworkConfig = NetworkConfig()


@struct.dataclass
class A2CState:
    params: Any  # {"net": ...}
    opt_state: Any
    env_state: Any
    obs: chex.Array
    key: chex.PRNGKey
    update: chex.Array


@register_agent("a2c")
class A2C:
    """agent=a2c: n-step advantage actor-critic, feed-forward networks, no heads."""

    Config = A2CConfig
    kind = "actor_critic"
    SHARED_FIELDS = ("update",)

    def __init__(self, cfg: A2CConfig, env, heads, total_updates: int, reward=None):
        if heads:
            raise ConfigError("agent=a2c trains no auxiliary heads; accepted: no head=...")
        if cfg.network.core != "none" or reward is not None:
            raise ConfigError(
                "agent=a2c: accepted: agent.network.core=none and reward=env (use agent=ppo "
                "for recurrent cores and reward modules)"
            )
        self.cfg, self.env, self.spec = cfg, env, env.spec
        self.total_updates = total_updates
        self.recurrent = False
        self.net = make_network(cfg.network, self.spec.num_actions, self.spec.obs_shape, self.kind)
        self.tx = make_optimizer(cfg)

    @property
    def steps_per_update(self) -> int:
        return self.cfg.num_envs * self.cfg.num_steps

    def default_hparams(self) -> dict:
        return {"lr": self.cfg.lr, "aux_weights": {}}

    def init(self, key, hparams) -> A2CState:
        k_env, k_net, key = jax.random.split(key, 3)
        env_state, ts = self.env.reset(k_env)
        params = {"net": jax.jit(self.net.init)(k_net, ts.obs)}
        opt_state = set_lr(self.tx.init(params), jnp.asarray(hparams["lr"], jnp.float32))
        return A2CState(params, opt_state, env_state, ts.obs, key, jnp.zeros((), jnp.int32))

    def act(self, params, obs, carry, first, key, greedy: bool = False, epsilon: float = 0.0):
        """A sampled action (greedy: the mode, with epsilon-random actions)."""
        out, carry = self.net.apply(params["net"], obs, carry, first)
        logits = out["logits"]
        if not greedy:
            return jax.random.categorical(key, logits), carry, out
        k1, k2 = jax.random.split(key)
        a = jnp.argmax(logits, -1)
        rand = jax.random.randint(k1, a.shape, 0, logits.shape[-1])
        return jnp.where(jax.random.uniform(k2, a.shape) < epsilon, rand, a), carry, out

    def _rollout(self, state: A2CState):
        def step(c, _):
            env_state, obs, key = c
            key, k_act, k_env = jax.random.split(key, 3)
            action, _, _ = self.act(state.params, obs, None, None, k_act)
            env_state, ts = self.env.step(env_state, action, k_env)
            rec = {
                "obs": obs,
                "action": action,
                "reward": ts.reward,
                "terminated": ts.terminated,
                "truncated": ts.truncated,
                "next_obs": ts.extras["next_obs"],
                "done": ts.done,
                "ep_return": ts.extras["episode_return"],
                "ep_length": ts.extras["episode_length"],
            }
            return (env_state, ts.obs, key), rec

        init = (state.env_state, state.obs, state.key)
        (env_state, obs, key), traj = jax.lax.scan(step, init, None, self.cfg.num_steps)
        return state.replace(env_state=env_state, obs=obs, key=key), traj

    def _returns(self, params, traj) -> jax.Array:
        """n-step returns [T, N], bootstrapped with V(next obs) at time limits and at T."""
        next_v = self.net.apply(params["net"], traj["next_obs"].reshape((-1, *self.spec.obs_shape)))
        next_v = next_v[0]["value"].reshape(traj["reward"].shape)
        last = jnp.zeros_like(traj["truncated"]).at[-1].set(True)
        cut = traj["truncated"] | last

        def back(g, x):
            r, term, c, v = x
            g = r + self.cfg.gamma * jnp.where(term, 0.0, jnp.where(c, v, g))
            return g, g

        xs = (traj["reward"], traj["terminated"], cut, next_v)
        _, g = jax.lax.scan(back, jnp.zeros_like(next_v[0]), xs, reverse=True)
        return jax.lax.stop_gradient(g)

    def _loss(self, params, traj, returns):
        obs = traj["obs"].reshape((-1, *self.spec.obs_shape))
        out, _ = self.net.apply(params["net"], obs)
        logp_all = jax.nn.log_softmax(out["logits"])
        logp = jnp.take_along_axis(logp_all, traj["action"].reshape(-1, 1), -1)[:, 0]
        ret = returns.reshape(-1)
        adv = jax.lax.stop_gradient(ret - out["value"])
        policy = -jnp.mean(logp * adv)
        value = 0.5 * jnp.mean((ret - out["value"]) ** 2)
        entropy = -jnp.mean(jnp.sum(jnp.exp(logp_all) * logp_all, -1))
        loss = policy + self.cfg.vf_coef * value - self.cfg.ent_coef * entropy
        return loss, {"losses/policy": policy, "losses/value": value, "losses/entropy": entropy}

    def _update(self, state: A2CState, _):
        state, traj = self._rollout(state)
        returns = self._returns(state.params, traj)
        grads, m = jax.grad(self._loss, has_aux=True)(state.params, traj, returns)
        updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        m.update(episode_metrics(traj["done"], traj["ep_return"], traj["ep_length"]))
        state = state.replace(params=params, opt_state=opt_state, update=state.update + 1)
        return state, m

    def train_chunk(self, state: A2CState, num_updates: int):
        """`num_updates` A2C updates; metrics stacked over updates."""
        return jax.lax.scan(self._update, state, None, num_updates)
