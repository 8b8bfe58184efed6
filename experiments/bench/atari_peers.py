"""`rl-aux bench --suite atari --cleanrl-harness ...`: our PPO and DQN beside CleanRL's
`ppo_atari_envpool_xla_jax_scan.py` and `dqn_atari_jax.py` at the same num_envs, num_steps,
batch and network, and the raw Atari env of each backend (ale-py, envpool).

Side by side: every contender is a long-lived subprocess that compiles, runs once, prints
`@@ {"event": "ready"}` and then times a window on each `go K` line of its stdin (ours: K
compiled chunks; CleanRL: K of its iterations, through experiments/bench/peers/cleanrl.py and
a CleanRL checkout the user provides, see docs/atari.md). Contenders take turns, window by
window (ours, CleanRL, CleanRL unrolled, ours, ...), so a change in the machine's load hits
all of them; the median window counts.
"""

from __future__ import annotations

import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time

from experiments.bench.chunks import compiled_chunk, conv_override

GAME = "Breakout"
# Our settings that match CleanRL's defaults (the compute per env step is what is compared).
OURS = {
    # ppo_atari_envpool_xla_jax_scan.py: 8 envs x 128 steps, 4 epochs x 4 minibatches, Nature CNN
    "ppo": ["experiment=atari_ppo"],
    # dqn_atari_jax.py: 1 env, batch 32, one gradient step every 4 env steps, 1-step targets
    # without double Q, Nature CNN + Dense(512) + Dense(actions)
    "dqn": [
        "experiment=atari_dqn",
        "agent.num_envs=1",
        "agent.batch_size=32",
        "agent.train_interval=4",
        "agent.gradient_steps=1",
        "agent.n_step=1",
        "agent.double_q=false",
        "agent.learning_starts=0",
        "agent.buffer_size=10000",
    ],
}


