"""Worker process of `NLEVecEnv`: steps a slice of NLE/MiniHack envs, writes into shared memory.

Run as a script (`python -P envs/nle_worker.py '<json>'`), not as a package module, so a worker
imports only numpy, gymnasium, nle and minihack (importing the `envs` package would pull in jax).
Protocol, one byte per batch each way: the host writes actions (or seeds) into the shared
buffers, sends b"s" (step) or b"r" (reseed + reset) on stdin; the worker steps every env of
its slice, auto-resets finished ones, writes results and replies b"k" on stdout. Resume
(`NLEVecEnv.restore_replay`): b"e" resets every env to the episode index in the `episode`
buffer (seeded as that episode always is), then b"p" steps only the envs whose action is >= 0.
"""

from __future__ import annotations

import json
import mmap
import os
import select
import sys
import time

import numpy as np

ABORTED = -1  # nle StepStatus.ABORTED: the task's step limit (a truncation, not a game end)


def buffers(path: str, layout: dict) -> dict[str, np.ndarray]:
    """name -> ndarray view of the shared file (same layout on host and workers)."""
    with open(path, "r+b") as f:
        mm = mmap.mmap(f.fileno(), 0)
    out = {}  # plain ndarrays over the mapping (np.memmap's per-index overhead is per step)
    for name, (offset, shape, dtype) in layout.items():
        count = int(np.prod(shape))
        out[name] = np.frombuffer(mm, dtype, count, offset).reshape(shape)
    return out


def episode_seed(base: int, episode: int) -> int:
    """NLE seed of an env's `episode`-th game: NLE draws fresh seeds for each new game unless
    told, so every reset is seeded (runs are reproducible from the env's base seed)."""
    return (int(base) + 1_000_003 * int(episode)) % (2**31 - 1)


def seeded_reset(env, base: int, episode: int) -> dict:
    s = episode_seed(base, episode)
    env.seed(core=s, disp=s, reseed=False)
    return env.reset()[0]


def make_task(gym_id: str, keys: list[str], max_episode_steps: int, penalty_step: float = -0.01):
    """One unwrapped NLE/MiniHack env (no gymnasium checker wrappers: they cost per step).

    `penalty_step`: NLE's reward for a step that takes no game time (NLE's default -0.01)."""
    import gymnasium as gym
    import minihack  # noqa: F401  (registers MiniHack-* ids)
    import nle  # noqa: F401  (registers NetHack* ids)

    kwargs = {"observation_keys": tuple(keys), "penalty_step": float(penalty_step)}
    if max_episode_steps:
        kwargs["max_episode_steps"] = max_episode_steps
    return gym.make(gym_id, **kwargs).unwrapped


def next_command(cmds, poll_s: float) -> tuple[bytes, float]:
    """The host's next one-byte command and how long it took to come.

    Polls (yielding the core to anything runnable) for up to `poll_s` before blocking: a worker
    that sleeps between batches wakes on a cold core, where its steps are slower, and the
    wake-up itself takes time (docs/results/nethack.md). The caller passes 0 after a wait longer
    than the budget: then the host is busy elsewhere (a learner-bound run) and polling would
    only take CPU from it."""
    t0 = time.perf_counter()
    deadline = t0 + poll_s
    while not select.select([cmds], [], [], 0)[0] and time.perf_counter() < deadline:
        os.sched_yield()
    cmd = cmds.read(1)
    return cmd, time.perf_counter() - t0


