"""Atari through envpool's XLA interface: the second backend (`env.options.backend=envpool`).

Same contract, protocol flags, reward handling and seed batching as envs/atari.py (this class
reuses its `reset`/`step`, which clip rewards for learning only, keep the unclipped score in
`extras["score"]` and the episode statistics, and add life-loss terminals). Only the host calls
differ. envpool runs in async mode with batch_size 1: a step sends one action per env and
receives one result per env (rows are put back in env order by `env_id`), and envs that
finished are sent one more (ignored) action, which makes envpool auto-reset them, so `ts.obs`
is the new episode's first observation in the same step, as with the ale backend.

Protocol mapping (envpool 1.2.5 arguments): sticky_actions -> repeat_action_probability,
frameskip -> frame_skip (max-pool of the last two frames is built in), max_frames ->
max_episode_steps = max_frames // frameskip, size -> img_height/img_width, gray_scale,
stack -> stack_num, episodic_life=False and reward_clip=False in envpool (both done here).
Differences from the ale backend, inherent to envpool:
- envpool fills the first observation's stack with copies of the first frame (ale-py pads
  with zeros); later stacks are identical in construction.
- envpool always runs U{1..noop_max} no-op frames after a reset (minus one with FIRE reset);
  noop_max=0 without fire_reset therefore maps to envpool noop_max=1: one no-op frame.
- envpool seeds env i with `seed + i` when it is built and never reseeds, so the key given to
  `reset` does not reach the emulators; `seed` comes from the run's seed (registry.make_env).
- envpool bundles its own ALE build and ROMs (envpool_assets), not ale-py's.
- envpool can neither save nor restore its emulators, and never reseeds them, so a resumed
  run continues on freshly built ones: not the uninterrupted run (`restore_host_state` warns).
"""

from __future__ import annotations

import difflib
import os
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback

from envs.atari import AtariConfig, AtariVecEnv

INSTALL_HINT = "pip install 'rl-aux[atari]' (it installs envpool >= 1.2.5)"


def envpool_games() -> list[str]:
    """Atari games envpool registers ('Breakout', ...); ImportError with a hint if missing."""
    try:
        import envpool
    except ImportError as e:
        raise ImportError(f"env.options.backend='envpool' needs envpool: {INSTALL_HINT}") from e
    return sorted(n[: -len("-v5")] for n in envpool.list_all_envs() if n.endswith("-v5"))


def check_envpool_game(game: str) -> str:
    """envpool's task id of `game` ('Breakout-v5'), or ValueError listing close matches."""
    games = envpool_games()
    if game in games:
        return f"{game}-v5"
    close = difflib.get_close_matches(game, games, n=5, cutoff=0.5)
    hint = f" Close matches: {', '.join(f'atari/{c}' for c in close)}." if close else ""
    raise ValueError(
        f"env.name='atari/{game}' is not an envpool Atari game (env.options.backend=envpool)."
        f"{hint} envpool has {len(games)} games; env.options.backend=ale has all ale-py ROMs."
    )


