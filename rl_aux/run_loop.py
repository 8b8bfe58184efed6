"""The one run loop every trainer uses: jitted chunks, host-stepped envs, offline pre-training.

A trainer hands `RunLoop.run` a chunk callback: it advances every run by one logging window
and returns the window's metric rows and the state a checkpoint keeps (`Chunk`). The loop owns
the rest, the same for every path: the run store (config.yaml, meta.json, metrics.csv,
status.json with the real global_step after every chunk), evaluation and checkpoint cadence,
resume (rows after the restored checkpoint are dropped, so none is lost or duplicated),
progress, SIGTERM/SIGINT (checkpoint at the chunk end, then `Preempted`), the NaN stop
(`NonFiniteLoss`, the chunk's rows and state dropped) and the end-of-run summary. Column
meanings: docs/metrics.md.

A compiled chunk cannot be interrupted, so the signal handler only sets a flag; the loop checks
it after every chunk (the CLI exits 128 + signal, the convention SLURM and shells use). A second
signal stops at once (the default behaviour).

Several jax processes (jax.distributed, rl_aux/multihost.py) run the same loop: every one runs
the same chunks, gathers and checkpoint saves; only process 0 writes the run store; a signal
that reaches some of them is agreed by all after the chunk (`StopFlag.sync`), so they all
checkpoint the same chunk and stop together.
"""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

import jax
import numpy as np

from rl_aux.checkpoint import Checkpointer
from rl_aux.multihost import agree_max, barrier, open_run_store
from rl_aux.run_store import RunStore, run_status, say

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
WALL_CLOCK_COLUMNS = ("charts/sps", "time/elapsed_s")  # the only non-deterministic columns


class Preempted(RuntimeError):
    """Training stopped on a signal after checkpointing; relaunch with resume=true."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class NonFiniteLoss(RuntimeError):
    """A loss became NaN/Inf; the run stopped and kept its last good checkpoint."""


class StopFlag:
    """Context manager: while active, SIGTERM/SIGINT set `self.signum` instead of killing.

    With several jax processes (jax.distributed) a signal may reach them at different chunks;
    the handler then only records it and `sync` (called once per chunk by every process) sets
    `signum` on all of them at once, so they all checkpoint the same chunk and stop together."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._pending: int | None = None
        self._agreed = False
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None or self._pending is not None:  # second: stop now
            self._restore()
            signal.raise_signal(signum)
            return
        if self._agreed:
            self._pending = signum
        else:
            self.signum = signum

    def sync(self) -> None:
        """Multi-process: `signum` becomes the largest signal any process got (collective)."""
        if self._agreed:
            self.signum = agree_max(self._pending or 0) or None

    def __enter__(self) -> StopFlag:
        self._agreed = jax.distributed.is_initialized()  # never starts a backend itself
        if threading.current_thread() is threading.main_thread():  # handlers: main thread only
            for s in STOP_SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def _restore(self) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)  # type: ignore[arg-type]
        self._previous.clear()

    def __exit__(self, *exc) -> None:
        self._restore()


@dataclasses.dataclass
class Chunk:
    """What one chunk callback returns: rows of the window and what a checkpoint keeps."""

    rows: list[dict]  # one per run: global_step, seed, grid, metrics (no wall-clock columns)
    prev_step: int  # each run's global_step before the chunk
    step: int  # ... and after it
    state: Any  # the pytree a checkpoint saves (restored into `like` on resume)
    meta: dict = dataclasses.field(default_factory=dict)  # JSON kept beside it (host replay)
    absent: frozenset = frozenset()  # columns with no value this chunk (their NaN is no stop)
    final: bool = False  # last chunk of a run (host loop: of one seed): always checkpointed


def crossed(prev: int, step: int, every: int) -> bool:
    """A multiple of `every` lies in (prev, step]: the cadence of evaluation and checkpoints."""
    return step // every > prev // every


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """The loop's settings, from the trainer's config."""

    run_dir: str
    label: str
    resume: bool
    total_steps: int  # progress bar total (all seeds when they run one after another)
    ckpt_every: int
    keep: int = 2
    quiet: bool = False
    progress: bool = True
    progress_keys: tuple = (("return", "charts/episodic_return"), ("eval", "eval/episodic_return"))