class Slots:
    """This worker's slice [lo, hi) of the envs: steps them, auto-resets, writes the buffers.

    With `standby`, each slot has a second env, reset ahead for the slot's next episode while
    the worker would otherwise wait, so an episode end swaps envs instead of paying a reset
    inside the batch that every other worker waits for (docs/results/nethack.md)."""

    def __init__(self, cfg: dict, buf: dict[str, np.ndarray]):
        self.buf, self.lo, self.hi, self.keys = buf, cfg["lo"], cfg["hi"], cfg["keys"]
        n = self.hi - self.lo

        def make():
            return make_task(cfg["gym_id"], self.keys, cfg["max_episode_steps"],
                             cfg["penalty_step"])  # fmt: skip

        self.envs = [make() for _ in range(n)]
        self.spares = [make() for _ in range(n)] if cfg.get("standby") else []
        self.spare_obs: list[dict | None] = [None] * n  # a ready spare's first observation
        self.spare_episode = np.full(n, -1, np.int64)  # the episode index it was reset for
        self.todo: list[int] = []  # slots whose spare still needs its reset
        self.ret = np.zeros(n, np.float64)
        self.length = np.zeros(n, np.int64)
        self.episode = np.zeros(n, np.int64)

    def write(self, i: int, obs: dict, prefix: str) -> None:
        for k in self.keys:
            self.buf[f"{prefix}{k}"][i] = obs[k]

    def ready_spare(self, j: int, e: int) -> None:
        obs = seeded_reset(self.spares[j], self.buf["seed"][self.lo + j], e)
        self.spare_obs[j] = {k: np.array(obs[k]) for k in self.keys}  # NLE reuses its arrays
        self.spare_episode[j] = e

    def ready_next_spare(self) -> None:
        j = self.todo.pop(0)
        self.ready_spare(j, self.episode[j] + 1)

    def next_episode(self, j: int) -> dict:
        """First observation of slot j's episode `episode[j]` (just incremented)."""
        if not self.spares:
            return seeded_reset(self.envs[j], self.buf["seed"][self.lo + j], self.episode[j])
        if self.spare_episode[j] != self.episode[j]:  # not ready in time: reset it now
            if j in self.todo:
                self.todo.remove(j)
            self.ready_spare(j, self.episode[j])
        obs = self.spare_obs[j]
        assert obs is not None
        self.envs[j], self.spares[j] = self.spares[j], self.envs[j]
        self.spare_obs[j], self.spare_episode[j] = None, -1
        self.todo.append(j)
        return obs

    def reset_all(self, to: np.ndarray | None = None) -> None:
        """Every env to episode 0 (or to the episode indices `to`), seeded as always."""
        self.episode[:] = 0 if to is None else to
        self.buf["episode"][self.lo : self.hi] = self.episode
        for j, env in enumerate(self.envs):
            first = seeded_reset(env, self.buf["seed"][self.lo + j], self.episode[j])
            self.write(self.lo + j, first, "obs/")
        self.todo[:] = range(len(self.spares))
        self.spare_obs[:] = [None] * len(self.spare_obs)  # readied under the old seeds: stale
        self.spare_episode[:] = -1
        self.ret[:] = 0.0
        self.length[:] = 0

    def step_all(self, replay: bool = False) -> None:
        """Step every env (`replay`: only those whose action is >= 0, the rest are done)."""
        buf, lo = self.buf, self.lo
        actions = buf["action"][lo : self.hi].copy()
        for j, env in enumerate(self.envs):
            i = lo + j
            if replay and actions[j] < 0:  # replay: this env's history is done
                continue
            obs, r, term, trunc, info = env.step(int(actions[j]))
            trunc = bool(trunc) or int(info.get("end_status", 0)) == ABORTED
            self.ret[j] += r
            self.length[j] += 1
            buf["reward"][i] = r
            buf["terminated"][i] = bool(term) and not trunc
            buf["truncated"][i] = trunc
            buf["episode_return"][i] = self.ret[j]
            buf["episode_length"][i] = self.length[j]
            if term or trunc:
                self.write(i, obs, "final/")
                self.episode[j] += 1
                buf["episode"][i] = self.episode[j]
                obs = self.next_episode(j)
                self.ret[j] = 0.0
                self.length[j] = 0
            self.write(i, obs, "obs/")

    def close(self) -> None:
        for env in self.envs + self.spares:
            env.close()


def main() -> None:
    cfg = json.loads(sys.argv[1])
    reply = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the reply channel
    cmds = os.fdopen(0, "rb", buffering=0)
    buf = buffers(cfg["path"], {k: tuple(v) for k, v in cfg["layout"].items()})
    slots = Slots(cfg, buf)
    slots.reset_all()
    reply.write(b"k")
    poll_s, waited = cfg.get("poll_us", 0) * 1e-6, 0.0
    while True:
        while slots.todo and not select.select([cmds], [], [], 0)[0]:  # idle: ready a spare
            slots.ready_next_spare()
        cmd, waited = next_command(cmds, poll_s if waited <= poll_s else 0.0)
        if cmd in (b"", b"c"):
            break
        if cmd == b"r":
            slots.reset_all()
        elif cmd == b"e":
            slots.reset_all(buf["episode"][slots.lo : slots.hi].copy())
        elif cmd in (b"s", b"p"):
            slots.step_all(replay=cmd == b"p")
        reply.write(b"k")
    slots.close()


if __name__ == "__main__":
    main()
