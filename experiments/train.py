"""`rl-aux train`: the host loop around one compiled, vmapped training program.

The program `vmap(agent.train_chunk)` runs `log_interval` env steps for every seed and grid
point at once; between chunks the host writes metric rows, evaluates, shows progress and
checkpoints. A resumed run restores the last checkpoint and continues with the same chunks,
so its metrics equal an uninterrupted run's.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import os
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from envs import make_env
from experiments import doc_test
from experiments.config import TEXT_REWARDS, TrainConfig, agent_classes, flatten_dict
from experiments.hp_labels import flat_hparams, grid_labels
from experiments.preempt import NonFiniteLoss, Preempted, StopFlag
from rl_aux.checkpoint import Checkpointer
from rl_aux.configs import ConfigError
from rl_aux.cpu_threads import configure_cpu_threads
from rl_aux.evaluation import evaluate
from rl_aux.heads.base import head_class
from rl_aux.learner import learned_mean
from rl_aux.logging import RunStore, run_status, say, scrub_secrets
from rl_aux.rewards import reward_class
from rl_aux.sharding import (
    AXIS,
    maybe_initialize_distributed,
    per_device,
    run_mesh,
    run_shardings,
    specs,
    to_host,
)
from rl_aux.vectorize import batch_runs, vmapped_chunk, vmapped_init

WALL_CLOCK_COLUMNS = ("charts/sps", "time/elapsed_s")


def build_agent(cfg: TrainConfig):
    """The env, heads and agent a config describes (no compilation yet)."""
    agent_cls, _ = agent_classes()[cfg.agent_name]
    options = cfg.env.options
    host_blend = cfg.reward_name == "blend" and cfg.env.name.startswith(("nethack/", "minihack/"))
    if cfg.reward_name in TEXT_REWARDS or host_blend:  # host sources read extra NLE arrays
        from agents.host_loop import source_host_keys

        options = dict(options or {})
        keys = tuple(options.get("host_keys", ()))
        need = source_host_keys(cfg.reward_name, getattr(cfg.reward, "sources", ()))
        options["host_keys"] = keys + tuple(k for k in need if k not in keys)
    env = make_env(cfg.env.name, cfg.agent.num_envs, options, seed=cfg.seed)
    heads = [head_class(name)(hcfg, env.spec) for name, hcfg in cfg.heads.items()]
    kw = {}  # JAX envs: the learner applies the reward module (agents/reward_hook.py)
    host = getattr(env, "host_stepped", False)  # host loops apply text rewards themselves
    if cfg.reward_name != "env" and (not host or cfg.reward_name == "blend"):
        kw["reward"] = reward_class(cfg.reward_name)(cfg.reward, cfg.agent.gamma)
    agent = agent_cls(cfg.agent, env, heads, total_updates=1, **kw)
    agent.total_updates = max(cfg.total_timesteps // agent.steps_per_update, 1)
    return env, agent


def grid_points(cfg: TrainConfig, default_hp: dict) -> list[dict]:
    """Cartesian product of the grid axes, each a full hparams dict."""
    axes = list(cfg.grid.items())
    points = []
    for values in itertools.product(*[v for _, v in axes]) if axes else [()]:
        hp = {"lr": default_hp["lr"], "aux_weights": dict(default_hp["aux_weights"])}
        for (key, _), v in zip(axes, values, strict=True):
            if key.endswith(".weight"):
                hp["aux_weights"][key.split(".")[0]] = float(v)
            else:  # lr, or any float field of the learner config (rl_aux/learner.hp reads it)
                hp[key] = float(v)
        points.append(hp)
    return points


def _flat_hp(hp: dict) -> dict:
    """The `hp/<name>` columns of one grid point (flat_hparams, prefixed)."""
    return {f"hp/{k}": v for k, v in flat_hparams(hp).items()}


def stack_hparams(trees: list) -> Any:
    """Per-grid-point hyperparameter trees -> one tree of float32 arrays [G, ...] to vmap over."""
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x, jnp.float32) for x in xs]), *trees)


def learned_updates(agent, first_update: int, n: int) -> np.ndarray | None:
    """Per update of a chunk whose updates are numbered first_update.. (1-based): whether it
    took a gradient step (None: an agent that learns at every update)."""
    learns = getattr(agent, "learns", None)
    if learns is None:
        return None
    return np.asarray(learns(np.arange(first_update, first_update + n)), bool)


def absent_metrics(agent, m: dict, learned: np.ndarray | None) -> frozenset:
    """The chunk's metric columns left empty because no update in it took a gradient step."""
    if learned is None or learned.any():
        return frozenset()
    prefixes = getattr(agent, "LEARN_METRIC_PREFIXES", ())
    return frozenset(k for k in m if k.startswith(prefixes)) if prefixes else frozenset()


