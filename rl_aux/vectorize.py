"""vmap over seeds and grid points, keeping lock-step counters unbatched.

Every seed takes the same number of steps, so counters such as the update index or the
replay write position are equal across the vmapped axis. Keeping them unbatched
(`in_axes=None`) lets `lax.cond` on them stay a real branch (no wasted learning step during
warm-up) and replay writes stay in-place `dynamic_update_slice`s instead of scatters.
Agents list these fields as dotted paths in `SHARED_FIELDS`.
"""

from __future__ import annotations

from typing import Any

import jax


def seed_axes(state_like: Any, shared: tuple[str, ...]) -> Any:
    """A vmap axes tree: 0 for every leaf, None for the dotted `shared` fields."""
    axes = jax.tree.map(lambda _: 0, state_like)
    for path in shared:
        axes = _set(axes, path.split("."))
    return axes


def _set(node: Any, parts: list[str]) -> Any:
    if len(parts) == 1:
        return node.replace(**{parts[0]: None})
    return node.replace(**{parts[0]: _set(getattr(node, parts[0]), parts[1:])})


def vmapped_init(agent, example_key, example_hp):
    """jit(vmap(agent.init)) with shared counters unbatched; returns (fn, axes)."""
    abstract = jax.eval_shape(agent.init, example_key, example_hp)
    axes = seed_axes(abstract, getattr(agent, "SHARED_FIELDS", ()))
    return jax.jit(jax.vmap(agent.init, out_axes=axes)), axes


RUN_BATCHINGS = ("vmap", "map")


def over_runs(program, axes, batching: str = "vmap"):
    """The program over the run axis (axis 0 of the leaves `axes` marks 0).

    `vmap` batches the runs into one program (the default); `map` runs them one after another
    in a `lax.map`, meant for large conv torsos on XLA:CPU, where a vmapped convolution runs
    grouped on one thread (on MinAtar DQN it is slower than vmap: docs/results/atari.md). Envs
    with host state (Atari) need vmap. One run: the program on the run's slice, unbatched (a
    1-wide vmap is slower on the Atari DQN chunk: docs/results/atari.md)."""
    if batching not in RUN_BATCHINGS:
        raise ValueError(f"run_batching={batching!r}; accepted: {', '.join(RUN_BATCHINGS)}")
    is_none = lambda a: a is None
    batched = jax.vmap(program, in_axes=(axes,), out_axes=(axes, 0))

    def mapped(state):
        leaves, treedef = jax.tree.flatten(state)
        ax = treedef.flatten_up_to(axes)  # one axis (0 or None) per leaf of the state
        runs = [i for i, a in enumerate(ax) if a is not None]

        def one_run(sliced):
            full = list(leaves)  # shared (lock-step) leaves are the same for every run
            for i, x in zip(runs, sliced, strict=True):
                full[i] = x
            out, metrics = program(jax.tree.unflatten(treedef, full))
            return jax.tree.leaves(out), metrics

        outs, metrics = jax.lax.map(one_run, [leaves[i] for i in runs])
        # every run leaves the shared leaves equal: keep the first run's
        outs = [o if a is not None else o[0] for o, a in zip(outs, ax, strict=True)]
        return jax.tree.unflatten(treedef, outs), metrics

    def fn(state):
        on = lambda f: lambda a, x: x if a is None else f(x)  # map the batched leaves
        size = lambda a, x: None if a is None else x.shape[0]
        sizes = jax.tree.leaves(jax.tree.map(size, axes, state, is_leaf=is_none))
        if set(sizes) != {1}:
            return mapped(state) if batching == "map" else batched(state)
        out, metrics = program(jax.tree.map(on(lambda x: x[0]), axes, state, is_leaf=is_none))
        out = jax.tree.map(on(lambda x: x[None]), axes, out, is_leaf=is_none)
        return out, jax.tree.map(lambda x: x[None], metrics)

    return fn


def batch_runs(fn, batching: str = "vmap"):
    """fn over axis 0 of all its arguments (every leaf per run, nothing shared): vmap or
    lax.map, as `over_runs`."""
    if batching == "map":
        return lambda *args: jax.lax.map(lambda a: fn(*a), args)
    return jax.vmap(fn)


def vmapped_chunk(
    agent, axes, num_updates: int, donate: bool = True, mesh=None, batching: str = "vmap"
):
    """jit(agent.train_chunk(., num_updates)) over the seed/grid axis (`batching`: see
    `over_runs`); with a device mesh, each device runs it on its slice (rl_aux/sharding.py)."""
    from rl_aux.sharding import AXIS, per_device, specs

    def train_chunk_program(state):  # named: compile logs and compile-count tests find it
        return agent.train_chunk(state, num_updates)

    fn = over_runs(train_chunk_program, axes, batching)
    state_specs = specs(axes)
    fn = per_device(fn, mesh, (state_specs,), (state_specs, jax.sharding.PartitionSpec(AXIS)))
    return jax.jit(fn, donate_argnums=0 if donate else ())


def init_seeds(agent, seeds: int):
    """State for seeds 0..seeds-1 at the agent's default hyperparameters; returns (state, axes).

    The usual set-up of a benchmark or a one-off experiment (no grid)."""
    import jax.numpy as jnp

    keys = jnp.stack([jax.random.PRNGKey(s) for s in range(seeds)])
    hp0 = agent.default_hparams()
    hp = jax.tree.map(lambda x: jnp.full((seeds,), x, jnp.float32), hp0)
    init_fn, axes = vmapped_init(agent, keys[0], hp0)
    return init_fn(keys, hp), axes