class EnvpoolAtariVecEnv(AtariVecEnv):
    """`num_envs` Atari emulators stepped by envpool's C++ pool from inside XLA."""

    def __init__(self, game: str, num_envs: int, cfg: AtariConfig | None = None, seed: int = 0):
        cfg = cfg or AtariConfig()
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.task_id = check_envpool_game(game)
        self.game, self.cfg, self.num_envs, self.seed = game, cfg, num_envs, seed
        self._instances: dict[int, tuple] = {}
        env = self._instance(1)[0]
        self._finish_init(int(env.action_space.n))

    @property
    def history_capacity(self) -> int:
        """No action history: envpool seeds once per pool, so replaying one could not help."""
        return 0

    def restore_host_state(self, env_state, obs=None) -> None:
        """Warn that the emulators cannot be restored (the resumed run is not the same run)."""
        del env_state, obs
        print(
            "warning: env.options.backend=envpool cannot save or restore its emulators, so this "
            "resumed run continues on fresh ones and will not equal an uninterrupted run "
            "(env.options.backend=ale resumes exactly)",
            file=sys.stderr,
            flush=True,
        )

    def _instance(self, copies: int):
        """envpool of copies * num_envs emulators, its handle and raw XLA recv/send (cached)."""
        if copies not in self._instances:
            import envpool
            from envpool.python.xla_template import make_xla

            c, n = self.cfg, copies * self.num_envs
            env = envpool.make(
                self.task_id,
                env_type="gymnasium",
                num_envs=n,
                batch_size=1,
                num_threads=c.num_threads or min(n, os.cpu_count() or 1),
                seed=self.seed,
                max_episode_steps=c.max_frames // c.frameskip,
                repeat_action_probability=c.sticky_actions,
                frame_skip=c.frameskip,
                img_height=c.size,
                img_width=c.size,
                gray_scale=True,
                stack_num=c.stack,
                noop_max=max(c.noop_max, 1),  # envpool crashes on 0; see the module doc
                use_fire_reset=c.fire_reset,
                full_action_space=c.full_action_space,
                episodic_life=False,
                reward_clip=False,
            )
            handle, recv, send = make_xla(env)
            keys = {k: i for i, k in enumerate(env._state_keys)}
            self._instances[copies] = (env, np.asarray(handle).copy(), recv, send, keys)
        return self._instances[copies]

    def _send(self, copies: int, h, env_id, action):
        """Queue one env's action (int32 scalars)."""
        send = self._instance(copies)[3]
        i = jnp.reshape(env_id, (1,)).astype(jnp.int32)
        return send(h, i, i, jnp.reshape(action, (1,)).astype(jnp.int32))

    def _recv(self, copies: int, count, h, bufs):
        """Receive `count` single-env results into bufs (obs, reward, term, trunc, lives)."""
        _, _, recv, _, k = self._instance(copies)

        def body(_, c):
            h, (obs, rew, term, trunc, lives) = c
            out = recv(h)
            s = out[1:]
            i = s[k["info:env_id"]][0]
            new = (
                obs.at[i].set(s[k["obs"]][0]),
                rew.at[i].set(s[k["reward"]][0]),
                term.at[i].set(s[k["info:terminated"]][0].astype(bool)),
                trunc.at[i].set(s[k["trunc"]][0]),
                lives.at[i].set(s[k["info:lives"]][0]),
            )
            return out[0], new

        return jax.lax.fori_loop(0, count, body, (h, bufs))

    def _empty(self, copies: int):
        n, c = copies * self.num_envs, self.cfg
        return (
            jnp.zeros((n, c.stack, c.size, c.size), jnp.uint8),
            jnp.zeros(n, jnp.float32),
            jnp.zeros(n, bool),
            jnp.zeros(n, bool),
            jnp.zeros(n, jnp.int32),
        )

    def _reset_impl(self, copies: int, handle: chex.Array, seeds: chex.Array):
        """Host reset of every env (an io_callback, ordered by the handle), then receive."""
        del seeds  # envpool seeds its emulators once, at construction
        env = self._instance(copies)[0]
        n = copies * self.num_envs

        def host_reset(h):
            env._reset(np.arange(n, dtype=np.int32))
            return np.asarray(h)

        h = self._live_handle(copies, handle)
        h = io_callback(host_reset, jax.ShapeDtypeStruct((8,), jnp.uint8), h)
        h, (obs, _, _, _, lives) = self._recv(copies, n, h, self._empty(copies))
        return h, obs, lives

    def _step_impl(self, copies: int, handle: chex.Array, inp: chex.Array):
        """One agent step of every env; finished envs are reset in the same step."""
        actions = inp[:, 0]
        n = copies * self.num_envs
        h = self._live_handle(copies, handle)
        h = jax.lax.fori_loop(0, n, lambda i, h: self._send(copies, h, i, actions[i]), h)
        h, (obs, reward, term, trunc, lives) = self._recv(copies, n, h, self._empty(copies))
        done = jnp.logical_or(term, trunc)
        # envpool resets a finished env on its next send (ignoring the action): send one to
        # each finished env now and receive their first observations.
        order = jnp.argsort(jnp.logical_not(done), stable=True).astype(jnp.int32)
        k = done.sum()
        h = jax.lax.fori_loop(0, k, lambda j, h: self._send(copies, h, order[j], 0), h)
        bufs = (obs, reward, term, trunc, lives)
        h, (first_obs, _, _, _, next_lives) = self._recv(copies, k, h, bufs)
        return h, obs, first_obs, reward, term, trunc, lives, next_lives
