"""PureJaxRL harness for `rl-aux bench --suite core --purejaxrl-harness`.

Times PureJaxRL's own `make_train` (ppo.py, dqn.py of a checkout you provide), jit(vmap)ped
over seeds as PureJaxRL runs several seeds, with its published configuration for the env, and
writes one JSON: lower/compile/run seconds and env steps/s. Run it with a Python that has the
checkout's dependencies (docs/performance.md); it imports nothing from rl-aux.

    python experiments/bench/peers/purejaxrl.py --purejaxrl-dir ~/purejaxrl --algo ppo \
        --env Breakout-MinAtar --seeds 1 --total-timesteps 327680 --num-envs 64 --json out.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time

# PureJaxRL's published configurations (ppo.py's and dqn.py's __main__, and its MinAtar
# settings from the README's walkthrough); TOTAL_TIMESTEPS and NUM_ENVS come from the bench.
PPO_BASE = {
    "LR": 2.5e-4,
    "NUM_ENVS": 4,
    "NUM_STEPS": 128,
    "UPDATE_EPOCHS": 4,
    "NUM_MINIBATCHES": 4,
    "GAMMA": 0.99,
    "GAE_LAMBDA": 0.95,
    "CLIP_EPS": 0.2,
    "ENT_COEF": 0.01,
    "VF_COEF": 0.5,
    "MAX_GRAD_NORM": 0.5,
    "ACTIVATION": "tanh",
    "ANNEAL_LR": True,
    "DEBUG": False,
}
CONFIGS = {
    ("ppo", "CartPole-v1"): {**PPO_BASE, "ENV_NAME": "CartPole-v1"},
    ("ppo", "Breakout-MinAtar"): {
        **PPO_BASE,
        "ENV_NAME": "Breakout-MinAtar",
        "LR": 5e-3,
        "NUM_ENVS": 64,
        "NUM_MINIBATCHES": 8,
        "ACTIVATION": "relu",
    },
    ("dqn", "CartPole-v1"): {
        "ENV_NAME": "CartPole-v1",
        "NUM_ENVS": 10,
        "BUFFER_SIZE": 10000,
        "BUFFER_BATCH_SIZE": 128,
        "EPSILON_START": 1.0,
        "EPSILON_FINISH": 0.05,
        "EPSILON_ANNEAL_TIME": 25e4,
        "TARGET_UPDATE_INTERVAL": 500,
        "LR": 2.5e-4,
        "LEARNING_STARTS": 10000,
        "TRAINING_INTERVAL": 10,
        "LR_LINEAR_DECAY": False,
        "GAMMA": 0.99,
        "TAU": 1.0,
        "WANDB_MODE": "disabled",
    },
}


def env_steps(algo: str, config: dict) -> int:
    """Env steps one seed of PureJaxRL's `train` takes (its NUM_UPDATES rounds down)."""
    if algo == "ppo":
        per_update = config["NUM_STEPS"] * config["NUM_ENVS"]
        return int(config["TOTAL_TIMESTEPS"] // per_update) * per_update
    return int(config["TOTAL_TIMESTEPS"] // config["NUM_ENVS"]) * config["NUM_ENVS"]


def five_tuple(env):
    """`env` stepping as the gymnax PureJaxRL was written for: (obs, state, reward, done,
    info), done = terminated | truncated. gymnax >= 1.0 returns both flags; the env code (and so
    its cost) stays the one rl-aux runs."""
    import jax.numpy as jnp

    class FiveTuple:
        def __init__(self, env):
            self._env = env

        def __getattr__(self, name):
            return getattr(self._env, name)

        def step(self, key, state, action, params=None):
            out = self._env.step(key, state, action, params)
            if len(out) == 5:
                return out
            obs, state, reward, terminated, truncated, info = out
            return obs, state, reward, jnp.logical_or(terminated, truncated), info

    return FiveTuple(env)


def adapt_to_gymnax(module, algo: str) -> None:
    """Where the peer unpacks five values: ppo.py from gymnax.make's env (under its own
    wrappers), dqn.py from gymnax's LogWrapper."""
    if algo == "ppo":
        make = module.gymnax.make
        module.gymnax = type(module.gymnax)("gymnax_five_tuple")
        module.gymnax.make = lambda *a, **k: (lambda e, p: (five_tuple(e), p))(*make(*a, **k))
    else:
        log_wrapper = module.LogWrapper
        module.LogWrapper = lambda env: five_tuple(log_wrapper(env))


def run(purejaxrl_dir: str, algo: str, env: str, seeds: int, steps: int, num_envs: int) -> dict:
    """Lower, compile and run the peer's jit(vmap(make_train(config))) once; the timings."""
    import jax

    if "tree_map" not in vars(jax):  # removed in jax 0.6; PureJaxRL's dqn.py still calls it
        jax.tree_map = jax.tree.map
    if (algo, env) not in CONFIGS:
        raise SystemExit(f"--algo/--env {algo}/{env}: accepted {sorted(CONFIGS)}")
    sys.path.insert(0, os.path.join(purejaxrl_dir, "purejaxrl"))
    module = importlib.import_module(algo)
    adapt_to_gymnax(module, algo)
    config = dict(CONFIGS[(algo, env)], TOTAL_TIMESTEPS=steps, NUM_ENVS=num_envs)
    fn = jax.jit(jax.vmap(module.make_train(dict(config))))
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    t0 = time.perf_counter()
    lowered = fn.lower(keys)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    jax.block_until_ready(compiled(keys))
    run_s = time.perf_counter() - t2
    total = env_steps(algo, config) * seeds
    return {
        "peer": "purejaxrl",
        "algo": algo,
        "env": env,
        "seeds": seeds,
        "num_envs": num_envs,
        "lower_s": t1 - t0,
        "compile_s": t2 - t1,
        "run_s": run_s,
        "actual_env_steps": total,
        "actual_env_steps_per_s": total / run_s,
        "env_steps_per_s": total / run_s,
        "device": str(jax.devices()[0]),
    }


def main(argv: list[str] | None = None) -> None:
    """Parse the bench's arguments, run once, write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--purejaxrl-dir", default=os.environ.get("PUREJAXRL_DIR"),
                   help="a PureJaxRL checkout (default: $PUREJAXRL_DIR)")  # fmt: skip
    p.add_argument("--algo", required=True, choices=["ppo", "dqn"])
    p.add_argument("--env", required=True)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--total-timesteps", type=int, required=True)
    p.add_argument("--num-envs", type=int, required=True)
    p.add_argument("--json", required=True)
    a = p.parse_args(argv)
    if not a.purejaxrl_dir or not os.path.isdir(os.path.join(a.purejaxrl_dir, "purejaxrl")):
        p.error(f"--purejaxrl-dir {a.purejaxrl_dir!r}: not a PureJaxRL checkout (no purejaxrl/)")
    out = run(a.purejaxrl_dir, a.algo, a.env, a.seeds, a.total_timesteps, a.num_envs)
    with open(a.json, "w") as f:
        json.dump(out, f, indent=2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