class RunLoop:
    """Store, checkpoints, signals and the chunk loop of one run dir; see the module doc."""

    def __init__(self, plan: RunPlan, config: dict):
        self.plan = plan
        self.store: RunStore = open_run_store(plan.run_dir, plan.resume)  # writes: process 0
        self.store.write_config(config)
        self.ckpt = Checkpointer(os.path.join(plan.run_dir, "checkpoints"), plan.keep)
        self.stop = StopFlag()
        self.done_steps = 0
        self._bar: Any = None
        self._opened = False
        self._restored: dict | None = None
        self._t_start = time.time()

    def __enter__(self) -> RunLoop:
        self.stop.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.__exit__(*exc)
        if self._bar is not None:
            self._bar.close()
        self.store.close()
        self.ckpt.close()

    # ------------------------------------------------------------------ start
    def restore(self, like: Any) -> tuple[Any, dict] | None:
        """The newest intact checkpoint as (state, meta), None when there is none yet."""
        if not self.plan.resume:
            return None
        got = self.ckpt.restore_latest(like)  # CheckpointDamaged when no checkpoint is intact
        for bad in got.damaged:  # one line each, quiet or not: the run lost some progress
            print(
                f"rl-aux train: warning: checkpoint step {bad.step} is damaged "
                f"({bad.describe()}); moved to {got.moved_to}, resuming from step {got.step}",
                file=sys.stderr,
                flush=True,
            )
        if got.step is None:
            say(self.plan.quiet, f"resuming {self.plan.run_dir}: no checkpoint yet, from step 0")
            return None
        say(
            self.plan.quiet,
            f"resuming {self.plan.run_dir} after chunk {got.meta['chunk']} "
            f"(step {got.meta['global_step']})",
        )
        return got.state, got.meta

    def start(
        self, columns: list[str] | None, meta: dict, restored: dict | None, done: int
    ) -> None:
        """Open metrics.csv (on resume: keep the rows up to the checkpoint), write meta.json.

        `columns` None: the first chunk's row keys (then the wall-clock columns).
        `restored`: the checkpoint meta resumed from (None: a fresh start); `done`: the steps
        already done towards `total_steps` (the progress bar's start)."""
        self._restored = restored
        if columns is not None:
            self._open(columns)
        self.store.write_meta(meta)
        self.done_steps = 0 if restored is None else int(restored["global_step"])
        self.store.write_status("running", global_step=self.done_steps)
        self._bar = progress_bar(self.plan, done)
        self._t_start = time.time()

    def _open(self, columns: list[str]) -> None:
        restored = self._restored
        if restored is None:
            self.store.open_metrics(columns, None)
        elif "rows" in restored:
            self.store.open_metrics(columns, None, keep_rows=int(restored["rows"]))
        else:  # a checkpoint written before row counts were kept (one global_step per chunk)
            self.store.open_metrics(columns, int(restored["global_step"]))
        self._opened = True

    # ------------------------------------------------------------------ the loop
    def run(
        self,
        chunks: Sequence[int],
        chunk_fn: Callable[[int], Chunk],
        evaluate: Callable[[int, Chunk], Sequence[float]] | None = None,
        eval_every: int = 1,
        on_logged: Callable[[int, Chunk], None] | None = None,
    ) -> None:
        """chunk_fn(c) for each c; rows evaluated at `eval_every` and at the end, logged,
        passed to `on_logged` (e.g. the transition saver), checkpointed at `ckpt_every`."""
        for c in chunks:
            if self.stop.signum is not None:
                self._stop_on_signal()
            tc = time.time()
            out = chunk_fn(c)
            dt = time.time() - tc
            self.stop.sync()  # multi-process: every process sees a signal at the same chunk
            check_finite(out.rows, self, out.absent)
            last = c == chunks[-1]
            if evaluate is not None and (crossed(out.prev_step, out.step, eval_every) or last):
                for row, v in zip(out.rows, evaluate(c, out), strict=True):
                    row["eval/episodic_return"] = float(v)
            for row in out.rows:
                row["charts/sps"] = (out.step - out.prev_step) * len(out.rows) / max(dt, 1e-9)
                row["time/elapsed_s"] = time.time() - self._t_start
            if not self._opened:
                wall = [k for k in WALL_CLOCK_COLUMNS if k not in out.rows[0]]
                self._open([*out.rows[0], *wall])
            self.store.log_rows(out.rows)
            self.done_steps = out.step
            if on_logged is not None:
                on_logged(c, out)
            due = crossed(out.prev_step, out.step, self.plan.ckpt_every) or out.final
            if due or last or self.stop.signum is not None:
                self.store.sync()
                rows = self.store.rows_written
                meta = {"chunk": c, "global_step": out.step, "rows": rows, **out.meta}
                self.ckpt.save(c, out.state, meta)
            self.store.write_status("running", global_step=out.step, chunk=c)
            advance(self._bar, (out.step - out.prev_step), out.rows, self.plan.progress_keys)
            if self.stop.signum is not None and not last:
                self._stop_on_signal()

    def finish(self) -> None:
        """status.json finished; multi-process: every process waits until it is written."""
        self.store.write_status("finished", global_step=self.done_steps)
        barrier("rl-aux: run finished")

    def _stop_on_signal(self) -> None:
        """Record the stop and raise Preempted (the last logged chunk is already checkpointed)."""
        signum = self.stop.signum
        assert signum is not None
        self.store.sync()
        self.store.write_status("preempted", global_step=self.done_steps, signal=signum)
        latest = self.ckpt.latest_step()
        where = f"checkpoint after chunk {latest}" if latest is not None else "no checkpoint yet"
        raise Preempted(
            signum,
            f"stopped by signal {signum} at global_step {self.done_steps} ({where}) in "
            f"{self.plan.run_dir}; relaunch the same command with resume=true to continue",
        )


