"""Host-stepped training: the learners' jitted `act` and update, fed by a host env (NLE).

PPO: an actor thread steps the vector env with a jitted `act` and hands each finished rollout
to the learner through a one-slot queue, while the learner runs the jitted `PPO.learn` on the
previous one: the workers step rollout k+1 during update k (Sebulba-style double buffering;
the behaviour policy lags the learner by one or two updates and its log-probs are stored, so
the PPO ratio is taken against the policy that acted). `overlap=False` alternates instead.
DQN: one vector step at a time, jitted act + jitted `DQN.observe` (replay buffer donated).

Host-side reward sources (LLM subgoal rewards, rl_aux/llm/shaper.py; the KeyRoom oracle):
the acting thread only keeps each step's host arrays; the learner thread calls the source's
`step_ids(prev, actions, next)` on the finished rollout, in batches of `source_batch` vector
steps (string work only; batching the calls costs fewer steps/s than one call per step), then its
`rollout_rewards(ids, dones)`; the result lands in `rollout.aux["r_aux/<name>"]` [T, N]. On
MiniHack a rollout takes longer than an update, so caption work on the acting thread cost
steps/s one for one (and the NLE workers kept polling through it). Then `reward_fn(rollout)`
(for `rl-aux train`: the configured reward module, e.g. r_ext + r_aux) returns the rewards
[T, N] the learner optimises; `rollout.reward` keeps the env's reward for statistics.
`rollout.messages[t][i]` is the message text of env i's true successor observation at step t
and `rollout.host_obs` its raw arrays (HostPPO's `host_keys`).
"""

from __future__ import annotations

import dataclasses
import math
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from rl_aux.learner import learned_mean
from rl_aux.networks.network import network_initial_carry
from rl_aux.types import Transition