# ---------------------------------------------------------------------------- raw envs
def time_random_steps(env, n_act: int, num_envs: int, steps: int) -> dict:
    """Env steps/s of uniform random actions on a host vector env (after 20 warm-up steps)."""
    import numpy as np

    rng = np.random.default_rng(0)
    for _ in range(20):
        env.step(rng.integers(0, n_act, num_envs))
    n = max(steps // num_envs, 1)
    t0 = time.perf_counter()
    for _ in range(n):
        env.step(rng.integers(0, n_act, num_envs))
    run_s = time.perf_counter() - t0
    return {"run_s": run_s, "env_steps": n * num_envs, "steps_per_s": n * num_envs / run_s}


def worker_raw_envpool(num_envs: int, steps: int) -> dict:
    """envpool's Atari pool from Python (sync mode), uniform random actions, our protocol."""
    import envpool

    from envs.atari import AtariConfig

    c = AtariConfig()
    env = envpool.make(
        f"{GAME}-v5",
        env_type="gymnasium",
        num_envs=num_envs,
        repeat_action_probability=c.sticky_actions,
        noop_max=max(c.noop_max, 1),
        use_fire_reset=c.fire_reset,
        episodic_life=False,
        reward_clip=False,
        max_episode_steps=c.max_frames // c.frameskip,
    )
    env.reset()
    return time_random_steps(env, env.action_space.n, num_envs, steps)


def worker_env_scan(backend: str, num_envs: int, steps: int) -> dict:
    """Our VecEnv (the given backend) in a jitted lax.scan, uniform random actions."""
    import jax

    import rl_aux  # noqa: F401  (XLA flags)
    from envs.registry import make_env

    env = make_env(f"atari/{GAME}", num_envs, {"backend": backend})
    n = max(steps // num_envs, 1)

    @jax.jit
    def run(key):
        state, _ = env.reset(key)

        def body(state, k):
            a = jax.random.randint(k, (num_envs,), 0, env.spec.num_actions)
            state, ts = env.step(state, a, k)
            return state, ts.reward.sum()

        return jax.lax.scan(body, state, jax.random.split(key, n))[1].sum()

    jax.block_until_ready(run(jax.random.PRNGKey(0)))  # compile + first run
    t0 = time.perf_counter()
    jax.block_until_ready(run(jax.random.PRNGKey(1)))
    run_s = time.perf_counter() - t0
    return {"run_s": run_s, "env_steps": n * num_envs, "steps_per_s": n * num_envs / run_s}


# ---------------------------------------------------------------------------- our server
def serve_learner(algo: str, num_envs: int, updates: int, conv: str, backend: str) -> dict:
    """Compile one chunk of `updates` updates, run it once, then time `go K` windows."""
    import jax

    over = [*OURS[algo], *conv_override(conv), f"env.options.backend={backend}"]
    if algo == "ppo":
        over.append(f"agent.num_envs={num_envs}")
    agent, state, compiled, compile_s, cost = compiled_chunk(over, updates)
    state = jax.block_until_ready(compiled(state))[0]
    steps = updates * agent.steps_per_update
    _say(event="ready", compile_s=compile_s, steps_per_window=steps, **cost)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        k = int(cmd[1])
        t0 = time.perf_counter()
        for _ in range(k):
            state = compiled(state)[0]
        jax.block_until_ready(state)
        _say(event="window", steps=k * steps, seconds=time.perf_counter() - t0, k=k)
    return {"event": "finished"}


def _say(**kw) -> None:
    print("@@ " + json.dumps(kw), flush=True)


# ---------------------------------------------------------------------------- side by side
class Contender:
    """A subprocess speaking the `@@ {json}` / `go K` protocol; its stderr goes to `log`."""

    def __init__(self, name: str, cmd: list[str], k: int, log: str):
        self.name, self.cmd, self.k, self.log = name, cmd, k, log
        self.ready, self.windows, self.error, self.proc = None, [], None, None
        self._q: queue.Queue = queue.Queue()

    def start(self) -> None:
        self._log = open(self.log, "w")
        self.proc = subprocess.Popen(
            self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            text=True, bufsize=1,
        )  # fmt: skip
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith("@@ "):
                self._q.put(json.loads(line[3:]))
        self._q.put(None)

    def wait(self, timeout: float) -> dict | None:
        try:
            msg = self._q.get(timeout=timeout)
        except queue.Empty:
            msg = None
            self.error = f"no answer in {timeout:.0f} s"
        if msg is None and self.error is None:
            self.error = f"exited (rc {self.proc.wait()}); see {self._log.name}"
        return msg

    def go(self, timeout: float) -> None:
        if self.error:
            return
        self.proc.stdin.write(f"go {self.k}\n")
        self.proc.stdin.flush()
        msg = self.wait(timeout)
        if msg and msg.get("event") == "window":
            self.windows.append(msg)

    def close(self) -> None:
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()  # our own child, by its handle
        self._log.close()

    def summary(self) -> dict:
        if not self.windows:
            return {"error": [self.error or "no window measured"]}
        sps = [w["steps"] / w["seconds"] for w in self.windows]
        out = {"steps_per_s": statistics.median(sps), "windows_steps_per_s": sps}
        out["steps_per_window"] = self.windows[0]["steps"]
        out.update({k: v for k, v in (self.ready or {}).items() if k != "event"})
        return out


def side_by_side(contenders: list[Contender], repeats: int, timeout: float) -> dict:
    """Start-up one at a time (the others idle), then windows in turns; medians per contender."""
    for c in contenders:
        c.start()
        msg = c.wait(timeout)
        if msg and msg.get("event") == "ready":
            c.ready = msg
        print(f"  {c.name}: {'ready' if c.ready else c.error}", file=sys.stderr, flush=True)
    for r in range(repeats):
        for c in contenders:
            c.go(timeout)
            if c.windows and len(c.windows) == r + 1:
                w = c.windows[-1]
                print(
                    f"  window {r + 1} {c.name}: {w['steps'] / w['seconds']:.1f} steps/s",
                    file=sys.stderr, flush=True,
                )  # fmt: skip
    for c in contenders:
        c.close()
    return {c.name: c.summary() for c in contenders}


def run_peers(
    num_envs: int,
    conv: str,
    backend: str,
    harness: str,
    peer_python: str,
    cleanrl_dir: str | None,
    repeats: int,
    log_dir: str,
    variants: tuple[str, ...] = ("published", "unrolled"),
    algos: tuple[str, ...] = ("ppo", "dqn"),
) -> list[dict]:
    """PPO (num_envs envs) and DQN (1 env, CleanRL's only setting) side by side with CleanRL."""
    os.makedirs(log_dir, exist_ok=True)
    ours_cmd = [sys.executable, "-m", "experiments.bench", "--_worker", "atari_serve"]
    peer = [peer_python, harness, *(["--cleanrl-dir", cleanrl_dir] if cleanrl_dir else [])]
    rows = []
    plans = {
        "ppo": (
            num_envs,
            ["--algo", "ppo"],
            ["--num-envs", str(num_envs), "--num-steps", "128", "--total-timesteps", "100000000"],
        ),
        "dqn": (
            1,
            ["--algo", "dqn"],
            [
                "--num-envs",
                "1",
                "--batch-size",
                "32",
                "--train-frequency",
                "4",
                "--learning-starts",
                "1000",
                "--buffer-size",
                "10000",
                "--exploration-fraction",
                "0.0001",  # greedy (one forward pass) by step 1000
                "--total-timesteps",
                "10000000",
            ],
        ),  # fmt: skip
    }
    for algo, (n, peer_opts, script_args) in [(k, v) for k, v in plans.items() if k in algos]:
        # windows: PPO one update / one CleanRL iteration (n x 128 steps); DQN 400 env steps
        ours_updates, peer_k = (1, 1) if algo == "ppo" else (400, 4)
        print(f"{algo}/{GAME} x{n} envs: side by side with CleanRL", file=sys.stderr)
        cs = [
            Contender(
                "ours",
                [*ours_cmd, algo, str(n), str(ours_updates), conv, backend],
                1,
                os.path.join(log_dir, f"{algo}_ours.log"),
            ),
        ]
        if "published" in variants or algo == "dqn":  # DQN has no scans to unroll
            cs.append(
                Contender(
                    "cleanrl",
                    [*peer, *peer_opts, "--", *script_args],
                    peer_k,
                    os.path.join(log_dir, f"{algo}_cleanrl.log"),
                )
            )
        if algo == "ppo" and "unrolled" in variants:
            cs.append(
                Contender(
                    "cleanrl_unrolled",
                    [*peer, *peer_opts, "--unroll", "--", *script_args],
                    peer_k,
                    os.path.join(log_dir, f"{algo}_cleanrl_unrolled.log"),
                )
            )
        t0 = time.perf_counter()
        res = side_by_side(cs, repeats, timeout=1800)
        row = {"case": f"{algo}/{GAME}", "num_envs": n, "conv": conv, "backend": backend}
        row.update(res)
        row["wall_s"] = time.perf_counter() - t0
        ours = res["ours"].get("steps_per_s")
        for name in ("cleanrl", "cleanrl_unrolled"):
            theirs = res.get(name, {}).get("steps_per_s")
            if ours and theirs:
                row[f"ratio_{name}"] = ours / theirs
        rows.append(row)
    return rows


PEER_HEADER = (
    f"{'case':<14} {'envs':>4} {'ours':>8} {'cleanrl':>8} {'ours/cl':>7} "
    f"{'cl-unroll':>9} {'ours/clu':>8} {'windows':>7}"
)


def format_peer_row(row: dict) -> str:
    def f(col, w, p=1):
        v = row.get(col, {}).get("steps_per_s") if isinstance(row.get(col), dict) else None
        return f"{v:{w}.{p}f}" if v else f"{'-':>{w}}"

    def r(col, w):
        v = row.get(col)
        return f"{v:{w}.2f}" if v else f"{'-':>{w}}"

    n_win = len(row.get("ours", {}).get("windows_steps_per_s", []))
    return (
        f"{row['case']:<14} {row['num_envs']:>4} {f('ours', 8)} {f('cleanrl', 8)} "
        f"{r('ratio_cleanrl', 7)} {f('cleanrl_unrolled', 9)} {r('ratio_cleanrl_unrolled', 8)} "
        f"{n_win:>7}"
    )