def already_finished(run_dir: str, resume: bool) -> bool:
    """A resumed run whose status.json says finished (a relaunched sweep skips it)."""
    return resume and run_status(run_dir).get("status") == "finished"


def check_finite(rows: list[dict], loop: RunLoop, absent: frozenset | set = frozenset()) -> None:
    """Stop with a message naming the loss when any loss of this chunk is NaN/Inf.

    `absent` names columns with no value in this chunk (no gradient step yet): their NaN is
    not divergence. The chunk's rows and state are dropped: metrics.csv and the last
    checkpoint stay the last good ones (or, before the first checkpoint, the message says
    there is none)."""
    run_dir = loop.plan.run_dir
    for row in rows:
        bad = [
            k
            for k, v in row.items()
            if "loss" in k and k not in absent and isinstance(v, float) and not math.isfinite(v)
        ]
        if bad:
            latest = loop.ckpt.latest_step()
            loop.store.write_status("diverged", global_step=row["global_step"], losses=bad)
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


def return_summary(run_dir: str, label: str) -> dict:
    """Per (grid, seed): episode-weighted mean return over the last 10% of steps, last eval."""
    import pandas as pd

    # pandas' inline types make groupby keys Hashable and column picks unions: unchecked
    df: Any = pd.read_csv(os.path.join(run_dir, "metrics.csv"))
    out = {}
    for (g, s), d in df.groupby(["grid", "seed"]):
        tail = d[d["global_step"] > d["global_step"].max() * 0.9]
        ev: Any = d["eval/episodic_return"].dropna() if "eval/episodic_return" in d.columns else []
        w = tail["charts/episodes"].to_numpy()
        r = tail["charts/episodic_return"].fillna(0).to_numpy()
        out[(int(g), int(s))] = {
            "final_return": float((w * r).sum() / w.sum()) if w.sum() > 0 else math.nan,
            "eval_return": float(ev.iloc[-1]) if len(ev) else math.nan,
        }
    return {"run_dir": run_dir, "label": label, "per_seed": out}


class LineProgress:
    """Progress for logs (no TTY): one line per ~10% of the run instead of a redrawn bar."""

    def __init__(self, total: int, initial: int, label: str):
        self.total, self.n, self.label, self.post = total, initial, label, {}
        self.t0, self.next = time.time(), initial + max(total // 10, 1)

    def set_postfix(self, post: dict) -> None:
        self.post = post

    def update(self, n: int) -> None:
        self.n += n
        if self.n >= self.next or self.n >= self.total:
            self.next += max(self.total // 10, 1)
            extra = " ".join(f"{k}={v}" for k, v in self.post.items())
            print(
                f"[{self.label}] {self.n}/{self.total} steps ({100 * self.n / self.total:.0f}%, "
                f"{time.time() - self.t0:.0f}s) {extra}",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        pass


def progress_bar(plan: RunPlan, initial: int) -> Any:
    """A tqdm bar on a TTY, `LineProgress` in logs, None when quiet or logger.progress=false."""
    if plan.quiet or not plan.progress:
        return None
    if not sys.stderr.isatty():
        return LineProgress(plan.total_steps, initial, plan.label)
    from tqdm import tqdm

    return tqdm(
        total=plan.total_steps,
        initial=initial,
        unit="step",
        unit_scale=True,
        desc=plan.label,
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=1.0,
    )


def advance(bar: Any, n: int, rows: list[dict], keys: tuple) -> None:
    """Move the bar by n steps, showing sps and the mean of each `keys` column over rows."""
    if bar is None:
        return
    post = {"sps": f"{rows[0]['charts/sps']:.0f}"}
    for short, col in keys:
        vals = [r[col] for r in rows if isinstance(r.get(col), float) and not math.isnan(r[col])]
        if vals:
            post[short] = f"{np.mean(vals):.4g}"
    bar.set_postfix(post)
    bar.update(n)


__all__ = [
    "WALL_CLOCK_COLUMNS",
    "Chunk",
    "NonFiniteLoss",
    "Preempted",
    "RunLoop",
    "RunPlan",
    "StopFlag",
    "already_finished",
    "crossed",
    "return_summary",
]
