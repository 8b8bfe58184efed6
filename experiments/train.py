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

from agents.registry import agent_class, is_offline
from envs import make_env
from envs.registry import env_family
from experiments import doc_test
from experiments.compose import TEXT_REWARDS, TrainConfig, flatten_dict
from experiments.hp_labels import flat_hparams, grid_labels
from rl_aux.cpu_threads import configure_cpu_threads
from rl_aux.evaluation import evaluate
from rl_aux.heads.base import head_class
from rl_aux.learner import learned_mean
from rl_aux.multihost import check_split
from rl_aux.rewards import reward_class
from rl_aux.run_loop import (
    WALL_CLOCK_COLUMNS,
    Chunk,
    RunLoop,
    RunPlan,
    already_finished,
    return_summary,
)
from rl_aux.run_store import say, scrub_secrets
from rl_aux.sharding import (
    AXIS,
    maybe_initialize_distributed,
    per_device,
    run_mesh,
    run_shardings,
    specs,
    to_host,
)
from rl_aux.typed_config import BALANCER_GRID, REWARD_GRID, ConfigError
from rl_aux.vectorize import batch_runs, vmapped_chunk, vmapped_init


def build_agent(cfg: TrainConfig):
    """The env, heads and agent a config describes (no compilation yet)."""
    agent_cls = agent_class(cfg.agent_name)
    options = cfg.env.options
    host_blend = cfg.reward_name == "blend" and env_family(cfg.env.name).host_stepped
    if cfg.reward_name in TEXT_REWARDS or host_blend:  # host sources read extra NLE arrays
        from agents.host_loop import source_host_keys

        options = dict(options or {})
        keys = tuple(options.get("host_keys", ()))
        need = source_host_keys(cfg.reward_name, getattr(cfg.reward, "sources", ()))
        options["host_keys"] = keys + tuple(k for k in need if k not in keys)
    env = make_env(cfg.env.name, cfg.agent.num_envs, options, seed=cfg.seed)
    heads = [head_class(name)(hcfg, env.spec) for name, hcfg in cfg.heads.items()]
    kw = {}  # JAX envs: the learner applies the reward module (rl_aux/rewards/hook.py)
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
            if key.endswith(".weight") and not key.startswith((BALANCER_GRID, REWARD_GRID)):
                hp["aux_weights"][key.split(".")[0]] = float(v)
            else:  # lr, a float field of the learner config (rl_aux/learner.hp reads it), or
                # balancer.<opt> / reward.<opt> (learner.balancer_at, rewards.base.reward_at)
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

    Metrics named by `learn_prefixes` average over the updates `learned` marks (NaN if none);
    `charts/success` is the episode-weighted success rate of the window (docs/metrics.md)."""
    m = {k: np.asarray(v) for k, v in m.items()}
    eps_u = m.pop("episodes")
    eps = eps_u.sum(1)
    ret = m.pop("episode_return_sum").sum(1)
    length = m.pop("episode_length_sum").sum(1)
    wins = success_counts(m.pop("charts/success"), eps_u).sum(1) if "charts/success" in m else None
    rows = []
    for i, (seed, grid) in enumerate(zip(seeds, grids, strict=True)):
        row = {"global_step": step, "seed": seed, "grid": grid, **_flat_hp(hps[grid])}
        row["charts/episodic_return"] = float(ret[i] / eps[i]) if eps[i] > 0 else math.nan
        row["charts/episodic_length"] = float(length[i] / eps[i]) if eps[i] > 0 else math.nan
        row["charts/episodes"] = int(eps[i])
        if wins is not None:
            row["charts/success"] = float(wins[i] / eps[i]) if eps[i] > 0 else math.nan
        for k, v in m.items():
            name = k if "/" in k else f"charts/{k}"
            gated = learned is not None and bool(learn_prefixes) and k.startswith(learn_prefixes)
            row[name] = learned_mean(v[i], learned) if gated else float(v[i].mean())
        rows.append(row)
    return rows


def success_counts(rate: np.ndarray, episodes: np.ndarray) -> np.ndarray:
    """Successful episodes per update from the learner's per-update success rate (PPO logs
    successes / max(episodes, 1)); exact, as both are small integer counts."""
    return np.rint(np.asarray(rate, np.float64) * np.maximum(episodes, 1))


@dataclasses.dataclass(frozen=True)
class Schedule:
    """How a jitted run splits into chunks (one compiled call each) and when it evaluates."""

    spu: int  # env steps per update, per run
    num_updates: int
    upc: int  # updates per chunk
    n_chunks: int
    eval_every: int
    ckpt_every: int

    def step(self, c: int) -> int:
        """Each run's global_step after chunk c (-1: before the first)."""
        return min((c + 1) * self.upc, self.num_updates) * self.spu


