"""CleanRL harness for `rl-aux bench --suite atari --cleanrl-harness`.

Runs CleanRL's own `ppo_atari_envpool_xla_jax_scan.py` (`--algo ppo`) or `dqn_atari_jax.py`
(`--algo dqn`) from a checkout you provide, as `__main__` with the arguments after `--`, and
times windows of its real training loop over the bench's stdin/stdout protocol (see
experiments/bench/atari_peers.py): after the first iteration (compile + one run) it prints
`@@ {"event": "ready", ...}`, then on each `go K` line it lets the loop run K more iterations
(PPO: one iteration = num_envs x num_steps env steps; DQN: one = the 100 env steps between the
script's "charts/SPS" logs) and prints `@@ {"event": "window", "steps": .., "seconds": ..}`;
`quit` (or end of input) stops the script. The clock is the script's own SummaryWriter, which
the harness replaces (so nothing is written to runs/ and tensorboard is not needed): the PPO
loop logs "charts/SPS_update" once per iteration, the DQN loop "charts/SPS" every 100 steps,
each after a host read of that iteration's results, so a window ends when its work is done.

The scripts run unmodified; the harness only adapts them to current libraries where their
code predates them (jax.tree_map, flax's frozen modules, envpool >= 1.0's gymnasium API behind
`env_type="gym"`, gymnasium 1.x wrapper names, autoreset info and Atari registration).
`--unroll` sets `unroll=True` on every `lax.scan` of length <= 16 (PPO's epoch and minibatch
loops; the 128-step rollout and GAE scans stay rolled). Run it with a Python that has the
checkout's dependencies (docs/atari.md); it imports nothing from rl-aux.

    python experiments/bench/peers/cleanrl.py --cleanrl-dir ~/cleanrl --algo dqn -- \
        --num-envs 1 --learning-starts 1000 --total-timesteps 10000000
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
import time
import types
from typing import Any, TextIO

SCRIPTS = {"ppo": "ppo_atari_envpool_xla_jax_scan.py", "dqn": "dqn_atari_jax.py"}
# the SummaryWriter tag each script logs once per timed iteration, after a host read
CLOCK_TAG = {"ppo": "charts/SPS_update", "dqn": "charts/SPS"}
UNROLL_MAX_LENGTH = 16


class Stop(BaseException):
    """Raised from the clock on `quit`: ends the peer script (not an Exception, so the script's
    own handlers, if any, do not catch it)."""


class Clock:
    """Counts the script's iterations through its SummaryWriter and paces them by stdin."""

    def __init__(self, tag: str, out: TextIO, commands: TextIO) -> None:
        self.tag, self.out, self.commands = tag, out, commands
        self.t_start = time.perf_counter()
        self.ready = False
        self.k = 0
        self.done = 0
        self.window_t0 = 0.0
        self.window_step0 = 0

    def say(self, **kw: Any) -> None:
        """One protocol line on the harness's own stdout."""
        print("@@ " + json.dumps(kw), file=self.out, flush=True)

    def next_window(self, global_step: int) -> None:
        """Block for the next command; `go K` starts a window of K iterations here."""
        line = self.commands.readline()
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            raise Stop
        if cmd[0] != "go" or len(cmd) != 2 or not cmd[1].isdigit() or int(cmd[1]) < 1:
            print(f"cleanrl harness: stdin {line.strip()!r}: expected 'go K' (K >= 1) or 'quit'",
                  file=sys.stderr)  # fmt: skip
            raise Stop
        self.k, self.done = int(cmd[1]), 0
        self.window_step0 = global_step
        self.window_t0 = time.perf_counter()

    def tick(self, global_step: int) -> None:
        """An iteration of the script's loop ended at `global_step` (its results read back)."""
        now = time.perf_counter()
        if not self.ready:
            self.ready = True
            self.say(event="ready", startup_s=now - self.t_start, steps_at_ready=int(global_step))
            self.next_window(global_step)
            return
        self.done += 1
        if self.done == self.k:
            self.say(event="window", steps=int(global_step - self.window_step0),
                     seconds=now - self.window_t0, k=self.k)  # fmt: skip
            self.next_window(global_step)


