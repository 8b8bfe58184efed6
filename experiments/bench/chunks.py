"""A learner's compiled chunk of updates, its FLOPs, and one timed run: what every suite times."""

from __future__ import annotations

import time

from experiments.bench.roofline import compile_with_cost


def compiled_chunk(overrides: list[str], updates: int, seeds: int = 1, batching: str = "vmap"):
    """(agent, state of `seeds` runs, compiled chunk of `updates` updates, compile s, cost)."""
    import jax

    from experiments.compose import load_config
    from experiments.train import build_agent
    from rl_aux.vectorize import init_seeds, vmapped_chunk

    _, agent = build_agent(load_config(overrides))
    state, axes = init_seeds(agent, seeds)
    state = jax.block_until_ready(state)
    fn = vmapped_chunk(agent, axes, updates, donate=False, batching=batching)
    compiled, compile_s, cost = compile_with_cost(fn, state)
    return agent, state, compiled, compile_s, cost


def time_chunk(over: list[str], updates: int, seeds: int = 1, batching: str = "vmap") -> dict:
    """Compile a chunk of `updates` updates for `seeds` runs, run it once, time a second run."""
    import jax

    agent, state, compiled, compile_s, cost = compiled_chunk(over, updates, seeds, batching)
    jax.block_until_ready(compiled(state))  # warm-up run (first-call allocations)
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(state))
    run_s = time.perf_counter() - t0
    steps = updates * agent.steps_per_update * seeds
    return {
        "compile_s": compile_s,
        "run_s": run_s,
        "env_steps": steps,
        "steps_per_s": steps / run_s,
        **cost,
        "flops_per_s": cost["flops"] / run_s,
    }


def conv_override(conv: str) -> list[str]:
    """The override that sets the convolutions; none for `config` (the experiment's own)."""
    return [] if conv == "config" else [f"agent.network.conv={conv}"]


def agent_torso(agent_cfg) -> str:
    """The agent's torso name ('mlp' when it has no network config): sizes the CPU pool."""
    return getattr(getattr(agent_cfg, "network", None), "torso", "mlp")


def time_interleaved(progs: dict, repeats: int) -> dict[str, list[float]]:
    """Seconds of each (compiled, state) in `progs`, `repeats` rounds taken in turn, so load
    drifts between rounds rather than between arms."""
    import jax

    runs: dict[str, list[float]] = {arm: [] for arm in progs}
    for _ in range(repeats):
        for arm, (compiled, state) in progs.items():
            t0 = time.perf_counter()
            jax.block_until_ready(compiled(state))
            runs[arm].append(time.perf_counter() - t0)
    return runs
