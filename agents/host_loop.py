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
from typing import Any, Protocol, cast

import jax
import jax.numpy as jnp
import numpy as np

from rl_aux.learner import learned_mean
from rl_aux.networks.network import network_initial_carry
from rl_aux.types import Rollout, Transition


class HostRewardSource(Protocol):
    """An auxiliary reward computed on the host from NLE observations (see the module doc)."""

    name: str  # the rollout gets aux["r_aux/<name>"]
    host_keys: tuple  # NLE arrays step_ids reads (added to env.options.host_keys)

    def step_ids(
        self, prev: Mapping, actions: Sequence[int] | np.ndarray, nxt: Mapping, /
    ) -> np.ndarray: ...

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
    end: dict | None = None  # the actor's state after the rollout (HostPPO.snapshot)


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

        def learn(state, traj: Rollout, carry_last):
            # Values (and bootstrap values) under the learner's params, not the actor's: with
            # overlap the actor's are one or two updates stale, and PPO's clipped value loss
            # anchored on stale values stalls the critic (Room-5x5, overlapped with stored
            # values: value loss 0.2-6 and collapsing returns; alternating, where they are
            # current: 0.001-0.01 and solved). The policy ratio keeps the behaviour log-probs.
            p, tr = state.params["net"], traj.tr
            if agent.recurrent:  # carry after step t = carry fed to step t+1 (pre-reset)
                carry_out = jax.tree.map(
                    lambda c, last: jnp.concatenate([c[1:], last[None]], 0),
                    traj.carry_in,
                    carry_last,
                )
                no_reset = jnp.zeros_like(traj.first[0])
                nv = jax.vmap(lambda o, c: net.apply(p, o, c, no_reset)[0]["value"])(
                    tr.next_obs, carry_out
                )
                v = jax.vmap(lambda o, c, f: net.apply(p, o, c, f)[0]["value"])(
                    tr.obs, traj.carry_in, traj.first
                )
            else:
                nv = jax.vmap(lambda o: net.apply(p, o)[0]["value"])(tr.next_obs)
                v = jax.vmap(lambda o: net.apply(p, o)[0]["value"])(tr.obs)
            return agent.learn(state, traj.replace(value=v, next_value=nv))

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
        replay = getattr(env, "replay_state", None)
        end = {
            "actor": jax.tree.map(
                np.asarray, {"obs": obs, "carry": carry, "first": first, "key": key}
            ),
            "replay": replay() if replay is not None else None,
        }
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
            end=end,
        )

    def _source_ids(self, steps: list) -> np.ndarray:
        """[T, N] source ids of a rollout's steps, `source_batch` steps per `step_ids` call.

        One call on k*N transitions instead of k calls on N: the source's numpy work is per
        call more than per row.
        """
        src = cast(HostRewardSource, self.source)  # called only with a source
        n, keys, out = len(steps[0][1]), src.host_keys, []
        for lo in range(0, len(steps), self.source_batch):
            part = steps[lo : lo + self.source_batch]
            cat = lambda i, part=part: {k: np.concatenate([p[i][k] for p in part]) for k in keys}
            ids = src.step_ids(cat(0), np.concatenate([p[1] for p in part]), cat(2))
            out.append(np.asarray(ids).reshape(-1, n))
        return np.concatenate(out)

    # ------------------------------------------------------------------ training
    def behaviour_version(self, k: int) -> int:
        """The learner update whose params act in rollout k: with overlap, rollout k is
        stepped during update k-1, so it acts with update k-1's params (k = 1 with update 1's,
        as the actor starts once update 0 is done); alternating, with the current ones.
        Fixed, not whatever the actor finds, so a run (and a resumed one) is deterministic."""
        return max(k - 1, 1) if self.overlap and k > 0 else k

    def begin(self, state, key=None, resume: dict | None = None) -> None:
        """Start acting: fresh from `key` (env reseeded), or from a checkpoint's `resume`
        ({"actor", "behaviour", "replay", "update"}: see `snapshot`)."""
        agent, env = self.agent, self.env
        n = env.num_envs
        if resume is None:
            k_env, k_act = jax.random.split(cast(jax.Array, key))  # given when not resuming
            _, ts = env.reset(k_env)
            actor = {
                "obs": ts.obs,
                "carry": network_initial_carry(agent.cfg.network, n),
                "first": np.ones(n, bool),
                "key": k_act,
            }
            self._done, params = 0, {0: state.params}
            if self.source is not None:
                self.source.reset()
        else:
            actor = dict(resume["actor"])
            obs = env.restore_replay(resume["replay"])
            if not same_obs(actor["obs"], obs):
                raise RuntimeError(REPLAY_MISMATCH)
            self._done = int(resume["update"])
            b = self.behaviour_version(self._done)
            params = {b: resume["behaviour"], self._done: state.params}
        actor["host"] = env.current_host_obs()
        self._env_state = actor
        self._params = params
        self._cond = threading.Condition()
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._error: list[BaseException] = []
        self._thread: threading.Thread | None = None
        self._next_roll = self._done  # the rollout the actor steps next
        if resume is not None and self.overlap:
            self._start_actor()

    def snapshot(self, state, roll: HostRollout) -> tuple[dict, dict]:
        """(pytree, JSON) a checkpoint keeps after the update on `roll`: the learner state,
        the actor's state at the rollout's end and the params the next rollout acts with."""
        b = self.behaviour_version(self._done)
        with self._cond:
            behaviour = self._params[b]
        end = cast(dict, roll.end)  # _collect sets it on every rollout
        tree = {"learner": state, "actor": end["actor"], "behaviour": behaviour}
        return tree, {"replay": end["replay"], "update": self._done}

    def like(self, state) -> dict:
        """The checkpoint pytree's structure (for restoring into), from an initial state."""
        n, spec = self.env.num_envs, self.env.spec
        obs = {k: np.zeros((n, *shape), dict(spec.obs_dtype)[k]) for k, shape in spec.obs_shape}
        actor = {
            "obs": obs,
            "carry": network_initial_carry(self.agent.cfg.network, n),
            "first": np.ones(n, bool),
            "key": jax.random.PRNGKey(0),
        }
        return {"learner": state, "actor": actor, "behaviour": state.params}

    def _start_actor(self) -> None:
        self._thread = threading.Thread(target=self._actor, name="nle-actor", daemon=True)
        self._thread.start()

    def _params_for(self, k: int):
        """Params of rollout k's behaviour version (waits until the learner has them)."""
        v = self.behaviour_version(k)
        with self._cond:
            while v not in self._params and not self._stop.is_set():
                self._cond.wait(0.5)
            return self._params.get(v), v

    def _actor(self) -> None:
        try:
            while not self._stop.is_set():
                params, v = self._params_for(self._next_roll)
                if params is None:
                    return
                roll = self._collect(params, v, self._env_state, self._stop)
                while roll is not None and not self._stop.is_set():
                    try:
                        self._queue.put(roll, timeout=0.5)
                        self._next_roll += 1
                        break
                    except queue.Full:
                        continue
        except BaseException as e:  # surfaced in the learner thread
            self._error.append(e)
            self._stop.set()

    def _next_rollout(self) -> HostRollout:
        if self._thread is None:
            params, v = self._params_for(self._next_roll)
            self._next_roll += 1
            return cast(
                HostRollout, self._collect(params, v, self._env_state)
            )  # no stop: never None
        while True:
            if self._error:
                raise self._error[0]
            try:
                return self._queue.get(timeout=0.5)
            except queue.Empty:
                continue

    def _with_rewards(self, roll: HostRollout) -> HostRollout:
        """The source's r_aux (rollouts arrive in order: per-episode state holds) and the
        reward the learner optimises."""
        if self.source is not None:
            roll.source_ids = self._source_ids(cast(list, roll.source_steps))
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
        return roll

    def updates(self, state, n: int, on_update: Callable | None = None, total: int | None = None):
        """`n` more PPO updates; `on_update(i, metrics, rollout, seconds)` after each.

        `total`: the run's update count (the actor starts only if another update follows)."""
        t_last = time.perf_counter()
        for _ in range(n):
            i = self._done
            roll = self._with_rewards(self._next_rollout())
            # the agent's reward module (reward=blend) reads r_aux/<source> in its update
            traj, carry_last = learner_rollout(roll, aux=self.agent.reward is not None)
            state, m = self._learn(state, traj, carry_last)
            self._done = i + 1
            with self._cond:
                self._params[i + 1] = state.params
                for v in [v for v in self._params if v < i]:
                    del self._params[v]
                self._cond.notify_all()
            more = total is None or i + 1 < total
            if self.overlap and self._thread is None and more:
                # act and learn are compiled now (first rollout and update ran in this
                # thread); from here the actor steps rollout k+1 during update k
                self._start_actor()
            m = {k: float(v) for k, v in jax.device_get(m).items()}
            now = time.perf_counter()
            if on_update is not None:
                on_update(i, m, roll, now - t_last)
            t_last = now
        return state

    def end(self) -> None:
        """Stop the actor thread (its partial rollout is dropped)."""
        if not hasattr(self, "_stop"):  # never begun
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def train(self, state, num_updates: int, key, on_update: Callable | None = None):
        """`num_updates` PPO updates; `on_update(i, metrics, rollout, seconds)` after each."""
        self.begin(state, key)
        try:
            return self.updates(state, num_updates, on_update, num_updates)
        finally:
            self.end()


