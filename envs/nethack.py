"""NLE / MiniHack tasks behind the Env contract, stepped by worker processes over shared memory.

NLE cannot be jitted: this is the host-stepped path (DESIGN.md). `NLEVecEnv` splits
`num_envs` envs over `num_workers` processes (envs/nle_worker.py). Each batch costs one byte
each way per worker; observations, rewards and episode statistics travel through one shared
memory file, so per-step IPC (what makes gymnasium's AsyncVectorEnv slow here) is gone.
- Observations are dicts of arrays (`obs_keys`), [N, ...]; `spec.obs_shape` lists the keys.
- Auto-reset: `TimeStep.obs` starts the next episode; `extras["next_obs"]` is the true
  successor; `extras["episode_return"/"episode_length"]` hold finished episodes' statistics.
- Message text for reward modules: `last_messages()` gives the decoded message of every
  env's true successor observation of the last step; `last_host_obs()` the raw arrays
  (`obs_keys` plus `host_keys`, e.g. chars or tty_chars for captions).
- Resume: every episode is seeded from its env's base seed and episode index, so
  `replay_state()` (base seeds, episode indices, each env's actions since its episode began)
  is enough for `restore_replay` to rebuild the same envs in a new process.
- A worker that dies (or hangs past `step_timeout`) is restarted with fresh seeds; its envs'
  running episodes are lost: they come back `truncated`, flagged in `extras["lost"]`, and
  counted in `lost_episodes` (not in episode statistics).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import select
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence

import numpy as np

from rl_aux.typed_config import ConfigError, from_dict, spec
from rl_aux.types import EnvSpec, TimeStep

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nle_worker.py")
DEFAULT_KEYS = {"nethack": ("glyphs", "blstats", "message"), "minihack": ("glyphs_crop", "blstats")}
NLE_KEYS = (
    "glyphs",
    "chars",
    "colors",
    "specials",
    "blstats",
    "message",
    "inv_glyphs",
    "inv_strs",
    "inv_letters",
    "inv_oclasses",
    "screen_descriptions",
    "tty_chars",
    "tty_colors",
    "tty_cursor",
)
CROP_KEYS = ("glyphs_crop", "chars_crop", "colors_crop", "specials_crop")


@dataclasses.dataclass(frozen=True)
class NetHackOptions:
    """`env.options` of nethack/* and minihack/* envs."""

    num_workers: int = spec(2, ge=1)
    obs_keys: tuple = ()  # network inputs; () = the family default (DEFAULT_KEYS)
    host_keys: tuple = ()  # extra arrays kept on the host only (e.g. chars, tty_chars)
    max_episode_steps: int = spec(0, ge=0)  # 0 = the task's own limit
    # reward of a step that takes no game time (a wall bump, a menu, PICKUP on bare floor):
    # NLE's and MiniHack's gym default -0.01; MiniHack's own agent config uses -0.001
    # (facebookresearch/minihack, minihack/agent/polybeast/config.yaml)
    penalty_step: float = spec(-0.01, le=0.0)
    step_timeout: float = spec(60.0, gt=0.0)  # s without a reply before a worker is restarted
    # us a worker polls for the next batch before sleeping (a sleeping worker wakes on a cold
    # core and steps slower: docs/results/nethack.md); 0 = always sleep
    poll_us: int = spec(2000, ge=0)
    # a second env per slot, reset ahead while the worker waits: an episode end swaps envs
    # instead of paying a reset inside the batch that every worker waits for
    # (docs/results/nethack.md)
    standby: bool = True
    # host loop: step rollout k+1 while the learner updates on k (agents/host_loop.py);
    # false = alternate (on-policy; the measured difference: docs/results/nethack.md)
    overlap: bool = True


@functools.lru_cache(maxsize=1)
def nethack_tasks() -> dict[str, str]:
    """'minihack/Room-5x5-v0' -> 'MiniHack-Room-5x5-v0', 'nethack/Score-v0' -> 'NetHackScore-v0'.

    Read from gymnasium's registry after importing nle and minihack; empty without them."""
    try:
        import gymnasium as gym
        import minihack  # noqa: F401
        import nle  # noqa: F401
    except ImportError:
        return {}
    out = {}
    for gid in gym.registry:
        if gid.startswith("MiniHack-") and "-Custom-" not in gid:
            out["minihack/" + gid.removeprefix("MiniHack-")] = gid
        elif gid.startswith("NetHack") and gid != "NetHack-v0":
            out["nethack/" + gid.removeprefix("NetHack")] = gid
    return out


def parse_options(name: str, options: dict | None) -> NetHackOptions:
    """Validate `env.options` for env `name`; ConfigError names the field and accepted values."""
    opts = from_dict(NetHackOptions, dict(options or {}), "env.options")
    family = name.partition("/")[0]
    accepted = NLE_KEYS + (CROP_KEYS if family == "minihack" else ())
    for field in ("obs_keys", "host_keys"):
        for k in getattr(opts, field):
            if k not in accepted:
                raise ConfigError(
                    f"env.options.{field} holds {k!r}; accepted: {', '.join(accepted)}"
                )
    if not opts.obs_keys:
        opts = dataclasses.replace(opts, obs_keys=DEFAULT_KEYS[family])
    return opts


class _Worker:
    def __init__(self, proc: subprocess.Popen, lo: int, hi: int):
        self.proc, self.lo, self.hi = proc, lo, hi


class NLEVecEnv:
    """`num_envs` NLE/MiniHack envs over `num_workers` processes; see the module docstring."""

    host_stepped = True  # trainers drive it from a host loop (no jit over `step`)

    def __init__(self, name: str, num_envs: int, options: dict | None = None, seed: int = 0):
        tasks = nethack_tasks()
        if name not in tasks:
            raise ValueError(f"env.name={name!r} is not a NetHack/MiniHack task")
        opts = parse_options(name, options)
        if num_envs < opts.num_workers:
            raise ValueError(
                f"num_envs={num_envs} must be >= env.options.num_workers={opts.num_workers}"
            )
        self.name, self.gym_id, self.num_envs, self.opts = name, tasks[name], num_envs, opts
        self.obs_keys = tuple(opts.obs_keys)
        self.keys = tuple(dict.fromkeys(self.obs_keys + tuple(opts.host_keys) + ("message",)))
        space, names, limit = _probe(self.gym_id, self.keys, opts.max_episode_steps)
        # (the probe's penalty does not matter: it reads shapes, action names and the limit)
        self.spaces = space
        self.action_names = names  # readable NLE action names (captions for reward modules)
        n_actions = len(names)
        self.spec = EnvSpec(
            name=name,
            obs_shape=tuple((k, space[k][0]) for k in self.obs_keys),
            obs_dtype=tuple((k, space[k][1]) for k in self.obs_keys),
            num_actions=n_actions,
            max_episode_steps=limit,
        )
        self._layout, size = self._make_layout()
        path = os.path.join(_shm_dir(), f"rl-aux-nle-{os.getpid()}-{uuid.uuid4().hex}")
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.ftruncate(self._fd, size)
        self._path = path
        if os.path.isdir(f"/proc/{os.getpid()}/fd"):  # Linux: no file left behind, ever
            os.unlink(path)  # workers (also respawned ones) open it through our fd
            self._path = f"/proc/{os.getpid()}/fd/{self._fd}"
        from envs.nle_worker import buffers

        self._buf = buffers(self._path, self._layout)
        self._seed_rng = np.random.default_rng(seed)
        self._buf["seed"][:] = self._seed_rng.integers(0, 2**31 - 1, num_envs)
        self.lost_episodes = 0
        self.restarts = 0
        self._pending = False
        self._lost = np.zeros(num_envs, bool)
        self._host_next: dict[str, np.ndarray] | None = None
        self._host_cur: dict[str, np.ndarray] | None = None
        self._history: list[list[int]] = [[] for _ in range(num_envs)]  # actions this episode
        bounds = np.linspace(0, num_envs, opts.num_workers + 1).astype(int)
        self._workers = [
            self._spawn(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ]
        for w in self._workers:
            self._wait(w, ready=True)

    # ------------------------------------------------------------------ shared memory + workers
    def _make_layout(self) -> tuple[dict, int]:
        n = self.num_envs
        arrays = {
            "action": ((n,), "int64"),
            "seed": ((n,), "int64"),
            "episode": ((n,), "int64"),  # each env's episode index (the worker writes it)
            "reward": ((n,), "float32"),
            "terminated": ((n,), "bool"),
            "truncated": ((n,), "bool"),
            "episode_return": ((n,), "float32"),
            "episode_length": ((n,), "int32"),
        }
        for k in self.keys:
            shape, dtype = self.spaces[k]
            arrays[f"obs/{k}"] = ((n, *shape), dtype)
            arrays[f"final/{k}"] = ((n, *shape), dtype)
        layout, off = {}, 0
        for name, (shape, dtype) in arrays.items():
            layout[name] = (off, list(shape), dtype)
            off += -(-int(np.prod(shape)) * np.dtype(dtype).itemsize // 64) * 64
        return layout, off

    def _spawn(self, lo: int, hi: int) -> _Worker:
        cfg = {
            "path": self._path,
            "layout": self._layout,
            "lo": lo,
            "hi": hi,
            "keys": list(self.keys),
            "gym_id": self.gym_id,
            "max_episode_steps": self.opts.max_episode_steps,
            "penalty_step": self.opts.penalty_step,
            "poll_us": self.opts.poll_us,
            "standby": self.opts.standby,
        }
        proc = subprocess.Popen(
            [sys.executable, "-P", WORKER, json.dumps(cfg)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        return _Worker(proc, lo, hi)

    def _wait(self, w: _Worker, ready: bool = False) -> bool:
        """Wait for one worker's reply. False if it died or hung (then it is already restarted)."""
        timeout = self.opts.step_timeout + (60.0 if ready else 0.0)
        deadline = time.monotonic() + timeout
        fd = w.proc.stdout.fileno()
        while True:
            left = deadline - time.monotonic()
            r, _, _ = select.select([fd], [], [], max(min(left, 1.0), 0.0))
            if r:
                if os.read(fd, 1) == b"k":
                    return True
                break  # EOF: the worker died
            if w.proc.poll() is not None or left <= 0:
                break
        if ready:
            err = f"NLE worker for envs {w.lo}..{w.hi - 1} failed to start ({self.gym_id})"
            raise RuntimeError(err)
        self._restart(w)
        return False

    def _restart(self, w: _Worker) -> None:
        """Replace a dead/hung worker; its envs restart with fresh seeds, episodes are lost."""
        if w.proc.poll() is None:
            w.proc.kill()
        w.proc.wait()
        for f in (w.proc.stdin, w.proc.stdout):
            try:
                f.close()
            except OSError:  # a command buffered for the dead worker cannot be flushed
                pass
        self._buf["seed"][w.lo : w.hi] = self._seed_rng.integers(0, 2**31 - 1, w.hi - w.lo)
        fresh = self._spawn(w.lo, w.hi)
        w.proc = fresh.proc
        self._wait(w, ready=True)  # the new worker resets its envs into obs/
        self.restarts += 1
        self.lost_episodes += w.hi - w.lo
        sl = slice(w.lo, w.hi)
        self._buf["reward"][sl] = 0.0
        self._buf["terminated"][sl] = False
        self._buf["truncated"][sl] = True
        for k in self.keys:  # approximate successor for the bootstrap: the fresh observation
            self._buf[f"final/{k}"][sl] = self._buf[f"obs/{k}"][sl]
        self._lost[sl] = True
        for i in range(w.lo, w.hi):  # the fresh worker starts episode 0 of new seeds
            self._history[i] = []

    def _send(self, cmd: bytes) -> None:
        for w in self._workers:
            try:
                w.proc.stdin.write(cmd)
                w.proc.stdin.flush()
            except (OSError, ValueError):
                pass  # dead (or its pipe already closed): _wait notices and restarts it

    def worker_pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers]

    # ------------------------------------------------------------------ Env contract
    def reset(self, key=None) -> tuple[None, TimeStep]:
        """Reseed every env (from `key` if given) and start new episodes."""
        if key is not None:
            import jax

            seeds = jax.random.randint(key, (self.num_envs,), 0, 2**31 - 1)
            self._buf["seed"][:] = np.asarray(seeds)
        self._send(b"r")
        for w in self._workers:
            self._wait(w)
        n = self.num_envs
        obs = self._obs("obs/")
        self._host_next = {k: self._buf[f"obs/{k}"].copy() for k in self.keys}
        self._host_cur = self._host_next
        self._lost[:] = False
        self._history = [[] for _ in range(n)]
        zeros = np.zeros(n, np.float32)
        extras = {
            "next_obs": obs,
            "episode_return": zeros,
            "episode_length": np.zeros(n, np.int32),
            "lost": np.zeros(n, bool),
        }
        return None, TimeStep(obs, zeros, np.zeros(n, bool), np.zeros(n, bool), extras)

    def step_async(self, action) -> None:
        """Start stepping every env with `action` [N]; `step_wait` collects the TimeStep."""
        action = np.asarray(action)
        if action.shape != (self.num_envs,):
            raise ValueError(f"action shape {action.shape} != ({self.num_envs},)")
        self._buf["action"][:] = action
        for i, a in enumerate(action.tolist()):
            self._history[i].append(a)
        self._lost[:] = False
        self._send(b"s")
        self._pending = True

    def step_wait(self) -> TimeStep:
        for w in self._workers:
            self._wait(w)
        self._pending = False
        b = self._buf
        done = b["terminated"] | b["truncated"]
        obs = self._obs("obs/")
        nxt = {k: v.copy() for k, v in obs.items()}
        host = {k: b[f"obs/{k}"].copy() for k in self.keys}
        self._host_cur = host  # arrays of `obs` (the reset observation where an env ended)
        if done.any():
            idx = np.flatnonzero(done)
            for i in idx.tolist():
                self._history[i] = []
            for k in self.obs_keys:
                nxt[k][idx] = b[f"final/{k}"][idx]
            host = {k: v.copy() for k, v in host.items()}
            for k in self.keys:
                host[k][idx] = b[f"final/{k}"][idx]
        self._host_next = host
        extras = {
            "next_obs": nxt,
            "episode_return": b["episode_return"].copy(),
            "episode_length": b["episode_length"].copy(),
            "lost": self._lost.copy(),
        }
        return TimeStep(
            obs, b["reward"].copy(), b["terminated"].copy(), b["truncated"].copy(), extras
        )

    def replay_state(self) -> dict:
        """JSON of what `restore_replay` needs to rebuild every env as it is now."""
        return {
            "seeds": self._buf["seed"].tolist(),
            "episodes": self._buf["episode"].tolist(),
            "actions": [list(h) for h in self._history],
            "lost_episodes": self.lost_episodes,
            "restarts": self.restarts,
            "seed_rng": self._seed_rng.bit_generator.state,
        }

    def restore_replay(self, saved: dict) -> dict[str, np.ndarray]:
        """Rebuild the envs of `replay_state()`: reset each to its saved episode, replay its
        actions (one batch per step of the longest history); returns the observations."""
        self._buf["seed"][:] = saved["seeds"]
        self._buf["episode"][:] = saved["episodes"]
        self._send(b"e")
        for w in self._workers:
            self._wait(w)
        history = [list(h) for h in saved["actions"]]
        for t in range(max((len(h) for h in history), default=0)):
            self._buf["action"][:] = [h[t] if t < len(h) else -1 for h in history]
            self._send(b"p")
            for w in self._workers:
                self._wait(w)
        self._history = history
        self.lost_episodes, self.restarts = saved["lost_episodes"], saved["restarts"]
        self._seed_rng.bit_generator.state = saved["seed_rng"]
        self._host_cur = {k: self._buf[f"obs/{k}"].copy() for k in self.keys}
        self._host_next = self._host_cur
        self._lost[:] = False
        return self._obs("obs/")

    def step(self, state, action, key=None) -> tuple[None, TimeStep]:
        self.step_async(action)
        return None, self.step_wait()

    def _obs(self, prefix: str) -> dict[str, np.ndarray]:
        return {k: self._buf[f"{prefix}{k}"].copy() for k in self.obs_keys}

    # ------------------------------------------------------------------ host-side text
    def last_host_obs(self) -> dict[str, np.ndarray]:
        """Arrays (obs_keys + host_keys + message) of each env's true successor of the last step."""
        return self._host_next

    def current_host_obs(self) -> dict[str, np.ndarray]:
        """The same arrays for the observation the next step starts from (after auto-reset)."""
        return self._host_cur

    def last_messages(self) -> list[str]:
        """Decoded message line of each env's true successor observation of the last step."""
        return decode_messages(self._host_next["message"])

    def close(self) -> None:
        if getattr(self, "_workers", None) is None:
            return
        self._send(b"c")
        for w in self._workers:
            try:
                w.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()
            for f in (w.proc.stdin, w.proc.stdout):
                f.close()
        self._workers = None
        self._buf = None
        os.close(self._fd)
        if not self._path.startswith("/proc/") and os.path.exists(self._path):
            os.unlink(self._path)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def decode_messages(msg: np.ndarray) -> list[str]:
    """[N, 256] uint8 NUL-padded message lines -> N strings."""
    return [bytes(m).split(b"\0", 1)[0].decode("latin-1").strip() for m in np.asarray(msg)]


def action_names(actions: Sequence) -> list[str]:
    """Readable names of an NLE action tuple (e.g. CompassDirection.N -> 'move north')."""
    compass = {"N": "north", "E": "east", "S": "south", "W": "west"}
    compass |= {"NE": "northeast", "SE": "southeast", "SW": "southwest", "NW": "northwest"}
    out = []
    for a in actions:
        name = getattr(a, "name", str(a))
        out.append(f"move {compass[name]}" if name in compass else name.lower().replace("_", " "))
    return out


@functools.cache
def _probe(gym_id: str, keys: tuple, max_episode_steps: int) -> tuple[dict, list[str], int]:
    """Observation shapes/dtypes, action names and step limit of a task (one throwaway env)."""
    from envs.nle_worker import make_task

    env = make_task(gym_id, list(keys), max_episode_steps)
    try:
        space = {
            k: (tuple(env.observation_space[k].shape), env.observation_space[k].dtype.name)
            for k in keys
        }
        names = action_names(env.actions)
        if len(names) != int(env.action_space.n):
            raise RuntimeError(f"{gym_id}: {len(names)} action names for {env.action_space.n}")
        return space, names, int(env._max_episode_steps)
    finally:
        env.close()


def _shm_dir() -> str:
    return "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()


def single_env(name: str, options: dict | None = None):
    """One in-process env of task `name` (same keys/limits as NLEVecEnv): tests and benches."""
    from envs.nle_worker import make_task

    opts = parse_options(name, options)
    keys = tuple(dict.fromkeys(tuple(opts.obs_keys) + tuple(opts.host_keys) + ("message",)))
    return make_task(nethack_tasks()[name], list(keys), opts.max_episode_steps, opts.penalty_step)