def writer_module(clock: Clock) -> types.ModuleType:
    """A `torch.utils.tensorboard` whose SummaryWriter drives `clock` and keeps nothing."""

    class SummaryWriter:
        """CleanRL's logger, replaced: its per-iteration scalar is the harness's clock."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def add_scalar(self, tag: str, value: Any, global_step: int | None = None) -> None:
            if tag == clock.tag and global_step is not None:
                clock.tick(int(global_step))

        def add_text(self, *args: Any, **kwargs: Any) -> None:
            pass

        def close(self) -> None:
            pass

    mod = types.ModuleType("torch.utils.tensorboard")
    mod.SummaryWriter = SummaryWriter  # type: ignore[attr-defined]
    return mod


def install_writer(clock: Clock) -> None:
    """Route `from torch.utils.tensorboard import SummaryWriter` to the clock's writer; torch
    itself stays the real one when installed (dqn_atari_jax.py's replay buffer needs it)."""
    try:
        import torch.utils  # noqa: F401
    except ImportError:
        for name in ("torch", "torch.utils"):
            sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["torch.utils.tensorboard"] = writer_module(clock)


def shim_jax(unroll: bool) -> None:
    """jax.tree_map (removed in jax 0.6) for the PPO script; optionally unrolled short scans."""
    import jax

    if "tree_map" not in vars(jax):
        jax.tree_map = jax.tree.map  # type: ignore[attr-defined]
    if not unroll:
        return
    scan = jax.lax.scan

    def scan_unrolling_short(f, init, xs=None, length=None, *args, **kwargs):
        """lax.scan with unroll=True when the loop has at most UNROLL_MAX_LENGTH steps."""
        n = length
        if n is None and xs is not None:
            leaves = jax.tree.leaves(xs)
            n = leaves[0].shape[0] if leaves else None
        if n is not None and n <= UNROLL_MAX_LENGTH and not args:
            kwargs["unroll"] = True
            print(f"cleanrl harness: lax.scan of length {n} unrolled", file=sys.stderr)
        return scan(f, init, xs, length, *args, **kwargs)

    jax.lax.scan = scan_unrolling_short


def shim_flax() -> None:
    """flax >= 0.8 freezes a module's attributes outside setup, and the PPO script assigns
    `network.apply = jax.jit(network.apply)` on its unbound top-level modules; flax's TrainState
    now asks `"overwrite_with_gradient" in params`, and the script's params are a
    flax.struct dataclass (AgentParams), which gets a field-name `in`."""
    import dataclasses

    import flax.linen as nn
    import flax.struct

    struct_dataclass = flax.struct.dataclass

    def dataclass_with_in(cls: type | None = None, **kwargs: Any) -> Any:
        """flax.struct.dataclass, the class answering `name in obj` by its field names."""
        if cls is None:
            return lambda c: dataclass_with_in(c, **kwargs)
        out = struct_dataclass(cls, **kwargs)
        if "__contains__" not in vars(out):
            out.__contains__ = lambda self, name: name in {f.name for f in dataclasses.fields(self)}
        return out

    flax.struct.dataclass = dataclass_with_in

    setattr_frozen = nn.Module.__setattr__

    def setattr_apply(self, name: str, value: Any) -> None:
        if name == "apply" and self.scope is None:
            object.__setattr__(self, name, value)
        else:
            setattr_frozen(self, name, value)

    nn.Module.__setattr__ = setattr_apply


class GymApiPool:
    """envpool >= 1.0 gives a gymnasium pool for `env_type="gym"`; the PPO script expects the
    gym API: reset() -> obs, and an XLA step of (obs, reward, done, info) with info's
    "TimeLimit.truncated"."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)

    def reset(self, *args: Any, **kwargs: Any) -> Any:
        return self.pool.reset(*args, **kwargs)[0]

    def xla(self) -> tuple:
        handle, recv, send, step = self.pool.xla()

        def step_gym(handle: Any, action: Any) -> tuple:
            handle, (obs, reward, terminated, truncated, info) = step(handle, action)
            info = dict(info, **{"TimeLimit.truncated": truncated})
            return handle, (obs, reward, terminated | truncated, info)

        return handle, recv, send, step_gym


def shim_envpool() -> None:
    """envpool.make(env_type="gym") with the gym API where envpool returns a gymnasium pool;
    the script's `import gym` (gym is not installed) gets gymnasium, whose spaces envpool uses."""
    import envpool
    import gymnasium

    try:
        import gym  # noqa: F401
    except ImportError:
        sys.modules["gym"] = gymnasium
    make = envpool.make

    def make_gym_api(task_id: str, env_type: str = "gym", **kwargs: Any) -> Any:
        pool = make(task_id, env_type=env_type, **kwargs)
        if env_type == "gym" and isinstance(pool.reset(), tuple):
            return GymApiPool(pool)
        return pool

    envpool.make = make_gym_api


def shim_gymnasium() -> None:
    """gymnasium 1.x: Atari ids come from ale_py's registration, two wrappers were renamed, and
    the vector env autoresets on the next step, so a truncating step returns the final
    observation itself (the DQN script reads it from infos["final_observation"])."""
    import ale_py
    import gymnasium

    gymnasium.register_envs(ale_py)
    w = gymnasium.wrappers
    if not hasattr(w, "GrayScaleObservation"):
        w.GrayScaleObservation = w.GrayscaleObservation  # type: ignore[attr-defined]
    if not hasattr(w, "FrameStack"):
        w.FrameStack = w.FrameStackObservation  # type: ignore[attr-defined]
    sync = gymnasium.vector.SyncVectorEnv
    step = sync.step

    def step_with_final_observation(self, actions):  # type: ignore[no-untyped-def]
        obs, rewards, terminations, truncations, infos = step(self, actions)
        if truncations.any() and "final_observation" not in infos:
            infos = dict(infos, final_observation=obs)
        return obs, rewards, terminations, truncations, infos

    sync.step = step_with_final_observation


def check_checkout(parser: argparse.ArgumentParser, cleanrl_dir: str | None, algo: str) -> str:
    """The script's path in the checkout, or exit 2 naming the option, value and expectation."""
    if not cleanrl_dir:
        parser.error("--cleanrl-dir is not set (nor $CLEANRL_DIR): expected a CleanRL checkout "
                     "(git clone https://github.com/vwxyzjn/cleanrl)")  # fmt: skip
    if not os.path.isdir(cleanrl_dir):
        parser.error(f"--cleanrl-dir {cleanrl_dir!r}: not a directory; expected a CleanRL "
                     "checkout (with cleanrl/ and cleanrl_utils/)")  # fmt: skip
    script = os.path.join(cleanrl_dir, "cleanrl", SCRIPTS[algo])
    if not os.path.isfile(script):
        parser.error(f"--cleanrl-dir {cleanrl_dir!r}: no cleanrl/{SCRIPTS[algo]} (--algo {algo}); "
                     "expected a CleanRL checkout with its Atari JAX scripts")  # fmt: skip
    return script


def main(argv: list[str] | None = None) -> None:
    """Validate, adapt the libraries, then run the CleanRL script under the clock."""
    argv = sys.argv[1:] if argv is None else argv
    ours, script_args = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv \
        else (argv, [])  # fmt: skip
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cleanrl-dir", default=os.environ.get("CLEANRL_DIR"),
                   help="a CleanRL checkout (default: $CLEANRL_DIR)")  # fmt: skip
    p.add_argument("--algo", required=True, choices=sorted(SCRIPTS))
    p.add_argument("--unroll", action="store_true",
                   help=f"unroll=True on scans of length <= {UNROLL_MAX_LENGTH}")  # fmt: skip
    a = p.parse_args(ours)
    script = check_checkout(p, a.cleanrl_dir, a.algo)
    protocol = sys.stdout
    sys.stdout = sys.stderr  # the script's prints go to the log, the protocol keeps stdout
    clock = Clock(CLOCK_TAG[a.algo], protocol, sys.stdin)
    install_writer(clock)
    shim_jax(a.unroll)
    if a.algo == "ppo":
        shim_flax()
        shim_envpool()
    else:
        shim_gymnasium()
    sys.path.insert(0, os.path.abspath(a.cleanrl_dir))  # cleanrl_utils
    sys.argv = [script, *script_args]
    try:
        runpy.run_path(script, run_name="__main__")
    except Stop:
        pass
    if not clock.ready:
        name = SCRIPTS[a.algo]
        hint = f"(no {clock.tag!r} log); give it more --total-timesteps"
        print(f"cleanrl harness: {name} ended before its first timed iteration {hint}",
              file=sys.stderr)  # fmt: skip
        sys.exit(1)


if __name__ == "__main__":
    main()
