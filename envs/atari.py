"""Atari 2600 through ale-py's vector env and its XLA interface, behind the VecEnv contract.

`AtariVecEnv.step` is a pure JAX function: ale-py's C++ vector env is called through XLA FFI
custom calls (`AtariVectorEnv.xla()`), so rollouts run inside the same jitted `lax.scan` as
the JAX-native envs. The defaults are the protocol of Machado et al. (2018, JAIR, "Revisiting
the ALE", sec. 5): sticky actions (p = 0.25), frame-skip 4 with max-pooling of the last two
frames, 84x84 grayscale, 4-frame stack, episodes capped at 108k frames, no life-loss terminal,
no no-op starts, full or minimal action set by flag.

Rewards: `TimeStep.reward` is the learning reward (clipped to its sign when `clip_rewards`);
`extras["score"]` is the unclipped game reward, and the episode statistics
(`extras["episode_return"]`) always sum the unclipped score.

Seeds: the emulators are host state. Under `vmap` over seeds (rl_aux/vectorize.py) a
`custom_vmap` rule steps one ale-py vector env holding seeds x num_envs emulators (created on
first use, one per seed-count), so S vmapped seeds run as one batch of S*N envs in one call.

Checkpoints: ale-py's vector env cannot clone or restore its emulators (0.12 exposes no state
calls on `ALEVectorInterface`), but a seeded reset re-creates an emulator completely (ROM,
ALE and no-op RNGs, frame stack, max-pool buffers, counters), so an emulator is a function of
its last reset seed and the actions since. `AtariState` carries both, so they are saved with
the JAX state, and `restore_host_state` rebuilds the emulators of a restored run by replaying.
"""

from __future__ import annotations

import dataclasses
import difflib

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rl_aux.typed_config import from_dict, spec
from rl_aux.types import EnvSpec, PRNGKey, TimeStep

INSTALL_HINT = "pip install 'rl-aux[atari]' (it installs ale-py >= 0.12 with its ROMs)"


@dataclasses.dataclass(frozen=True)
class AtariConfig:
    """The evaluation protocol; defaults follow Machado et al. (2018)."""

    sticky_actions: float = spec(0.25, ge=0.0, le=1.0)  # repeat_action_probability
    frameskip: int = spec(4, ge=1)  # max-pooled over the last two frames
    max_frames: int = spec(108_000, ge=1)  # episode cap in emulator frames (27k agent steps)
    full_action_space: bool = False  # minimal action set by default
    episodic_life: bool = False  # life loss -> terminated (the game goes on)
    clip_rewards: bool = True  # learning reward = sign(score); reported returns stay unclipped
    noop_max: int = spec(0, ge=0)  # Machado et al. use sticky actions, not no-op starts
    fire_reset: bool = False  # press FIRE after reset in games that need it
    size: int = spec(84, ge=8)
    stack: int = spec(4, ge=1)
    num_threads: int = spec(0, ge=0)  # emulator threads (0: the backend picks)
    backend: str = spec("ale", choices=("ale", "envpool"))  # envs/atari_envpool.py for envpool


def atari_config(options: dict | None) -> AtariConfig:
    """`env.options` -> AtariConfig; a bad key or value raises ConfigError naming it."""
    return from_dict(AtariConfig, dict(options or {}), "env.options")


def ale_games() -> dict[str, str]:
    """'Breakout' -> 'breakout' for every ROM ale-py ships; raises ImportError with a hint."""
    try:
        from ale_py import roms
    except ImportError as e:
        raise ImportError(f"Atari envs need ale-py: {INSTALL_HINT}") from e
    return {_camel(r): r for r in sorted(roms.get_all_rom_ids())}


def _camel(rom_id: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in rom_id.split("_"))


def atari_available() -> bool:
    try:
        import ale_py  # noqa: F401
    except ImportError:
        return False
    return True


def check_game(game: str) -> str:
    """The ROM id of `game` ('Breakout'), or ValueError listing close matches."""
    games = ale_games()
    if game in games:
        return games[game]
    close = difflib.get_close_matches(game, list(games), n=5, cutoff=0.5)
    lower = {g.lower(): g for g in games}
    if game.lower().replace("_", "") in lower:
        close = [lower[game.lower().replace("_", "")], *close]
    hint = f" Close matches: {', '.join(f'atari/{c}' for c in close)}." if close else ""
    raise ValueError(
        f"env.name='atari/{game}' is not an ALE game.{hint} "
        f"Accepted: atari/<Game> for the {len(games)} ROMs ale-py ships "
        f"(e.g. atari/Breakout, atari/MsPacman; list them all: rl-aux describe env=atari)."
    )