def _chunk_rows(
    m: dict,
    step: int,
    seeds: list[int],
    grids: list[int],
    hps: list[dict],
    learned: np.ndarray | None = None,
    learn_prefixes: tuple = (),
) -> list:
    """Per (seed, grid point) rows from chunk metrics m[key] of shape [G*S, updates].

    Metrics named by `learn_prefixes` average over the updates `learned` marks (NaN if none)."""
    m = {k: np.asarray(v) for k, v in m.items()}
    eps = m.pop("episodes").sum(1)
    ret = m.pop("episode_return_sum").sum(1)
    length = m.pop("episode_length_sum").sum(1)
    rows = []
    for i, (seed, grid) in enumerate(zip(seeds, grids, strict=True)):
        row = {"global_step": step, "seed": seed, "grid": grid, **_flat_hp(hps[grid])}
        row["charts/episodic_return"] = float(ret[i] / eps[i]) if eps[i] > 0 else math.nan
        row["charts/episodic_length"] = float(length[i] / eps[i]) if eps[i] > 0 else math.nan
        row["charts/episodes"] = int(eps[i])
        for k, v in m.items():
            name = k if "/" in k else f"charts/{k}"
            gated = learned is not None and bool(learn_prefixes) and k.startswith(learn_prefixes)
            row[name] = learned_mean(v[i], learned) if gated else float(v[i].mean())
        rows.append(row)
    return rows