class HostRewardSource(Protocol):
    """An auxiliary reward computed on the host from NLE observations (see the module doc)."""

    name: str  # the rollout gets aux["r_aux/<name>"]
    host_keys: tuple  # NLE arrays step_ids reads (added to env.options.host_keys)

    def step_ids(self, prev: Mapping, actions: Sequence[int], nxt: Mapping) -> np.ndarray: ...

    def rollout_rewards(self, ids: np.ndarray, dones: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...

    def metrics(self) -> dict: ...

    # DQN reads rewards at sampling time: the bonus per subgoal and the [N_max, G] table now
    beta: Any

    def current_table(self) -> Any: ...


@dataclasses.dataclass
class HostRollout:
    """One rollout of T steps x N envs, host-side numpy, time-major."""

    obs: dict
    next_obs: dict  # true successors (final observation where an episode ended)
    action: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    first: np.ndarray  # obs[t] starts an episode (resets the recurrent core)
    logp: np.ndarray
    value: np.ndarray
    carry_in: Any  # recurrent carry fed to each step, [T, N, H] leaves; None if feed-forward
    carry_last: Any  # carry after the last step
    episode_return: np.ndarray
    episode_length: np.ndarray
    lost: np.ndarray  # episode cut short by a worker crash (not a real episode end)
    messages: list  # [T][N] message text of next_obs
    host_obs: dict  # [T, N, ...] arrays of env.options.host_keys (next_obs), may be empty
    params_version: int  # learner update whose params acted
    source_ids: np.ndarray | None = None  # [T, N] per-step ids of the reward source
    # [T] (prev, actions, next) host arrays for the source, captioned on the learner thread
    source_steps: list | None = None
    aux: dict = dataclasses.field(default_factory=dict)  # "r_aux/<source>": [T, N]
    learn_reward: np.ndarray | None = None  # what the learner optimises (default: reward)


def episode_stats(done: np.ndarray, lost: np.ndarray, ret: np.ndarray, length: np.ndarray):
    """(episodes, return sum, length sum) over finished, not crash-lost, episodes."""
    m = done & ~lost
    return int(m.sum()), float(ret[m].sum()), float(length[m].sum())


class HostPPO:
    """Recurrent or feed-forward PPO on a host-stepped env; see the module docstring."""

    def __init__(
        self,
        agent,
        env,
        reward_fn: Callable | None = None,
        overlap: bool = True,
        source: HostRewardSource | None = None,
        host_keys: Sequence[str] | None = None,
        source_batch: int = 16,
    ):
        self.agent, self.env, self.reward_fn, self.overlap = agent, env, reward_fn, overlap
        self.source = source
        self.source_batch = source_batch  # vector steps per source call (on the learner thread,
        # once a rollout is done: a new caption is submitted for labelling then)
        # rollout.host_obs keeps these arrays per step for a custom reward_fn. Default: the
        # env's host_keys without a source; none with one (the source reads its arrays on the
        # acting thread, and stacking [T, N] copies of them it never reads costs steps/s).
        self.host_keys = tuple(
            (env.opts.host_keys if source is None else ()) if host_keys is None else host_keys
        )
        if source is not None:
            have = set(getattr(env, "keys", ()))
            missing = [k for k in source.host_keys if k not in have]
            if missing:
                raise ValueError(
                    f"reward source {source.name!r} reads {missing}: add them to "
                    "env.options.host_keys"
                )
        self.cfg = agent.cfg
        net = agent.net

        def act(params, obs, carry, first, key):
            # the key split lives here, not on the host: alone, an eager split took longer than
            # the act itself (docs/results/nethack.md); same bits as before
            key, k = jax.random.split(key)
            a, carry, out = agent.act(params, obs, carry, first, k)
            logp = jnp.take_along_axis(jax.nn.log_softmax(out["logits"]), a[:, None], -1)[:, 0]
            return a, carry, logp, out["value"], key

        def learn(state, roll):
            tr = Transition(
                roll["obs"],
                roll["action"],
                roll["reward"],
                roll["terminated"],
                roll["truncated"],
                roll["next_obs"],
                # the agent's reward module (reward=blend) reads r_aux/<source> in its update
                roll["aux"] if agent.reward is not None else {},
            )
            # Values (and bootstrap values) under the learner's params, not the actor's: with
            # overlap the actor's are one or two updates stale, and PPO's clipped value loss
            # anchored on stale values stalls the critic (Room-5x5, overlapped with stored
            # values: value loss 0.2-6 and collapsing returns; alternating, where they are
            # current: 0.001-0.01 and solved). The policy ratio keeps the behaviour log-probs.
            p = state.params["net"]
            if agent.recurrent:  # carry after step t = carry fed to step t+1 (pre-reset)
                carry_out = jax.tree.map(
                    lambda c, last: jnp.concatenate([c[1:], last[None]], 0),
                    roll["carry_in"],
                    roll["carry_last"],
                )
                no_reset = jnp.zeros_like(roll["first"][0])
                nv = jax.vmap(lambda o, c: net.apply(p, o, c, no_reset)[0]["value"])(
                    roll["next_obs"], carry_out
                )
                v = jax.vmap(lambda o, c, f: net.apply(p, o, c, f)[0]["value"])(
                    roll["obs"], roll["carry_in"], roll["first"]
                )
            else:
                nv = jax.vmap(lambda o: net.apply(p, o)[0]["value"])(roll["next_obs"])
                v = jax.vmap(lambda o: net.apply(p, o)[0]["value"])(roll["obs"])
            traj = dict(
                tr=tr,
                first=roll["first"],
                logp=roll["logp"],
                value=v,
                next_value=nv,
                ep_return=roll["episode_return"],
                ep_length=roll["episode_length"],
            )
            if agent.recurrent:
                traj["carry_in"] = roll["carry_in"]
            return agent.learn(state, traj)

        self._act = jax.jit(act)
        self._learn = jax.jit(learn)

    # ------------------------------------------------------------------ acting
    def _collect(self, params, version: int, env_state: dict, stop=None) -> HostRollout | None:
        env, T = self.env, self.cfg.num_steps
        obs, carry, first, key = (env_state[k] for k in ("obs", "carry", "first", "key"))
        keys_host = self.host_keys
        src, pending = self.source, []  # (prev, actions, next) host arrays for the source
        rec: dict[str, list] = {
            k: []
            for k in (
                "obs next_obs action reward terminated truncated first logp value carry_in "
                "episode_return episode_length lost messages host"
            ).split()
        }
        for _ in range(T):
            if stop is not None and stop.is_set():
                return None  # training ended: drop the partial rollout
            a, carry_new, logp, value, key = self._act(params, obs, carry, first, key)
            a = np.asarray(a)
            env.step_async(a)
            rec["obs"].append(obs)
            rec["first"].append(first)
            rec["carry_in"].append(carry)
            rec["logp"].append(logp)
            rec["value"].append(value)
            rec["action"].append(a)
            ts = env.step_wait()
            rec["next_obs"].append(ts.extras["next_obs"])
            rec["reward"].append(ts.reward)
            rec["terminated"].append(ts.terminated)
            rec["truncated"].append(ts.truncated)
            rec["episode_return"].append(ts.extras["episode_return"])
            rec["episode_length"].append(ts.extras["episode_length"])
            rec["lost"].append(ts.extras["lost"])
            rec["messages"].append(env.last_messages())
            host = env.last_host_obs()
            if keys_host:
                rec["host"].append({k: host[k] for k in keys_host})
            if src is not None:  # step_wait made fresh arrays: safe to read after the rollout
                pending.append((env_state["host"], a, host))
                env_state["host"] = env.current_host_obs()
            # numpy, not TimeStep.done (an eager jnp op per vector step on the acting thread)
            obs, carry, first = ts.obs, carry_new, ts.terminated | ts.truncated
        env_state.update(obs=obs, carry=carry, first=first, key=key)
        stack = lambda xs: jax.tree.map(lambda *a: np.stack([np.asarray(x) for x in a]), *xs)
        return HostRollout(
            obs=stack(rec["obs"]),
            next_obs=stack(rec["next_obs"]),
            action=stack(rec["action"]),
            reward=stack(rec["reward"]),
            terminated=stack(rec["terminated"]),
            truncated=stack(rec["truncated"]),
            first=stack(rec["first"]),
            logp=stack(rec["logp"]),
            value=stack(rec["value"]),
            carry_in=stack(rec["carry_in"]) if self.agent.recurrent else None,
            carry_last=jax.tree.map(np.asarray, carry),
            episode_return=stack(rec["episode_return"]),
            episode_length=stack(rec["episode_length"]),
            lost=stack(rec["lost"]),
            messages=rec["messages"],
            host_obs=stack(rec["host"]) if keys_host else {},
            params_version=version,
            source_steps=pending if src is not None else None,
        )

    def _source_ids(self, steps: list) -> np.ndarray:
        """[T, N] source ids of a rollout's steps, `source_batch` steps per `step_ids` call.

        One call on k*N transitions instead of k calls on N: the source's numpy work is per
        call more than per row.
        """
        n, keys, out = len(steps[0][1]), self.source.host_keys, []
        for lo in range(0, len(steps), self.source_batch):
            part = steps[lo : lo + self.source_batch]
            cat = lambda i, part=part: {k: np.concatenate([p[i][k] for p in part]) for k in keys}
            ids = self.source.step_ids(cat(0), np.concatenate([p[1] for p in part]), cat(2))
            out.append(np.asarray(ids).reshape(-1, n))
        return np.concatenate(out)

    # ------------------------------------------------------------------ training
    def train(self, state, num_updates: int, key, on_update: Callable | None = None):
        """`num_updates` PPO updates; `on_update(i, metrics, rollout, seconds)` after each."""
        agent, env = self.agent, self.env
        k_env, k_act = jax.random.split(key)
        _, ts = env.reset(k_env)
        n = env.num_envs
        env_state = {
            "obs": ts.obs,
            "carry": network_initial_carry(agent.cfg.network, n),
            "first": np.ones(n, bool),
            "key": k_act,
            "host": env.current_host_obs(),
        }
        if self.source is not None:
            self.source.reset()
        shared = {"params": state.params, "version": 0}
        q: queue.Queue = queue.Queue(maxsize=1)
        stop = threading.Event()
        error: list[BaseException] = []

        def actor():
            try:
                while not stop.is_set():
                    roll = self._collect(shared["params"], shared["version"], env_state, stop)
                    while roll is not None and not stop.is_set():
                        try:
                            q.put(roll, timeout=0.5)
                            break
                        except queue.Full:
                            continue
            except BaseException as e:  # surfaced in the learner thread
                error.append(e)
                stop.set()

        thread = None
        try:
            t_last = time.perf_counter()
            for i in range(num_updates):
                if thread is not None:
                    roll = None
                    while roll is None:
                        if error:
                            raise error[0]
                        try:
                            roll = q.get(timeout=0.5)
                        except queue.Empty:
                            continue
                else:
                    roll = self._collect(shared["params"], shared["version"], env_state)
                if self.source is not None:  # rollouts arrive in order: per-episode state holds
                    roll.source_ids = self._source_ids(roll.source_steps)
                    roll.source_steps = None  # the host arrays are no longer needed
                    dones = roll.terminated | roll.truncated
                    r_aux = self.source.rollout_rewards(roll.source_ids, dones)
                    roll.aux[f"r_aux/{self.source.name}"] = np.asarray(r_aux, np.float32)
                if self.reward_fn is not None:
                    roll.learn_reward = np.asarray(self.reward_fn(roll), np.float32)
                    if roll.learn_reward.shape != roll.action.shape:
                        raise ValueError(
                            f"reward_fn returned shape {roll.learn_reward.shape}, expected "
                            f"{roll.action.shape} ([T, N])"
                        )
                state, m = self._learn(state, _device_roll(roll))
                shared["params"], shared["version"] = state.params, i + 1
                if self.overlap and thread is None and i + 1 < num_updates:
                    # act and learn are compiled now (first rollout and update ran in this
                    # thread); from here the actor steps rollout k+1 during update k
                    thread = threading.Thread(target=actor, name="nle-actor", daemon=True)
                    thread.start()
                m = {k: float(v) for k, v in jax.device_get(m).items()}
                now = time.perf_counter()
                if on_update is not None:
                    on_update(i, m, roll, now - t_last)
                t_last = now
        finally:
            stop.set()
            if thread is not None:
                thread.join(timeout=60)
        return state


def _device_roll(r: HostRollout) -> dict:
    skip = {"messages", "host_obs", "params_version", "lost", "learn_reward"}
    skip |= {"source_ids", "source_steps"}  # host-side only
    out = {f.name: getattr(r, f.name) for f in dataclasses.fields(r) if f.name not in skip}
    if r.learn_reward is not None:
        out["reward"] = r.learn_reward
    if out["carry_in"] is None:
        out.pop("carry_in")
        out.pop("carry_last")
    return out


class HostDQN:
    """DQN on a host-stepped env: jitted act, host env step, jitted `DQN.observe`.

    With a host reward source (`reward=subgoal|ellm|keyroom_oracle`), each stored transition
    carries its caption id and its episode's earlier caption ids, and the replay pays r_aux from
    the table as it is when the transition is sampled (`DQN.with_sample_reward`): labels that
    arrive after a transition was stored still count.
    """

    def __init__(self, agent, env, source: HostRewardSource | None = None, history: int = 64):
        from rl_aux.llm.history import CaptionHistory

        self.agent, self.env, self.source = agent, env, source
        n = agent.cfg.num_envs
        self.history = CaptionHistory(n, history) if source is not None else None

        def act(state, obs):
            key, k = jax.random.split(state.key)
            eps = agent.epsilon(state.update * n)
            a, _, _ = agent.act(state.params, obs, None, None, k, epsilon=eps)
            return a, state.replace(key=key)

        def observe(state, obs, action, ts, extras, table):
            tr = Transition(
                obs, action, ts.reward, ts.terminated, ts.truncated, ts.extras["next_obs"], extras
            )
            if table is not None:
                state = state.replace(aux_table=table)
            return agent.observe(state, tr, ts)

        self._act = jax.jit(act)
        self._observe = jax.jit(observe, donate_argnums=0)

    def train(self, state, num_steps: int, key, on_update: Callable | None = None):
        """`num_steps` vector steps; `on_update(i, metrics, ts, seconds)` after each."""
        _, ts = self.env.reset(key)
        obs = ts.obs
        state = state.replace(env_state=None, obs=None)
        src = self.source
        host = None
        if src is not None:
            src.reset()
            self.history.reset()
            host = self.env.current_host_obs()
        t_last = time.perf_counter()
        for i in range(num_steps):
            a, state = self._act(state, obs)
            _, ts = self.env.step(None, np.asarray(a))
            ts_dev = ts.replace(extras={k: v for k, v in ts.extras.items() if k != "lost"})
            extras, table = {}, None
            if src is not None:
                ids = src.step_ids(host, np.asarray(a), self.env.last_host_obs())
                host = self.env.current_host_obs()
                prior = self.history.step(ids, np.asarray(ts.done))
                extras = {"caption_id": ids, "caption_prior": prior}
                table = src.current_table()
            state, m = self._observe(state, obs, a, ts_dev, extras, table)
            if src is not None:
                m = {**m, "llm/history_overflow": self.history.overflow}
            obs = ts.obs
            if on_update is not None:
                now = time.perf_counter()
                on_update(i, m, ts, now - t_last)
                t_last = now
        return state


class SampleReward:
    """What `DQN.with_sample_reward` reads from a host source: beta, K, the current table."""

    def __init__(self, source: HostRewardSource, history: int):
        self.beta = float(source.beta)
        self.history = history
        self.table = source.current_table


# ---------------------------------------------------------------------- reward modules
HOST_REWARDS = ("env", "subgoal", "ellm", "keyroom_oracle", "blend")  # on host-stepped envs
# reward=blend reward.sources=[<one of these>]: the blend (inside PPO's update) weighs it
HOST_BLEND_SOURCES = ("subgoal", "oracle")  # subgoal: the ELLM matcher with its defaults


def source_host_keys(reward_name: str, sources: tuple = ()) -> tuple:
    """NLE arrays the reward's host source reads (the trainer adds them to env host_keys)."""
    if reward_name == "blend":
        return source_host_keys("keyroom_oracle" if sources == ("oracle",) else "ellm")
    if reward_name in ("subgoal", "ellm"):
        from rl_aux.llm.caption import OBS_KEYS

        return OBS_KEYS
    if reward_name == "keyroom_oracle":
        from rl_aux.rewards.keyroom_oracle import NEEDS

        return NEEDS
    return ()


def host_reward(cfg, env) -> tuple[HostRewardSource | None, Callable | None]:
    """The host source and `reward_fn` of `cfg.reward` (the reward module, applied on host)."""
    from rl_aux.configs import ConfigError
    from rl_aux.rewards import reward_class

    name = cfg.reward_name
    if name not in HOST_REWARDS:
        raise ConfigError(
            f"reward={name} is not supported on host-stepped envs ({cfg.env.name}); "
            f"accepted: {', '.join(HOST_REWARDS)}"
        )
    if name == "env":
        return None, None
    blend = name == "blend"  # the agent's update applies the blend: no host reward_fn
    if name == "keyroom_oracle" or (blend and cfg.reward.sources == ("oracle",)):
        from rl_aux.rewards.keyroom_oracle import KeyRoomOracleConfig, KeyRoomOracleSource

        beta = KeyRoomOracleConfig().beta if blend else cfg.reward.beta
        source = KeyRoomOracleSource(beta, env.num_envs, env.action_names)
    else:
        from rl_aux.llm.shaper import SubgoalShaper
        from rl_aux.rewards.subgoal import EllmRewardConfig

        rcfg = EllmRewardConfig() if blend else cfg.reward
        source = SubgoalShaper(rcfg, cfg.llm, env.action_names, env.num_envs)
    if blend:
        return source, None
    module = reward_class(name)(cfg.reward, cfg.agent.gamma)

    def reward_fn(roll: HostRollout) -> np.ndarray:
        tr = Transition(None, roll.action, roll.reward, roll.terminated, roll.truncated, None)
        r, _ = module.reward({}, tr.replace(extras=roll.aux))
        return np.asarray(r, np.float32)

    return source, reward_fn


# ---------------------------------------------------------------------- trainer entry point
def run_host(cfg, env, agent, quiet: bool = False) -> dict:
    """`rl-aux train` for host-stepped envs: seeds one after another, rows to the run store."""
    import os

    from rl_aux.logging import RunStore, scrub_secrets

    if cfg.grid:
        raise ValueError("grid.* is not supported on host-stepped envs (nethack/*, minihack/*)")
    if cfg.resume:
        raise ValueError("resume=true is not supported on host-stepped envs yet")
    hp = agent.default_hparams()
    learns = getattr(agent, "learns", None) if agent.kind == "q" else None  # DQN warm-up
    store = RunStore(cfg.run_dir, False)
    store.write_config(scrub_secrets(cfg.to_yaml_dict()))
    spu = agent.steps_per_update
    num_updates = max(cfg.total_timesteps // spu, 1)
    log_every = max(1, round((cfg.logger.log_interval or cfg.total_timesteps // 100) / spu))
    summary: dict = {"run_dir": cfg.run_dir, "label": cfg.label, "per_seed": {}}
    opened = False
    source, reward_fn = host_reward(cfg, env)
    history = getattr(cfg.reward, "dqn_history", 64)
    if source is not None and agent.kind == "q":
        if cfg.reward_name == "blend":
            raise ValueError("reward=blend is wired into host PPO only, not DQN")
        agent.with_sample_reward(SampleReward(source, history))
    try:
        for s in range(cfg.num_seeds):
            seed = cfg.seed + s
            k_init, k_train = jax.random.split(jax.random.PRNGKey(seed))
            t0 = time.perf_counter()
            state = agent.init(k_init, hp)
            acc = {"eps": 0, "ret": 0.0, "len": 0.0, "m": [], "t": 0.0, "steps": 0, "succ": 0}
            acc["aux"] = 0.0  # aux return of the episodes finished in this logging block
            acc["learned"] = []  # per update: did it take a gradient step (DQN's learns)
            aux_running = np.zeros(env.num_envs)  # per env, the running episode's aux return
            tail: list[tuple[int, float]] = []
            lost0 = env.lost_episodes

            def on_update(
                i, m, data, dt, seed=seed, acc=acc, tail=tail, lost0=lost0, aux_run=aux_running
            ):
                nonlocal opened
                if isinstance(data, HostRollout):
                    done = data.terminated | data.truncated
                    e, r, ln = episode_stats(
                        done, data.lost, data.episode_return, data.episode_length
                    )
                    # success: a natural end with a positive final reward (MiniHack's goal)
                    acc["succ"] += int((data.terminated & (data.reward > 0) & ~data.lost).sum())
                    if data.aux:
                        r_aux = sum(data.aux.values())
                        for t in range(r_aux.shape[0]):
                            aux_run += r_aux[t]
                            fin = done[t] & ~data.lost[t]
                            acc["aux"] += float(aux_run[fin].sum())
                            aux_run[done[t]] = 0.0
                else:
                    done = data.terminated | data.truncated
                    ex = data.extras
                    e, r, ln = episode_stats(
                        done, ex["lost"], ex["episode_return"], ex["episode_length"]
                    )
                acc["eps"] += e
                acc["ret"] += r
                acc["len"] += ln
                acc["t"] += dt
                acc["steps"] += spu
                acc["m"].append(m)
                acc["learned"].append(bool(learns(i + 1)) if learns is not None else True)
                if (i + 1) % log_every and i + 1 != num_updates:
                    return
                step = (i + 1) * spu
                row = {"global_step": step, "seed": seed, "grid": 0, "hp/lr": hp["lr"]}
                eps = acc["eps"]
                row["charts/episodic_return"] = acc["ret"] / eps if eps else math.nan
                row["charts/episodic_length"] = acc["len"] / eps if eps else math.nan
                row["charts/episodes"] = eps
                row["charts/success_rate"] = acc["succ"] / eps if eps else math.nan
                if source is not None:  # mean auxiliary return of the episodes that finished
                    if agent.kind != "q":  # DQN pays r_aux at sampling time, not per episode
                        row["charts/aux_return"] = acc["aux"] / eps if eps else math.nan
                    row.update(source.metrics())
                skip = {"episodes", "episode_return_sum", "episode_length_sum"}
                for k in acc["m"][0]:
                    if k not in skip:
                        name = k if "/" in k else f"charts/{k}"
                        values = [float(x[k]) for x in acc["m"]]
                        if learns is not None and k.startswith(agent.LEARN_METRIC_PREFIXES):
                            row[name] = learned_mean(values, acc["learned"])
                        else:
                            row[name] = float(np.mean(values))
                row["charts/sps"] = acc["steps"] / max(acc["t"], 1e-9)
                row["charts/lost_episodes"] = env.lost_episodes - lost0
                row["charts/worker_restarts"] = env.restarts
                row["time/elapsed_s"] = time.perf_counter() - t0
                if not opened:
                    cols = list(row)
                    store.open_metrics(cols, None)
                    opened = True
                store.log_rows([row])
                if eps:
                    tail.append((step, row["charts/episodic_return"], eps))
                if not quiet:
                    print(
                        f"[{cfg.label}] seed {seed} {step}/{num_updates * spu} steps "
                        f"return={row['charts/episodic_return']:.3f} sps={row['charts/sps']:.0f}",
                        file=sys.stderr,
                        flush=True,
                    )
                acc.update(eps=0, ret=0.0, len=0.0, m=[], t=0.0, steps=0, succ=0, aux=0.0)
                acc["learned"] = []

            if agent.kind == "q":
                HostDQN(agent, env, source, history).train(state, num_updates, k_train, on_update)
            else:
                loop = HostPPO(agent, env, reward_fn, env.opts.overlap, source)
                loop.train(state, num_updates, k_train, on_update)
            cut = num_updates * spu * 0.9
            last = [(r, e) for st, r, e in tail if st > cut] or [(r, e) for _, r, e in tail[-1:]]
            w = sum(e for _, e in last)
            final = sum(r * e for r, e in last) / w if w else math.nan
            summary["per_seed"][(0, seed)] = {"final_return": final, "eval_return": math.nan}
        store.write_status("finished", global_step=num_updates * spu)
    finally:
        store.close()
        env.close()
        if source is not None and hasattr(source, "close"):
            source.close()
    if not quiet:
        for (_, s), v in summary["per_seed"].items():
            print(f"  seed {s}: return(last 10%) {v['final_return']:.3f}", file=sys.stderr)
    os.makedirs(cfg.run_dir, exist_ok=True)
    return summary