def learner_rollout(host: HostRollout, aux: bool) -> tuple[Rollout, Any]:
    """The learner's `Rollout` of a host rollout (numpy leaves) and the actor's last carry.

    The reward is what the learner optimises (`learn_reward` when a reward_fn set it); `aux`
    puts the source's `r_aux/<name>` arrays in `tr.extras` (a reward module reads them in the
    update). `value` is the actor's; the jitted learn recomputes it under the learner's params.
    """
    # host numpy arrays in the structs: jax takes them wherever it expects a jax.Array
    r = cast(Any, host)
    tr = Transition(
        obs=r.obs,
        action=r.action,
        reward=r.reward if r.learn_reward is None else r.learn_reward,
        terminated=r.terminated,
        truncated=r.truncated,
        next_obs=r.next_obs,
        extras=r.aux if aux else {},
    )
    traj = Rollout(
        tr=tr,
        first=r.first,
        logp=r.logp,
        value=r.value,
        ep_return=r.episode_return,
        ep_length=r.episode_length,
        carry_in=r.carry_in,
    )
    return traj, r.carry_last if r.carry_in is not None else None


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
                obs=obs,
                action=action,
                reward=ts.reward,
                terminated=ts.terminated,
                truncated=ts.truncated,
                next_obs=ts.extras["next_obs"],
                extras=extras,
            )
            if table is not None:
                state = state.replace(aux_table=table)
            return agent.observe(state, tr, ts)

        self._act = jax.jit(act)
        self._observe = jax.jit(observe, donate_argnums=0)

    def begin(self, state, key=None, resume: dict | None = None):
        """Start acting: fresh from `key` (env reseeded), or from a checkpoint's `resume`
        ({"actor", "replay"}: see `snapshot`); returns the state without env fields."""
        if resume is None:
            _, ts = self.env.reset(key)
            self._obs = ts.obs
            if self.source is not None:
                self.source.reset()
                cast(Any, self.history).reset()  # built with the source
        else:
            obs = self.env.restore_replay(resume["replay"])
            if not same_obs(resume["actor"]["obs"], obs):
                raise RuntimeError(REPLAY_MISMATCH)
            self._obs = obs
        self._host = self.env.current_host_obs() if self.source is not None else None
        return state.replace(env_state=None, obs=None)

    def snapshot(self, state, _data=None) -> tuple[dict, dict]:
        """(pytree, JSON) a checkpoint keeps: the learner state, the next obs, the env replay."""
        return {"learner": state, "actor": {"obs": self._obs}}, {"replay": self.env.replay_state()}

    def like(self, state) -> dict:
        """The checkpoint pytree's structure (for restoring into), from an initial state."""
        n, spec = self.env.num_envs, self.env.spec
        obs = {k: np.zeros((n, *shape), dict(spec.obs_dtype)[k]) for k, shape in spec.obs_shape}
        return {"learner": state.replace(env_state=None, obs=None), "actor": {"obs": obs}}

    def updates(self, state, lo: int, n: int, on_update: Callable | None = None):
        """Vector steps lo..lo+n-1; `on_update(i, metrics, ts, seconds)` after each."""
        src = self.source
        t_last = time.perf_counter()
        for i in range(lo, lo + n):
            a, state = self._act(state, self._obs)
            _, ts = self.env.step(None, np.asarray(a))
            ts_dev = ts.replace(extras={k: v for k, v in ts.extras.items() if k != "lost"})
            extras, table = {}, None
            if src is not None:
                history = cast(Any, self.history)  # built with the source, as is self._host
                ids = src.step_ids(
                    cast(Mapping, self._host), np.asarray(a), self.env.last_host_obs()
                )
                self._host = self.env.current_host_obs()
                prior = history.step(ids, np.asarray(ts.done))
                extras = {"caption_id": ids, "caption_prior": prior}
                table = src.current_table()
            state, m = self._observe(state, self._obs, a, ts_dev, extras, table)
            if src is not None:
                m = {**m, "llm/history_overflow": history.overflow}
            self._obs = ts.obs
            if on_update is not None:
                now = time.perf_counter()
                on_update(i, m, ts, now - t_last)
                t_last = now
        return state

    def end(self) -> None:
        """Nothing runs in the background of the DQN loop."""

    def train(self, state, num_steps: int, key, on_update: Callable | None = None):
        """`num_steps` vector steps; `on_update(i, metrics, ts, seconds)` after each."""
        state = self.begin(state, key)
        return self.updates(state, 0, num_steps, on_update)