def run(cfg: TrainConfig, quiet: bool = False) -> dict:
    """Train one configuration (all seeds and grid points) into cfg.run_dir."""
    offline = getattr(agent_classes()[cfg.agent_name][0], "run_offline", None)
    check_runner_supports(cfg, offline is not None)  # before NLE workers start or any compile
    cfg = dataclasses.replace(cfg, resume=resolve_resume(cfg))
    d = cfg.distributed
    maybe_initialize_distributed(d.coordinator_address, d.num_processes, d.process_id, d.enabled)
    if offline is not None:  # offline learners (no env stepping) own their host loop
        if doc_test.enabled():
            print(f"{doc_test.ENV_VAR}=1: offline learner, budget NOT capped", file=sys.stderr)
        return offline(cfg, quiet)
    env, agent = build_agent(cfg)
    capped = doc_test.cap(cfg, agent.steps_per_update)  # unchanged unless RL_AUX_DOC_TEST=1
    if capped is not cfg:
        cfg = capped
        agent.total_updates = max(cfg.total_timesteps // agent.steps_per_update, 1)
    if getattr(env, "host_stepped", False):  # NLE/MiniHack: jitted act + update, host loop
        from agents.host_loop import run_host

        return run_host(cfg, env, agent, quiet)
    if cfg.run_batching == "map" and getattr(env, "host_state", False):
        raise ConfigError(
            f"run_batching=map: env {cfg.env.name} keeps its emulators on the host, one vector "
            "env for all seeds, so the runs cannot go one after another; accepted here: vmap"
        )
    spu = agent.steps_per_update
    num_updates = cfg.total_timesteps // spu
    if num_updates < 1:
        raise ConfigError(
            f"total_timesteps={cfg.total_timesteps} is less than one update; accepted: >= {spu} "
            f"(the env steps of one agent={cfg.agent_name} update with these agent.* settings)"
        )
    log_steps = cfg.logger.log_interval or max(cfg.total_timesteps // 100, spu)
    upc = max(1, min(num_updates, round(log_steps / spu)))  # updates per chunk
    n_chunks = math.ceil(num_updates / upc)
    eval_every = cfg.eval.every or max(cfg.total_timesteps // 10, 1)
    ckpt_every = cfg.checkpoint.every or max(cfg.total_timesteps // 10, 1)
    eval_env = make_env(cfg.env.name, cfg.eval.episodes, cfg.env.options)
    eval_steps = cfg.eval.max_steps or env.spec.max_episode_steps

    hps = grid_points(cfg, agent.default_hparams())
    seeds = [cfg.seed + s for s in range(cfg.num_seeds)]
    flat_seeds = [s for _ in hps for s in seeds]
    flat_grids = [g for g in range(len(hps)) for _ in seeds]
    keys = jnp.stack([jax.random.PRNGKey(s) for s in flat_seeds])
    hp_batch = stack_hparams([hps[g] for g in flat_grids])

    resolved = scrub_secrets(cfg.to_yaml_dict())
    if cfg.resume:
        check_resumable(cfg.run_dir, resolved)
        if run_status(cfg.run_dir).get("status") == "finished":  # a relaunched sweep skips it
            say(quiet, f"[{cfg.label}] already finished: {cfg.run_dir} (skipped)")
            return _summary(cfg, os.path.join(cfg.run_dir, "metrics.csv"))
    store = RunStore(cfg.run_dir, cfg.resume)
    store.write_config(resolved)
    ckpt = Checkpointer(os.path.join(cfg.run_dir, "checkpoints"), cfg.checkpoint.keep)
    stop = StopFlag().__enter__()  # SIGTERM/SIGINT: checkpoint at the next chunk end, then exit
    try:
        t0 = time.time()
        init_fn, axes = vmapped_init(agent, keys[0], hps[0])
        mesh = run_mesh(len(flat_seeds))  # >1 device: split the seed/grid axis over them
        if mesh is not None:  # each device initialises its own slice of runs
            split = jax.sharding.PartitionSpec(AXIS)
            vinit = jax.vmap(agent.init, out_axes=axes)
            init_fn = jax.jit(per_device(vinit, mesh, (split, split), specs(axes)))
        state = init_fn(keys, hp_batch)
        start_chunk = 0
        if cfg.resume:
            got = ckpt.restore_latest(state)  # CheckpointDamaged when no checkpoint is intact
            for bad in got.damaged:  # one line each, quiet or not: the run lost some progress
                print(
                    f"rl-aux train: warning: checkpoint step {bad.step} is damaged "
                    f"({bad.describe()}); moved to {got.moved_to}, resuming from step {got.step}",
                    file=sys.stderr,
                    flush=True,
                )
            if got.step is None:
                say(quiet, f"resuming {cfg.run_dir}: no checkpoint yet, starting from step 0")
            else:
                fresh = state
                state, meta = got.state, got.meta
                if mesh is not None:
                    state = jax.device_put(state, run_shardings(mesh, axes))
                start_chunk = int(meta["chunk"]) + 1
                restore_host = getattr(env, "restore_host_state", None)
                if restore_host is not None:  # host emulators (Atari): back to the saved state
                    jax.block_until_ready(fresh)  # init's emulator reset must not race the replay
                    restore_host(state.env_state, getattr(state, "obs", None))
                say(
                    quiet,
                    f"resuming {cfg.run_dir} after chunk {meta['chunk']} "
                    f"(step {meta['global_step']})",
                )
        done_steps = min(start_chunk * upc, num_updates) * spu
        store.open_metrics(
            _columns(agent, axes, state, upc, hps), done_steps if start_chunk else None
        )

        chunk = functools.partial(vmapped_chunk, agent, axes, mesh=mesh, batching=cfg.run_batching)
        compiled = chunk(upc).lower(state).compile()
        last = num_updates - (n_chunks - 1) * upc
        compiled_last = compiled
        if last != upc:
            compiled_last = chunk(last).lower(state).compile()
        eval_fn = batch_runs(
            lambda p, k: evaluate(agent, eval_env, p, k, cfg.eval.epsilon, eval_steps),
            cfg.run_batching,
        )
        split = jax.sharding.PartitionSpec(AXIS)
        eval_fn = jax.jit(per_device(eval_fn, mesh, (split, split), split))
        eval_fn = eval_fn.lower(state.params, keys).compile()
        compile_s = time.time() - t0
        store.write_meta(
            {
                "compile_s": compile_s,
                "num_updates": num_updates,
                "updates_per_chunk": upc,
                "steps_per_update": spu,
                "run_devices": 1 if mesh is None else mesh.size,  # devices the runs split over
            }
        )
        store.start_wandb(
            cfg.logger.wandb.mode,
            cfg.logger.wandb.project,
            cfg.logger.wandb.entity,
            cfg.label,
            resolved,
            [(s, g, hps[g]) for s, g in zip(flat_seeds, flat_grids, strict=True)],
        )
        say(
            quiet,
            f"[{cfg.label}] {cfg.env.name}: {len(hps)} grid point(s) x {cfg.num_seeds} "
            f"seed(s), {num_updates} updates of {spu} steps; compiled in {compile_s:.1f}s",
        )

        store.write_status("running", global_step=done_steps)
        saver = transition_saver(cfg, agent, upc) if cfg.logger.save_transitions else None
        bar = _progress(cfg, quiet, done_steps)
        t_start = time.time()
        for c in range(start_chunk, n_chunks):
            if stop.signum is not None:
                _stop_on_signal(store, ckpt, stop.signum, done_steps, cfg.run_dir)
            tc = time.time()
            fn = compiled_last if c == n_chunks - 1 else compiled
            state, m = fn(state)
            m = to_host(m)
            step = min((c + 1) * upc, num_updates) * spu
            dt = time.time() - tc
            prev = min(c * upc, num_updates) * spu
            learned = learned_updates(agent, c * upc + 1, (step - prev) // spu)
            prefixes = getattr(agent, "LEARN_METRIC_PREFIXES", ())
            rows = _chunk_rows(m, step, flat_seeds, flat_grids, hps, learned, prefixes)
            absent = {k if "/" in k else f"charts/{k}" for k in absent_metrics(agent, m, learned)}
            _check_finite(rows, store, ckpt, cfg.run_dir, absent)
            if step // eval_every > prev // eval_every or c == n_chunks - 1:
                ek = jnp.stack(
                    [jax.random.fold_in(jax.random.PRNGKey(s + 10_007), c) for s in flat_seeds]
                )
                ev = np.asarray(to_host(eval_fn(state.params, ek))).mean(-1)
                for row, v in zip(rows, ev, strict=True):
                    row["eval/episodic_return"] = float(v)
            for row in rows:
                row["charts/sps"] = (step - prev) * len(rows) / dt
                row["time/elapsed_s"] = time.time() - t_start
            store.log_rows(rows)
            done_steps = step
            if saver is not None:
                saver(state, min((c + 1) * upc, num_updates) - c * upc)
            if step // ckpt_every > prev // ckpt_every or c == n_chunks - 1:
                store.sync()
                ckpt.save(c, state, {"chunk": c, "global_step": step})
            elif stop.signum is not None:  # checkpoint the chunk just logged, then stop
                store.sync()
                ckpt.save(c, state, {"chunk": c, "global_step": step})
            _advance(bar, step - prev, rows)
            if stop.signum is not None and c < n_chunks - 1:
                _stop_on_signal(store, ckpt, stop.signum, step, cfg.run_dir)
        if bar is not None:
            bar.close()
        store.write_status("finished", global_step=done_steps)
        summary = _summary(cfg, store.metrics_path)
        say(quiet, _format_summary(cfg, summary, hps))
        return summary
    finally:
        stop.__exit__(None, None, None)
        store.close()
        ckpt.close()


def _stop_on_signal(store: RunStore, ckpt, signum: int, step: int, run_dir: str):
    """Record the stop and raise Preempted (the last logged chunk is already checkpointed)."""
    store.sync()
    store.write_status("preempted", global_step=step, signal=signum)
    latest = ckpt.latest_step()
    where = f"checkpoint after chunk {latest}" if latest is not None else "no checkpoint yet"
    raise Preempted(
        signum,
        f"stopped by signal {signum} at global_step {step} ({where}) in {run_dir}; "
        "relaunch the same command with resume=true to continue",
    )


def _check_finite(
    rows: list[dict], store: RunStore, ckpt, run_dir: str, absent: frozenset | set = frozenset()
) -> None:
    """Stop with a message naming the loss when any loss of this chunk is NaN/Inf.

    `absent` names columns with no value in this chunk (no gradient step yet): their NaN is
    not divergence. The chunk's rows and state are dropped: metrics.csv and the last
    checkpoint stay the last good ones (or, before the first checkpoint, the message says
    there is none)."""
    for row in rows:
        bad = [
            k for k, v in row.items() if "loss" in k and k not in absent and not math.isfinite(v)
        ]
        if bad:
            latest = ckpt.latest_step()
            store.write_status("diverged", global_step=row["global_step"], losses=bad)
            hp = {k: v for k, v in row.items() if k.startswith("hp/")}
            if latest is None:
                kept = (
                    f"{run_dir} has no checkpoint yet (the first is due at checkpoint.every), so "
                    "there is nothing to resume: fix the cause (e.g. a smaller agent.lr) and "
                    f"train again into a new run_dir, or remove {run_dir} first."
                )
            else:
                kept = f"{run_dir} keeps its last good checkpoint (chunk {latest}) and metrics."
            raise NonFiniteLoss(
                f"non-finite loss {bad[0]}={row[bad[0]]} (all: {', '.join(bad)}) in the chunk "
                f"ending at global_step {row['global_step']}, seed {row['seed']}, grid "
                f"{row['grid']} {hp}. Stopped. {kept}"
            )


def transition_saver(cfg: TrainConfig, agent, upc: int):
    """logger.save_transitions: after each chunk, append the replay rows it wrote (seed 0)."""
    from rl_aux.dataset import TransitionWriter

    replay = getattr(agent, "rows", None)
    if replay is None:
        raise ConfigError("logger.save_transitions=true needs a replay-based agent (agent=dqn)")
    if upc > replay:
        raise ConfigError(
            f"logger.save_transitions: a chunk writes {upc} replay rows but the buffer holds "
            f"{replay}; raise agent.buffer_size or lower logger.log_interval"
        )
    spec = agent.spec
    writer = TransitionWriter(
        os.path.join(cfg.run_dir, "transitions"),
        spec.obs_shape,
        np.dtype(spec.obs_dtype).name,
        spec.num_actions,
        cfg.env.name,
        store_dtype="auto",
        source=f"rl-aux run {cfg.run_dir} ({cfg.label}), seed {cfg.seed}",
    )

    def save(state, rows: int) -> None:
        data = state.replay.data
        idx = (int(state.replay.pos) - rows + np.arange(rows)) % replay
        batch = jax.tree.map(lambda x: np.asarray(x[0][idx]), data)  # seed 0, [rows, N, ...]
        flat = {
            f: getattr(batch, f).reshape((-1,) + getattr(batch, f).shape[2:])
            for f in ("obs", "action", "reward", "terminated", "truncated", "next_obs")
        }
        writer.write(flat)

    return save


class ResumeMismatch(ValueError):
    """resume=true with a config that differs from the stored run's (exit code 2)."""


# keys a resumed run may change without changing what it computes; run_dir is where the run
# is, not what it computes: a moved or copied run dir resumes
_RESUME_FREE = {
    "resume",
    "run_dir",
    "logger.progress",
    "logger.wandb.mode",
    "checkpoint.keep",
    "run_batching",
}
HOST_ENV_FAMILIES = ("nethack/", "minihack/")  # host-stepped envs (agents/host_loop.py)
RUN_MARKERS = ("config.yaml", "metrics.csv", "checkpoints")  # what a started run leaves


def has_run(run_dir: str) -> bool:
    """run_dir holds a started run (what resume=true continues and resume=auto looks for)."""
    return any(os.path.exists(os.path.join(run_dir, m)) for m in RUN_MARKERS)


def resolve_resume(cfg: TrainConfig) -> bool:
    """resume=true|false|auto -> resume or not; resume=true with nothing to resume is an error.

    auto resumes when run_dir holds a run and starts fresh otherwise (launchers and sweeps
    relaunch the same command); true insists, so a mistyped run_dir is not silently a new run."""
    if cfg.resume == "auto":
        return has_run(cfg.run_dir)
    if cfg.resume is True and not has_run(cfg.run_dir):
        if not os.path.exists(cfg.run_dir):
            what = "does not exist"
        elif not os.listdir(cfg.run_dir):
            what = "is empty"
        else:
            what = f"holds no run (none of {', '.join(RUN_MARKERS)})"
        raise ConfigError(
            f"resume=true but run_dir={cfg.run_dir!r} {what}: nothing to resume. Accepted: "
            "resume=true with the run_dir of a started run, resume=auto (resume if run_dir "
            "holds a run, else start fresh), or resume=false (start a new run)"
        )
    return bool(cfg.resume)


def check_runner_supports(cfg: TrainConfig, offline: bool) -> None:
    """Refuse what the host loop (NetHack/MiniHack) and offline learners cannot do yet, before
    any NLE worker starts or anything compiles: grid.*, and resume=true (or auto on a run)."""
    resume = cfg.resume is True or (cfg.resume == "auto" and has_run(cfg.run_dir))
    if offline and resume:
        raise ConfigError(
            f"resume={str(cfg.resume).lower()}: agent={cfg.agent_name} trains offline and keeps no "
            f"checkpoints (docs/pvn.md), so it cannot resume run_dir={cfg.run_dir!r}. Accepted: "
            "resume=false (or auto) with a new or empty run_dir"
        )
    if not cfg.env.name.startswith(HOST_ENV_FAMILIES):
        return
    if cfg.grid:
        key, values = next(iter(cfg.grid.items()))
        raise ConfigError(
            f"grid.{key}={values}: env={cfg.env.name} is trained by the host loop "
            "(agents/host_loop.py), which runs one hyperparameter point, so grid.* is not "
            "accepted on nethack/* and minihack/* envs. Accepted: no grid.* override; sweep "
            f"separate runs instead, e.g. rl-aux sweep env={cfg.env.name} agent.lr=a,b"
        )
    if resume:
        raise ConfigError(
            f"resume={str(cfg.resume).lower()}: env={cfg.env.name} is trained by the host loop "
            f"(agents/host_loop.py), which keeps no checkpoints yet, so it cannot resume "
            f"run_dir={cfg.run_dir!r}. Accepted on nethack/* and minihack/* envs: resume=false "
            "(or auto) with a new or empty run_dir"
        )


def _relocated(value: Any, old_dir: str, new_dir: str) -> Any:
    """A stored value with paths under the old run_dir rewritten under the new one."""
    if isinstance(value, list):
        return [_relocated(v, old_dir, new_dir) for v in value]
    if isinstance(value, str) and old_dir and (value + "/").startswith(old_dir.rstrip("/") + "/"):
        return new_dir.rstrip("/") + value[len(old_dir.rstrip("/")) :]
    return value


def check_resumable(run_dir: str, resolved: dict) -> None:
    """Refuse to resume a run whose stored config.yaml differs in anything that matters.

    The location is not compared: run_dir, and paths under it, may differ (a moved copy)."""
    import yaml

    path = os.path.join(run_dir, "config.yaml")
    if not os.path.exists(path):
        return
    with open(path) as f:
        old = flatten_dict(yaml.safe_load(f) or {})
    new = flatten_dict(resolved)
    old_dir = old.get("run_dir")
    if isinstance(old_dir, str):
        old = {k: _relocated(v, old_dir, str(new.get("run_dir", ""))) for k, v in old.items()}
    diff = sorted(
        k
        for k in set(old) | set(new)
        if k not in _RESUME_FREE and not k.startswith("distributed.") and old.get(k) != new.get(k)
    )
    if diff:
        shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:5])
        raise ResumeMismatch(
            f"resume=true but the config differs from {path} ({shown}). Resume with the "
            "same settings, or start a new run_dir."
        )


def _columns(agent, axes, state, upc: int, hps: list[dict]) -> list[str]:
    """metrics.csv columns, fixed before the first row from the chunk's output shapes."""
    _, m = jax.eval_shape(vmapped_chunk(agent, axes, upc, donate=False), state)
    skip = {"episodes", "episode_return_sum", "episode_length_sum"}
    metric_cols = sorted(k if "/" in k else f"charts/{k}" for k in m if k not in skip)
    head = [
        "global_step",
        "seed",
        "grid",
        *_flat_hp(hps[0]).keys(),
        "charts/episodic_return",
        "charts/episodic_length",
        "charts/episodes",
        "eval/episodic_return",
    ]
    return head + [c for c in metric_cols if c not in head] + list(WALL_CLOCK_COLUMNS)


def _summary(cfg: TrainConfig, path: str) -> dict:
    """Per (grid, seed): mean episodic return over the last 10% of steps, last eval return."""
    import pandas as pd

    df = pd.read_csv(path)
    cut = df["global_step"].max() * 0.9
    out = {}
    for (g, s), d in df.groupby(["grid", "seed"]):
        tail = d[d["global_step"] > cut]
        ev = d["eval/episodic_return"].dropna()
        w = tail["charts/episodes"].to_numpy()
        r = tail["charts/episodic_return"].fillna(0).to_numpy()
        out[(int(g), int(s))] = {
            "final_return": float((w * r).sum() / w.sum()) if w.sum() > 0 else math.nan,
            "eval_return": float(ev.iloc[-1]) if len(ev) else math.nan,
        }
    return {"run_dir": cfg.run_dir, "label": cfg.label, "per_seed": out}


def _format_summary(cfg: TrainConfig, summary: dict, hps: list[dict]) -> str:
    """The end-of-run table; each grid point named by its values (lr=1e-3, a.weight=0.1)."""
    names = grid_labels([flat_hparams(hp) for hp in hps])
    lines = [
        f"[{cfg.label}] done -> {cfg.run_dir}",
        "  grid seed  return(last 10%)  eval_return  hparams",
    ]
    for (g, s), v in summary["per_seed"].items():
        lines.append(
            f"  {g:>4} {s:>4}  {v['final_return']:>15.2f}  {v['eval_return']:>11.2f}  {names[g]}"
        )
    return "\n".join(lines)


class _LineProgress:
    """Progress for logs (no TTY): one line per ~10% of the run instead of a redrawn bar."""

    def __init__(self, total: int, initial: int, label: str):
        self.total, self.n, self.label, self.post = total, initial, label, {}
        self.t0, self.next = time.time(), initial + total // 10

    def set_postfix(self, post: dict) -> None:
        self.post = post

    def update(self, n: int) -> None:
        self.n += n
        if self.n >= self.next or self.n >= self.total:
            self.next += self.total // 10
            extra = " ".join(f"{k}={v}" for k, v in self.post.items())
            print(
                f"[{self.label}] {self.n}/{self.total} steps ({100 * self.n / self.total:.0f}%, "
                f"{time.time() - self.t0:.0f}s) {extra}",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        pass


def _progress(cfg: TrainConfig, quiet: bool, initial: int):
    if quiet or not cfg.logger.progress:
        return None
    if not sys.stderr.isatty():
        return _LineProgress(cfg.total_timesteps, initial, cfg.label)
    from tqdm import tqdm

    return tqdm(
        total=cfg.total_timesteps,
        initial=initial,
        unit="step",
        unit_scale=True,
        desc=cfg.label,
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=1.0,
    )


def _advance(bar, n: int, rows: list[dict]) -> None:
    if bar is None:
        return
    ret = [r["charts/episodic_return"] for r in rows if not math.isnan(r["charts/episodic_return"])]
    post = {"sps": f"{rows[0]['charts/sps']:.0f}"}
    if ret:
        post["return"] = f"{np.mean(ret):.1f}"
    ev = [r.get("eval/episodic_return") for r in rows if "eval/episodic_return" in r]
    if ev:
        post["eval"] = f"{np.mean(ev):.1f}"
    bar.set_postfix(post)
    bar.update(n)


def run_experiment(cfg: TrainConfig, overrides: list[str], quiet: bool = False) -> list[dict]:
    """Run cfg, or each of its variants (into run_dir/<label>), then plot if asked."""
    from experiments.config import load_config, torso_name

    host = cfg.env.name.startswith(("nethack/", "minihack/"))
    blend_ok = cfg.reward_name == "blend" and cfg.agent_name == "ppo"
    text_ok = cfg.reward_name in TEXT_REWARDS and cfg.agent_name in ("ppo", "dqn") and host
    if cfg.reward_name != "env" and not (blend_ok or text_ok):  # not in these loops yet
        raise ConfigError(
            f"reward={cfg.reward_name} is not wired into `rl-aux train` for agent="
            f"{cfg.agent_name} on env {cfg.env.name!r} yet: training would silently use the "
            "env reward. Accepted here: reward=env; reward=blend with agent=ppo; "
            f"reward={'|'.join(TEXT_REWARDS)} with agent=ppo|dqn on nethack/ and minihack/ envs "
            "(docs/llm-subgoal-rewards.md, docs/bilevel-and-balancers.md)"
        )
    configure_cpu_threads(cfg.cpu_threads, torso_name(cfg.agent))
    results = []
    if cfg.variants:
        base = (
            cfg.run_dir
            if cfg.run_dir != os.path.join("runs", cfg.experiment, cfg.label)
            else os.path.join("runs", cfg.experiment)
        )
        dirs = {label: os.path.join(base, label) for label in cfg.variants}
        resume = cfg.resume
        if resume is True:  # the experiment must have started; its unstarted variants start
            if not any(has_run(d) for d in dirs.values()):
                raise ConfigError(
                    f"resume=true but no variant of experiment {cfg.experiment!r} has started "
                    f"under {base!r} (looked for {', '.join(dirs.values())}): nothing to "
                    "resume. Accepted: resume=true after a started run, resume=auto, or "
                    "resume=false"
                )
            resume = "auto"
        for label, extra in cfg.variants.items():
            vcfg = load_config([*overrides, *extra, f"label={label}"])
            vcfg = dataclasses.replace(vcfg, run_dir=dirs[label], variants={}, resume=resume)
            results.append(run(vcfg, quiet))
        plot_root = base
    else:
        results.append(run(cfg, quiet))
        plot_root = cfg.run_dir
    if cfg.plot:
        from experiments import plot

        out = os.path.join(plot_root, "plots")
        metric = "charts/episodic_return"
        rc = plot.main([plot_root, "--out", out, "--metric", metric])
        if rc != 0:
            raise RuntimeError(f"rl-aux plot failed with exit code {rc}")
    return results