@struct.dataclass
class AtariState:
    handle: chex.Array  # uint8[8]: ale-py's vector env handle; threads the calls' order
    lives: chex.Array  # [N]
    episode_return: chex.Array  # running unclipped score, [N]
    episode_length: chex.Array  # agent steps, [N]
    # what rebuilds the emulators after a restart (restore_host_state): each one's last reset
    # seed, the number of actions since that reset and those actions (uint8[N, capacity])
    reset_seed: chex.Array  # int32[N]
    since_reset: chex.Array  # int32[N]
    actions: chex.Array  # uint8[N, history_capacity]


class AtariVecEnv:
    """`num_envs` Atari emulators stepped by ale-py's C++ vector env from inside XLA."""

    # the emulators live on the host, one vector env for all vmapped seeds: runs cannot be
    # stepped one after another in a lax.map (run_batching=map)
    host_state = True

    def __init__(self, game: str, num_envs: int, cfg: AtariConfig = AtariConfig()):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.rom = check_game(game)
        self.game = game
        self.cfg = cfg
        self.num_envs = num_envs
        self._instances: dict[int, tuple] = {}
        ale_env = self._instance(1)[0]
        self._finish_init(int(ale_env.single_action_space.n))

    def _finish_init(self, num_actions: int) -> None:
        """The spec and batched reset/step, shared by every backend."""
        cfg = self.cfg
        self.spec = EnvSpec(
            name=f"atari/{self.game}",
            obs_shape=(cfg.size, cfg.size, cfg.stack),
            obs_dtype=jnp.uint8,
            num_actions=num_actions,
            max_episode_steps=cfg.max_frames // cfg.frameskip,
        )
        self._reset_b = self._batched(self._reset_impl)
        self._step_b = self._batched(self._step_impl)

    @property
    def history_capacity(self) -> int:
        """Most agent steps an episode can take: the action history kept per emulator."""
        return -(-self.cfg.max_frames // self.cfg.frameskip)

    # ------------------------------------------------------------------ host envs
    def _instance(self, copies: int):
        """ale-py vector env of copies * num_envs emulators and its XLA functions (cached)."""
        if copies not in self._instances:
            from ale_py.vector_env import AtariVectorEnv

            c = self.cfg
            env = AtariVectorEnv(
                self.rom,
                copies * self.num_envs,
                num_threads=c.num_threads,
                max_num_frames_per_episode=c.max_frames,
                repeat_action_probability=c.sticky_actions,
                full_action_space=c.full_action_space,
                img_height=c.size,
                img_width=c.size,
                grayscale=True,
                stack_num=c.stack,
                frameskip=c.frameskip,
                maxpool=True,
                noop_max=c.noop_max,
                episodic_life=False,
                reward_clipping=False,
                use_fire_reset=c.fire_reset,
            )
            with jax.ensure_compile_time_eval():  # may be first called while tracing
                _, reset_fn, step_fn = env.xla()
            handle = np.frombuffer(env.ale.handle(), dtype=np.uint8).copy()
            self._instances[copies] = (env, handle, reset_fn, step_fn)
        return self._instances[copies]

    def _batched(self, impl):
        """impl(copies, handle, x) on [N] inputs; under vmap one call on [S*N] inputs."""

        @jax.custom_batching.custom_vmap
        def fn(handle, x):
            return impl(1, handle, x)

        @fn.def_vmap
        def rule(axis_size, in_batched, handle, x):
            h_b, x_b = in_batched
            h = handle[0] if h_b else handle
            x = x if x_b else jnp.broadcast_to(x, (axis_size,) + x.shape)
            out = impl(axis_size, h, x.reshape((axis_size * self.num_envs,) + x.shape[2:]))
            n = self.num_envs
            out = (jnp.broadcast_to(out[0], (axis_size,) + out[0].shape),) + tuple(
                o.reshape((axis_size, n) + o.shape[1:]) for o in out[1:]
            )
            return out, tuple(True for _ in out)

        return fn

    def _live_handle(self, copies: int, handle: chex.Array) -> chex.Array:
        """The live env's handle, data-dependent on `handle` so XLA keeps the calls in order.

        A handle restored from a checkpoint points into a dead process: the live one replaces
        it (the select cannot be folded away, unlike an optimization barrier on a constant)."""
        live = jnp.asarray(self._instance(copies)[1])
        return jnp.where(jnp.all(handle == live), handle, live)

    def _reset_impl(self, copies: int, handle: chex.Array, seeds: chex.Array):
        n = copies * self.num_envs
        h = self._live_handle(copies, handle)
        h, obs, ids, lives = self._ffi_reset(copies, h, jnp.arange(n, dtype=jnp.int32), seeds)
        return h, _by_env(obs, ids), _by_env(lives, ids)

    def _ffi_reset(self, copies: int, handle, indices, seeds):
        """ale-py's registered XLA reset of the envs `indices` (a static count), with seeds.

        (ale-py's own `xla_reset(reset_mask=...)` builds the indices with a dynamic-shape
        `where`, which cannot be traced; this calls the same FFI target with fixed indices.)
        Envs not reset report their current observation."""
        env = self._instance(copies)[0]
        b = env.batch_size
        i32 = lambda: jax.ShapeDtypeStruct((b,), jnp.int32)
        call = jax.ffi.ffi_call(
            "atari_vector_xla_reset",
            (
                jax.ShapeDtypeStruct((8,), jnp.uint8),
                jax.ShapeDtypeStruct(env.observation_space.shape, jnp.uint8),
                i32(),  # env ids
                i32(),  # lives
                i32(),  # frame numbers
                i32(),  # episode frame numbers
            ),
            vmap_method="broadcast_all",
            has_side_effect=True,
        )
        h, obs, ids, lives, _, _ = call(handle, indices, seeds.astype(jnp.int32))
        return h, obs, ids, lives

    def _step_impl(self, copies: int, handle: chex.Array, inp: chex.Array):
        """One agent step of every env; finished envs are reset in the same step."""
        step_fn = self._instance(copies)[3]
        actions, seeds = inp[:, 0], inp[:, 1]
        n = copies * self.num_envs
        h = self._live_handle(copies, handle)
        h, (obs, reward, term, trunc, info) = step_fn(h, actions.astype(jnp.int32))
        ids = info["env_id"]
        obs, reward, term, trunc = (_by_env(x, ids) for x in (obs, reward, term, trunc))
        lives = _by_env(info["lives"], ids)
        done = jnp.logical_or(term, trunc)
        # ale-py's XLA env would reset finished envs on the NEXT step (ignoring its action);
        # resetting them now keeps the contract: obs is the new episode's first observation.
        # The number of finished envs picks a branch, so every reset has a static shape.
        order = jnp.argsort(jnp.logical_not(done), stable=True).astype(jnp.int32)

        def reset_k(k):
            def branch(h):
                idx = order[:k]
                h2, o2, ids2, lives2 = self._ffi_reset(copies, h, idx, seeds[idx])
                return h2, _by_env(o2, ids2), _by_env(lives2, ids2)

            return branch

        branches = [lambda h: (h, obs, lives)] + [reset_k(k) for k in range(1, n + 1)]
        h, new_obs, new_lives = jax.lax.switch(done.sum(), branches, h)
        m = done.reshape((n,) + (1,) * (obs.ndim - 1))
        first_obs = jnp.where(m, new_obs, obs)
        next_lives = jnp.where(done, new_lives, lives)
        return h, obs, first_obs, reward, term, trunc, lives, next_lives

    def restore_host_state(self, env_state: AtariState, obs: chex.Array | None = None) -> None:
        """Put the emulators back where a restored `env_state` (leaves [runs, N, ...]) left them.

        Each emulator is reset with its saved seed and replays its actions since; the
        histories are aligned at their ends (an emulator with a shorter one is stepped with
        NOOPs, then reset with its seed), so the replay takes max-history-length batch steps.
        `obs` (the restored agent's current observations, [runs, N, H, W, stack]) is checked
        against the replayed emulators' and a mismatch raises."""
        seeds = np.asarray(env_state.reset_seed, np.int32).reshape(-1)
        lengths = np.asarray(env_state.since_reset, np.int64).reshape(-1)
        history = np.asarray(env_state.actions).reshape(seeds.size, -1)
        if seeds.size % self.num_envs:
            raise ValueError(
                f"restored Atari env state has {seeds.size} emulators, not a multiple of "
                f"num_envs={self.num_envs}"
            )
        if lengths.max(initial=0) > history.shape[1]:
            raise ValueError(
                f"restored Atari env state: {lengths.max()} actions since a reset, more than the "
                f"{history.shape[1]} it keeps; resume cannot rebuild the emulators"
            )
        env = self._instance(seeds.size // self.num_envs)[0]
        replayed = replay_actions(env, seeds, lengths, history)
        if obs is not None:
            want = np.asarray(obs).reshape((seeds.size,) + self.spec.obs_shape)
            bad = np.flatnonzero((np.moveaxis(replayed, 1, -1) != want).any(axis=(1, 2, 3)))
            if bad.size:
                raise RuntimeError(
                    f"resume: replaying the saved actions did not reproduce the observations of "
                    f"emulator(s) {bad.tolist()} of {seeds.size}; the checkpoint's env state and "
                    "the emulators disagree"
                )

    # ------------------------------------------------------------------ contract
    def reset(self, key: PRNGKey) -> tuple[AtariState, TimeStep]:
        n = self.num_envs
        seeds = jax.random.randint(key, (n,), 0, 2**31 - 1, dtype=jnp.int32)
        h, obs, lives = self._reset_b(jnp.zeros(8, jnp.uint8), seeds)
        obs = _hwc(obs)
        zeros = jnp.zeros(n, jnp.float32)
        history = jnp.zeros((n, self.history_capacity), jnp.uint8)
        state = AtariState(
            h, lives, zeros, jnp.zeros(n, jnp.int32), seeds, jnp.zeros_like(seeds), history
        )
        extras = {
            "next_obs": obs,
            "episode_return": zeros,
            "episode_length": jnp.zeros(n, jnp.int32),
            "score": zeros,
            "game_over": jnp.zeros(n, bool),
        }
        return state, TimeStep(obs, zeros, jnp.zeros(n, bool), jnp.zeros(n, bool), extras)

    def step(self, state: AtariState, action: chex.Array, key: PRNGKey):
        n = self.num_envs
        chex.assert_shape(action, (n,))
        seeds = jax.random.randint(key, (n,), 0, 2**31 - 1, dtype=jnp.int32)
        inp = jnp.stack([action.astype(jnp.int32), seeds], -1)
        h, last_obs, first_obs, score, term, trunc, lives, next_lives = self._step_b(
            state.handle, inp
        )
        score = score.astype(jnp.float32)
        trunc = jnp.logical_and(trunc, jnp.logical_not(term))
        game_over = jnp.logical_or(term, trunc)
        reward = jnp.sign(score) if self.cfg.clip_rewards else score
        if self.cfg.episodic_life:  # a life loss ends the learner's episode, not the game
            term = jnp.logical_or(term, jnp.logical_and(lives < state.lives, ~game_over))
        ep_ret = state.episode_return + score
        ep_len = state.episode_length + 1
        # the action joins its emulator's history; a game over reset it with `seeds`
        rows = jnp.arange(n)
        history = state.actions.at[rows, state.since_reset].set(
            action.astype(jnp.uint8), mode="drop"
        )
        new_state = AtariState(
            h,
            next_lives,
            jnp.where(game_over, 0.0, ep_ret),
            jnp.where(game_over, 0, ep_len),
            jnp.where(game_over, seeds, state.reset_seed),
            jnp.where(game_over, 0, state.since_reset + 1),
            history,
        )
        extras = {
            "next_obs": _hwc(last_obs),
            "episode_return": ep_ret,
            "episode_length": ep_len,
            "score": score,
            "game_over": game_over,
        }
        return new_state, TimeStep(_hwc(first_obs), reward, term, trunc, extras)


def _by_env(x: chex.Array, env_ids: chex.Array) -> chex.Array:
    """Rows ordered by env id (ale-py reports which env each row came from)."""
    return jnp.zeros_like(x).at[env_ids].set(x)


def _hwc(obs: chex.Array) -> chex.Array:
    """[N, stack, H, W] -> [N, H, W, stack] (the CNN torsos read channels last)."""
    return jnp.moveaxis(obs, 1, -1)


def replay_actions(env, seeds: np.ndarray, lengths: np.ndarray, history: np.ndarray) -> np.ndarray:
    """Reset emulator i of ale-py vector env `env` with seeds[i], then step it through
    history[i, :lengths[i]], all in lock-step: emulator i starts max(lengths) - lengths[i]
    steps late (NOOPs until then, then its seeded reset, which re-creates it completely).
    Returns the emulators' observations after the replay, in emulator order."""
    n = seeds.size
    total = int(lengths.max(initial=0))
    start = total - lengths
    obs, info = env.reset(seed=seeds)
    for t in range(total + 1):
        late = start == t
        if t > 0 and late.any():
            obs, info = env.reset(seed=seeds[late], options={"reset_mask": late})
        if t == total:
            break
        own = np.clip(t - start, 0, None)
        actions = np.where(t >= start, history[np.arange(n), own], 0).astype(np.int32)
        env.send(actions[info["env_id"]])  # ale-py maps row i to the env it last reported
        obs, *_, info = env.recv()
    out = np.empty_like(obs)
    out[info["env_id"]] = obs
    return out