REPLAY_MISMATCH = (
    "resume: replaying the saved NLE actions did not reproduce the saved observations "
    "(another NLE/MiniHack version, or a changed env option?)"
)


def same_obs(a: dict, b: dict) -> bool:
    """Two observation dicts hold the same arrays."""
    return all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) for k in b)


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
    from rl_aux.rewards import reward_class
    from rl_aux.typed_config import ConfigError

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
        # host numpy arrays, and None for the observations the reward modules never read
        fields: dict[str, Any] = dict(
            obs=None,
            action=roll.action,
            reward=roll.reward,
            terminated=roll.terminated,
            truncated=roll.truncated,
            next_obs=None,
        )
        tr = Transition(**fields)
        r, _ = module.reward({}, tr.replace(extras=roll.aux))
        return np.asarray(r, np.float32)

    return source, reward_fn


# ---------------------------------------------------------------------- trainer entry point
def run_host(cfg, env, agent, quiet: bool = False, resolved: dict | None = None) -> dict:
    """`rl-aux train` for host-stepped envs: seeds one after another, in the shared run loop
    (rl_aux/run_loop.py): run store, status, checkpoints and resume as on the jitted path."""
    from rl_aux.run_loop import RunLoop, RunPlan, return_summary
    from rl_aux.run_store import scrub_secrets

    if cfg.grid:
        raise ValueError("grid.* is not supported on host-stepped envs (nethack/*, minihack/*)")
    source, reward_fn = host_reward(cfg, env)
    try:
        host = HostRun(cfg, env, agent, source, reward_fn)
        plan = RunPlan(
            run_dir=cfg.run_dir,
            label=cfg.label,
            resume=bool(cfg.resume),
            total_steps=host.num_updates * host.spu * cfg.num_seeds,
            ckpt_every=cfg.checkpoint.every or max(cfg.total_timesteps // 10, 1),
            keep=cfg.checkpoint.keep,
            quiet=quiet,
            progress=cfg.logger.progress,
        )
        config = resolved if resolved is not None else scrub_secrets(cfg.to_yaml_dict())
        with RunLoop(plan, config) as loop:
            t0 = time.time()
            got = loop.restore(host.like())
            restored = None if got is None else got[1]
            start = 0 if got is None else host.resume_after(*got)
            meta = {
                "num_updates": host.num_updates,
                "updates_per_chunk": host.upc,
                "steps_per_update": host.spu,
                "setup_s": time.time() - t0,
                "host_stepped": True,
            }
            done = start * host.upc * host.spu  # approximate: the bar counts chunks x steps
            loop.start(None, meta, restored, min(done, plan.total_steps))
            try:
                loop.run(range(start, host.num_chunks), host.chunk)
            finally:
                host.end()
            loop.finish()
    finally:
        env.close()
        if source is not None and hasattr(source, "close"):
            cast(Any, source).close()  # an optional method of a source
    summary = return_summary(cfg.run_dir, cfg.label)
    if not quiet:
        for (_, s), v in summary["per_seed"].items():
            print(f"  seed {s}: return(last 10%) {v['final_return']:.3f}", file=sys.stderr)
    return summary


class HostRun:
    """The host-stepped run as chunks: seed s's updates lo..hi-1 per chunk, rows, snapshots."""

    def __init__(self, cfg, env, agent, source, reward_fn):
        self.cfg, self.env, self.agent, self.source = cfg, env, agent, source
        self.hp = agent.default_hparams()
        self.spu = agent.steps_per_update
        self.num_updates = max(cfg.total_timesteps // self.spu, 1)
        log_every = cfg.logger.log_interval or cfg.total_timesteps // 100
        self.upc = min(max(1, round(log_every / self.spu)), self.num_updates)
        self.per_seed = math.ceil(self.num_updates / self.upc)
        self.num_chunks = self.per_seed * cfg.num_seeds
        self.learns = getattr(agent, "learns", None) if agent.kind == "q" else None
        history = getattr(cfg.reward, "dqn_history", 64)
        if source is not None and agent.kind == "q":
            if cfg.reward_name == "blend":
                raise ValueError("reward=blend is wired into host PPO only, not DQN")
            agent.with_sample_reward(SampleReward(source, history))
        if agent.kind == "q":
            self.trainer = HostDQN(agent, env, source, history)
        else:
            self.trainer = HostPPO(agent, env, reward_fn, env.opts.overlap, source)
        self.seed_index = -1
        self.state = None
        self.lost0 = 0
        self.last: Any = None  # the data of the last update (its rollout, for PPO)

    def keys(self, s: int):
        return jax.random.split(jax.random.PRNGKey(self.cfg.seed + s))

    def like(self) -> dict:
        k_init, _ = self.keys(0)
        return self.trainer.like(self.agent.init(k_init, self.hp))

    def begin_seed(self, s: int) -> None:
        """Seed s from its start: fresh learner state, env reseeded."""
        self.trainer.end()
        k_init, k_train = self.keys(s)
        self.state = self.agent.init(k_init, self.hp)
        out = self.trainer.begin(self.state, k_train)
        self.state = out if self.agent.kind == "q" else self.state
        self.seed_index, self.lost0 = s, self.env.lost_episodes

    def resume_after(self, tree: dict, meta: dict) -> int:
        """Continue from a checkpoint (tree, meta); returns the first chunk to run."""
        c = int(meta["chunk"])
        if (c + 1) % self.per_seed == 0:  # that seed had finished: the next one starts fresh
            return c + 1
        self.state = tree["learner"]
        resume = {"actor": tree["actor"], "replay": meta["replay"], "update": meta["update"]}
        if self.agent.kind != "q":
            resume["behaviour"] = tree["behaviour"]
        out = self.trainer.begin(self.state, resume=resume)
        self.state = out if self.agent.kind == "q" else self.state
        self.seed_index, self.lost0 = c // self.per_seed, int(meta["lost0"])
        return c + 1

    def chunk(self, c: int):
        """Chunk c: its updates of its seed, one metric row, what a checkpoint keeps."""
        from rl_aux.run_loop import Chunk

        s, j = divmod(c, self.per_seed)
        if s != self.seed_index:
            self.begin_seed(s)
        lo, hi = j * self.upc, min((j + 1) * self.upc, self.num_updates)
        acc = WindowStats(self.env.num_envs)

        def on_update(i, m, data, dt):
            acc.add(m, data, bool(self.learns(i + 1)) if self.learns is not None else True)
            self.last = data

        if self.agent.kind == "q":  # __init__ built the trainer of the agent's kind
            trainer = cast(HostDQN, self.trainer)
            self.state = trainer.updates(self.state, lo, hi - lo, on_update)
        else:
            ppo = cast(HostPPO, self.trainer)
            self.state = ppo.updates(self.state, hi - lo, on_update, self.num_updates)
        row = acc.row(hi * self.spu, self.cfg.seed + s, self.hp["lr"])
        if self.source is not None:  # the source's counters; PPO: mean aux return too
            if self.agent.kind != "q":  # DQN pays r_aux at sampling time, not per episode
                row["charts/aux_return"] = acc.aux / acc.eps if acc.eps else math.nan
            row.update(self.source.metrics())
        row.update(acc.metric_means(self.learns is not None, self.agent))
        row["charts/lost_episodes"] = self.env.lost_episodes - self.lost0
        row["charts/worker_restarts"] = self.env.restarts
        tree, meta = self.trainer.snapshot(self.state, self.last)
        absent = frozenset()
        if self.learns is not None and not any(acc.learned):
            prefixes = self.agent.LEARN_METRIC_PREFIXES
            absent = frozenset(k for k in row if k.startswith(prefixes))
        meta = {**meta, "lost0": self.lost0, "seed_index": s}
        final = j == self.per_seed - 1
        return Chunk([row], lo * self.spu, hi * self.spu, tree, meta, absent, final)

    def end(self) -> None:
        self.trainer.end()


class WindowStats:
    """Episode statistics and learner metrics of one logging window of the host loop."""

    def __init__(self, num_envs: int):
        self.eps, self.ret, self.len, self.succ, self.aux = 0, 0.0, 0.0, 0, 0.0
        self.metrics: list[dict] = []
        self.learned: list[bool] = []
        self.aux_running = np.zeros(num_envs)  # per env, the running episode's aux return

    def add(self, m: dict, data, learned: bool) -> None:
        """One update: its metrics and its rollout (PPO) or vector step (DQN)."""
        if isinstance(data, HostRollout):
            lost, ret, length = data.lost, data.episode_return, data.episode_length
            if data.aux:
                self.add_aux(cast(np.ndarray, sum(data.aux.values())), data)
        else:
            ex = data.extras
            lost, ret, length = ex["lost"], ex["episode_return"], ex["episode_length"]
        done = np.asarray(data.terminated | data.truncated)
        e, r, ln = episode_stats(done, lost, ret, length)
        # success: a natural end with a positive final reward (MiniHack's goal)
        self.succ += int(
            (np.asarray(data.terminated) & (np.asarray(data.reward) > 0) & ~lost).sum()
        )
        self.eps, self.ret, self.len = self.eps + e, self.ret + r, self.len + ln
        self.metrics.append(m)
        self.learned.append(learned)

    def add_aux(self, r_aux: np.ndarray, data: HostRollout) -> None:
        done = data.terminated | data.truncated
        for t in range(r_aux.shape[0]):
            self.aux_running += r_aux[t]
            fin = done[t] & ~data.lost[t]
            self.aux += float(self.aux_running[fin].sum())
            self.aux_running[done[t]] = 0.0

    def row(self, step: int, seed: int, lr: float) -> dict:
        eps = self.eps
        per = lambda x: x / eps if eps else math.nan
        row = {"global_step": step, "seed": seed, "grid": 0, "hp/lr": lr}
        row["charts/episodic_return"] = per(self.ret)
        row["charts/episodic_length"] = per(self.len)
        row["charts/episodes"] = eps
        row["charts/success"] = per(self.succ)
        return row

    def metric_means(self, gated: bool, agent) -> dict:
        """Per-update learner metrics averaged over the window (DQN's losses: over the
        updates that took a gradient step)."""
        out = {}
        skip = {"episodes", "episode_return_sum", "episode_length_sum"}
        for k in self.metrics[0]:
            if k in skip:
                continue
            values = [float(x[k]) for x in self.metrics]
            name = k if "/" in k else f"charts/{k}"
            if gated and k.startswith(agent.LEARN_METRIC_PREFIXES):
                out[name] = learned_mean(values, self.learned)
            else:
                out[name] = float(np.mean(values))
        return out
