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


def main() -> None:
    cfg = json.loads(sys.argv[1])
    reply = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the reply channel
    cmds = os.fdopen(0, "rb", buffering=0)
    buf = buffers(cfg["path"], {k: tuple(v) for k, v in cfg["layout"].items()})
    lo, hi, keys = cfg["lo"], cfg["hi"], cfg["keys"]

    def make():
        return make_task(cfg["gym_id"], keys, cfg["max_episode_steps"], cfg["penalty_step"])

    envs = [make() for _ in range(lo, hi)]
    # standby: a second env per slot, reset ahead for the slot's next episode while the worker
    # would otherwise wait, so an episode end swaps envs instead of paying a reset inside the
    # batch that every other worker waits for (docs/results/nethack.md)
    spares = [make() for _ in range(lo, hi)] if cfg.get("standby") else []
    spare_obs: list[dict | None] = [None] * (hi - lo)  # a ready spare's first observation
    spare_episode = np.full(hi - lo, -1, np.int64)  # the episode index it was reset for
    todo: list[int] = []  # slots whose spare still needs its reset
    ret = np.zeros(hi - lo, np.float64)
    length = np.zeros(hi - lo, np.int64)
    episode = np.zeros(hi - lo, np.int64)

    def write(i: int, obs: dict, prefix: str) -> None:
        for k in keys:
            buf[f"{prefix}{k}"][i] = obs[k]

    def ready_spare(j: int, e: int) -> None:
        obs = seeded_reset(spares[j], buf["seed"][lo + j], e)
        spare_obs[j] = {k: np.array(obs[k]) for k in keys}  # NLE reuses its arrays
        spare_episode[j] = e

    def next_episode(j: int) -> dict:
        """First observation of slot j's episode `episode[j]` (just incremented)."""
        if not spares:
            return seeded_reset(envs[j], buf["seed"][lo + j], episode[j])
        if spare_episode[j] != episode[j]:  # not ready in time: reset it now
            if j in todo:
                todo.remove(j)
            ready_spare(j, episode[j])
        obs = spare_obs[j]
        envs[j], spares[j] = spares[j], envs[j]
        spare_obs[j], spare_episode[j] = None, -1
        todo.append(j)
        return obs

    def reset_all(to: np.ndarray | None = None) -> None:
        episode[:] = 0 if to is None else to
        buf["episode"][lo:hi] = episode
        for j, env in enumerate(envs):
            write(lo + j, seeded_reset(env, buf["seed"][lo + j], episode[j]), "obs/")
        todo[:] = range(len(spares))
        spare_obs[:] = [None] * len(spare_obs)  # spares readied under the old seeds are stale
        spare_episode[:] = -1
        ret[:] = 0.0
        length[:] = 0

    reset_all()
    reply.write(b"k")
    poll_s, waited = cfg.get("poll_us", 0) * 1e-6, 0.0
    while True:
        while todo and not select.select([cmds], [], [], 0)[0]:  # idle: ready a spare
            j = todo.pop(0)
            ready_spare(j, episode[j] + 1)
        cmd, waited = next_command(cmds, poll_s if waited <= poll_s else 0.0)
        if cmd in (b"", b"c"):
            break
        if cmd == b"r":
            reset_all()
        elif cmd == b"e":
            reset_all(buf["episode"][lo:hi].copy())
        elif cmd in (b"s", b"p"):
            actions = buf["action"][lo:hi].copy()
            for j, env in enumerate(envs):
                i = lo + j
                if cmd == b"p" and actions[j] < 0:  # replay: this env's history is done
                    continue
                obs, r, term, trunc, info = env.step(int(actions[j]))
                trunc = bool(trunc) or int(info.get("end_status", 0)) == ABORTED
                ret[j] += r
                length[j] += 1
                buf["reward"][i] = r
                buf["terminated"][i] = bool(term) and not trunc
                buf["truncated"][i] = trunc
                buf["episode_return"][i] = ret[j]
                buf["episode_length"][i] = length[j]
                if term or trunc:
                    write(i, obs, "final/")
                    episode[j] += 1
                    buf["episode"][i] = episode[j]
                    obs = next_episode(j)
                    ret[j] = 0.0
                    length[j] = 0
                write(i, obs, "obs/")
        reply.write(b"k")
    for env in envs + spares:
        env.close()


if __name__ == "__main__":
    main()