def schedule(cfg: TrainConfig, agent) -> Schedule:
    """The chunking of cfg's budget; exit 2 when it is less than one update."""
    spu = agent.steps_per_update
    num_updates = cfg.total_timesteps // spu
    if num_updates < 1:
        raise ConfigError(
            f"total_timesteps={cfg.total_timesteps} is less than one update; accepted: >= {spu} "
            f"(the env steps of one agent={cfg.agent_name} update with these agent.* settings)"
        )
    log_steps = cfg.logger.log_interval or max(cfg.total_timesteps // 100, spu)
    upc = max(1, min(num_updates, round(log_steps / spu)))
    return Schedule(
        spu,
        num_updates,
        upc,
        math.ceil(num_updates / upc),
        cfg.eval.every or max(cfg.total_timesteps // 10, 1),
        cfg.checkpoint.every or max(cfg.total_timesteps // 10, 1),
    )


def run_plan(cfg: TrainConfig, quiet: bool, total_steps: int, **kw) -> RunPlan:
    """The run loop's settings from a train config."""
    return RunPlan(
        run_dir=cfg.run_dir,
        label=cfg.label,
        resume=bool(cfg.resume),
        total_steps=total_steps,
        ckpt_every=cfg.checkpoint.every or max(cfg.total_timesteps // 10, 1),
        keep=cfg.checkpoint.keep,
        quiet=quiet,
        progress=cfg.logger.progress,
        **kw,
    )


def run(cfg: TrainConfig, quiet: bool = False) -> dict:
    """Train one configuration (all seeds and grid points) into cfg.run_dir."""
    agent_cls = agent_class(cfg.agent_name)
    offline = agent_cls.run_offline if is_offline(agent_cls) else None
    check_runner_supports(cfg, offline is not None)  # before NLE workers start or any compile
    cfg = dataclasses.replace(cfg, resume=resolve_resume(cfg))
    d = cfg.distributed
    maybe_initialize_distributed(d.coordinator_address, d.num_processes, d.process_id, d.enabled)
    check_split(
        cfg.num_seeds * math.prod(len(v) for v in cfg.grid.values()), one_host(cfg, offline)
    )
    if offline is not None:  # offline learners (no env stepping): their chunks, our loop
        if doc_test.enabled():
            print(f"{doc_test.ENV_VAR}=1: offline learner, budget NOT capped", file=sys.stderr)
        resolved = _checked_config(cfg)
        if already_finished(cfg.run_dir, bool(cfg.resume)):
            say(quiet, f"[{cfg.label}] already finished: {cfg.run_dir} (skipped)")
            return {"run_dir": cfg.run_dir, "label": cfg.label, "skipped": True}
        return offline(cfg, quiet, resolved)
    env, agent = build_agent(cfg)
    capped = doc_test.cap(cfg, agent.steps_per_update)  # unchanged unless RL_AUX_DOC_TEST=1
    if capped is not cfg:
        cfg = capped
        agent.total_updates = max(cfg.total_timesteps // agent.steps_per_update, 1)
    resolved = _checked_config(cfg)
    if already_finished(cfg.run_dir, bool(cfg.resume)):  # a relaunched sweep skips it
        say(quiet, f"[{cfg.label}] already finished: {cfg.run_dir} (skipped)")
        if getattr(env, "host_stepped", False):
            env.close()
        return return_summary(cfg.run_dir, cfg.label)
    if getattr(env, "host_stepped", False):  # NLE/MiniHack: jitted act + update, host loop
        from agents.host_loop import run_host

        return run_host(cfg, env, agent, quiet, resolved)
    if cfg.run_batching == "map" and getattr(env, "host_state", False):
        raise ConfigError(
            f"run_batching=map: env {cfg.env.name} keeps its emulators on the host, one vector "
            "env for all seeds, so the runs cannot go one after another; accepted here: vmap"
        )
    return run_jitted(cfg, env, agent, quiet, resolved)


def one_host(cfg: TrainConfig, offline: object) -> tuple[str, ...]:
    """The settings of cfg that keep state or files on one host (refused multi-process)."""
    out = [f"agent={cfg.agent_name}"] * (offline is not None)
    family = env_family(cfg.env.name)
    out += [f"env={cfg.env.name}"] * (family.host_stepped or cfg.env.name.startswith("atari/"))
    out += ["logger.save_transitions=true"] * bool(cfg.logger.save_transitions)
    return tuple(out)


def _checked_config(cfg: TrainConfig) -> dict:
    """The resolved config to store; on resume, refused when it differs from the stored one."""
    resolved = scrub_secrets(cfg.to_yaml_dict())
    if cfg.resume:
        check_resumable(cfg.run_dir, resolved)
    return resolved


@dataclasses.dataclass
class Runs:
    """The seed x grid-point runs one program trains: their labels, keys and hparams."""

    hps: list[dict]
    seeds: list[int]  # per run
    grids: list[int]  # per run
    keys: Any
    hp_batch: Any


def runs_of(cfg: TrainConfig, agent) -> Runs:
    hps = grid_points(cfg, agent.default_hparams())
    seeds = [cfg.seed + s for s in range(cfg.num_seeds)]
    flat_seeds = [s for _ in hps for s in seeds]
    flat_grids = [g for g in range(len(hps)) for _ in seeds]
    keys = jnp.stack([jax.random.PRNGKey(s) for s in flat_seeds])
    return Runs(hps, flat_seeds, flat_grids, keys, stack_hparams([hps[g] for g in flat_grids]))


def init_runs(agent, runs: Runs):
    """The vmapped initial state (split over devices when there are several), axes, mesh."""
    init_fn, axes = vmapped_init(agent, runs.keys[0], runs.hps[0])
    mesh = run_mesh(len(runs.seeds))  # >1 device: split the seed/grid axis over them
    if mesh is not None:  # each device initialises its own slice of runs
        split = jax.sharding.PartitionSpec(AXIS)
        vinit = jax.vmap(agent.init, out_axes=axes)
        init_fn = jax.jit(per_device(vinit, mesh, (split, split), specs(axes)))
    return init_fn(runs.keys, runs.hp_batch), axes, mesh


def restore_jitted(loop: RunLoop, state, env, mesh, axes):
    """(state, checkpoint meta) of a resumed run, host emulators rewound; (state, None) fresh."""
    got = loop.restore(state)
    if got is None:
        return state, None
    fresh = state
    state, meta = got
    if mesh is not None:
        state = jax.device_put(state, run_shardings(mesh, axes))
    restore_host = getattr(env, "restore_host_state", None)
    if restore_host is not None:  # host emulators (Atari): back to the saved state
        jax.block_until_ready(fresh)  # init's emulator reset must not race the replay
        restore_host(state.env_state, getattr(state, "obs", None))
    return state, meta


def compile_jitted(cfg: TrainConfig, agent, env, state, axes, mesh, sch: Schedule, runs: Runs):
    """The compiled chunk programs (full and last) and the compiled evaluation."""
    chunk = functools.partial(vmapped_chunk, agent, axes, mesh=mesh, batching=cfg.run_batching)
    compiled = chunk(sch.upc).lower(state).compile()
    last = sch.num_updates - (sch.n_chunks - 1) * sch.upc
    compiled_last = compiled if last == sch.upc else chunk(last).lower(state).compile()
    eval_env = make_env(cfg.env.name, cfg.eval.episodes, cfg.env.options)
    eval_steps = cfg.eval.max_steps or env.spec.max_episode_steps
    eval_fn = batch_runs(
        lambda p, k: evaluate(agent, eval_env, p, k, cfg.eval.epsilon, eval_steps),
        cfg.run_batching,
    )
    split = jax.sharding.PartitionSpec(AXIS)
    eval_fn = jax.jit(per_device(eval_fn, mesh, (split, split), split))
    return compiled, compiled_last, eval_fn.lower(state.params, runs.keys).compile()


def run_jitted(cfg: TrainConfig, env, agent, quiet: bool, resolved: dict) -> dict:
    """The jitted path: vmap(agent.train_chunk) over seeds and grid points, chunk by chunk."""
    sch, runs = schedule(cfg, agent), runs_of(cfg, agent)
    with RunLoop(run_plan(cfg, quiet, cfg.total_timesteps), resolved) as loop:
        t0 = time.time()
        state, axes, mesh = init_runs(agent, runs)
        state, restored = restore_jitted(loop, state, env, mesh, axes)
        start = 0 if restored is None else int(restored["chunk"]) + 1
        compiled, compiled_last, eval_fn = compile_jitted(
            cfg, agent, env, state, axes, mesh, sch, runs
        )
        compile_s = time.time() - t0
        meta = {
            "compile_s": compile_s,
            "num_updates": sch.num_updates,
            "updates_per_chunk": sch.upc,
            "steps_per_update": sch.spu,
            "run_devices": 1 if mesh is None else mesh.size,  # devices the runs split over
        }
        done = sch.step(start - 1) if start else 0
        loop.start(_columns(agent, axes, state, sch.upc, runs.hps), meta, restored, done)
        loop.store.start_wandb(
            cfg.logger.wandb.mode,
            cfg.logger.wandb.project,
            cfg.logger.wandb.entity,
            cfg.label,
            resolved,
            [(s, g, runs.hps[g]) for s, g in zip(runs.seeds, runs.grids, strict=True)],
        )
        say(
            quiet,
            f"[{cfg.label}] {cfg.env.name}: {len(runs.hps)} grid point(s) x {cfg.num_seeds} "
            f"seed(s), {sch.num_updates} updates of {sch.spu} steps; compiled in {compile_s:.1f}s",
        )
        box = {"state": state}

        def chunk_fn(c: int) -> Chunk:
            fn = compiled_last if c == sch.n_chunks - 1 else compiled
            box["state"], m = fn(box["state"])
            return jitted_chunk(agent, to_host(m), c, sch, runs, box["state"])

        def eval_rows(c: int, out: Chunk) -> np.ndarray:
            ek = jnp.stack(
                [jax.random.fold_in(jax.random.PRNGKey(s + 10_007), c) for s in runs.seeds]
            )
            return np.asarray(to_host(eval_fn(out.state.params, ek))).mean(-1)

        saver = transition_saver(cfg, agent, sch.upc) if cfg.logger.save_transitions else None
        on_logged = None
        if saver is not None:
            on_logged = lambda c, out: saver(out.state, (out.step - out.prev_step) // sch.spu)
        loop.run(range(start, sch.n_chunks), chunk_fn, eval_rows, sch.eval_every, on_logged)
        loop.finish()
    summary = return_summary(cfg.run_dir, cfg.label)
    say(quiet, _format_summary(cfg, summary, runs.hps))
    return summary


def jitted_chunk(agent, m: dict, c: int, sch: Schedule, runs: Runs, state) -> Chunk:
    """Chunk c's rows from its metrics [runs, updates], the NaN-exempt columns, its state."""
    prev, step = sch.step(c - 1) if c else 0, sch.step(c)
    learned = learned_updates(agent, c * sch.upc + 1, (step - prev) // sch.spu)
    prefixes = getattr(agent, "LEARN_METRIC_PREFIXES", ())
    rows = _chunk_rows(m, step, runs.seeds, runs.grids, runs.hps, learned, prefixes)
    absent = {k if "/" in k else f"charts/{k}" for k in absent_metrics(agent, m, learned)}
    return Chunk(rows, prev, step, state, absent=frozenset(absent))


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
    """Refuse what the host loop (NetHack/MiniHack) cannot do, before any NLE worker starts
    or anything compiles: grid.*, and resuming a run whose host reward source keeps state
    outside the checkpoint."""
    if not env_family(cfg.env.name).host_stepped:  # the host loop (agents/host_loop.py)
        return
    if cfg.grid:
        key, values = next(iter(cfg.grid.items()))
        raise ConfigError(
            f"grid.{key}={values}: env={cfg.env.name} is trained by the host loop "
            "(agents/host_loop.py), which runs one hyperparameter point, so grid.* is not "
            "accepted on nethack/* and minihack/* envs. Accepted: no grid.* override; sweep "
            f"separate runs instead, e.g. rl-aux sweep env={cfg.env.name} agent.lr=a,b"
        )
    resume = cfg.resume is True or (cfg.resume == "auto" and has_run(cfg.run_dir))
    if resume and cfg.reward_name != "env":
        raise ConfigError(
            f"resume={str(cfg.resume).lower()} with reward={cfg.reward_name}: on env="
            f"{cfg.env.name} the reward's host source (captions, labels, per-episode state) is "
            "not checkpointed, so a resumed run would not continue the same computation. "
            "Accepted on nethack/* and minihack/* envs: resume with reward=env, or resume=false "
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


def run_experiment(cfg: TrainConfig, overrides: list[str], quiet: bool = False) -> list[dict]:
    """Run cfg, or each of its variants (into run_dir/<label>), then plot if asked."""
    from experiments.compose import gradient_batch, load_config, torso_name

    text_obs = env_family(cfg.env.name).text_observations
    blend_ok = cfg.reward_name == "blend" and cfg.agent_name == "ppo"
    text_ok = cfg.reward_name in TEXT_REWARDS and cfg.agent_name in ("ppo", "dqn") and text_obs
    if cfg.reward_name != "env" and not (blend_ok or text_ok):  # not in these loops yet
        raise ConfigError(
            f"reward={cfg.reward_name} is not wired into `rl-aux train` for agent="
            f"{cfg.agent_name} on env {cfg.env.name!r} yet: training would silently use the "
            "env reward. Accepted here: reward=env; reward=blend with agent=ppo; "
            f"reward={'|'.join(TEXT_REWARDS)} with agent=ppo|dqn on nethack/ and minihack/ envs "
            "(docs/llm-subgoal-rewards.md, docs/bilevel-and-balancers.md)"
        )
    configure_cpu_threads(cfg.cpu_threads, torso_name(cfg.agent), gradient_batch(cfg.agent))
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
