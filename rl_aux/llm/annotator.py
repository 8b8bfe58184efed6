"""Asynchronous annotator: a background thread fills the reward table from the judge/matcher.

The host loop only interns captions and submits new ids; labels land in a numpy table whose
jnp snapshot the jitted lookup reads. Unlabelled rows pay 0 until filled (late labels count
from the next snapshot on). Metrics: table fill rate, cache hit rate, misses, unknowns.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import jax
import jax.numpy as jnp
import numpy as np

from rl_aux.llm.judge import LLMJudge
from rl_aux.llm.matcher import Matcher
from rl_aux.llm.prompts import Subgoal


class Annotator:
    """Labels caption ids in a background thread (`kind` judge: 0/1 verdicts; ellm: cosines)."""

    def __init__(
        self,
        kind: str,
        subgoals: list[Subgoal],
        capacity: int,
        text_of,
        judge: LLMJudge | None = None,
        matcher: Matcher | None = None,
        prefilter: float | None = None,
        workers: int = 4,
        batch: int = 32,
    ):
        if kind not in ("judge", "ellm"):
            raise ValueError(f"annotator kind={kind!r}; accepted: judge, ellm")
        if kind == "judge" and judge is None:
            raise ValueError("the judge annotator needs an LLMJudge")
        if (kind == "ellm" or prefilter is not None) and matcher is None:
            raise ValueError("the ellm annotator and the pre-filter need a Matcher")
        self.kind, self.subgoals, self.text_of = kind, subgoals, text_of
        self.judge, self.matcher, self.prefilter, self.batch = judge, matcher, prefilter, batch
        self.values = np.zeros((capacity, len(subgoals)), np.float32)
        self.labelled = np.zeros(capacity, bool)
        self.submitted = 0
        self.prefiltered = 0
        self._lock = threading.Lock()
        self._version, self._snap_version, self._snap = 0, -1, None
        self._q: queue.Queue = queue.Queue()
        self._pool = ThreadPoolExecutor(max_workers=workers)
        self._stop = threading.Event()
        self.error: Exception | None = None  # the last labelling error (the run goes on)
        self._thread = threading.Thread(target=self._run, name="llm-annotator", daemon=True)
        self._thread.start()

    def submit(self, ids: list[int]) -> None:
        """Queue new caption ids for labelling (non-blocking)."""
        for cid in ids:
            self.submitted += 1
            self._q.put(cid)

    def _label(self, ids: list[int]) -> None:
        texts = [self.text_of(c) for c in ids]
        if self.kind == "ellm":
            rows = cast(Matcher, self.matcher).ellm_values(texts)  # checked in __init__
            self._write(ids, rows, [True] * len(ids))
            return
        keep = np.ones(len(ids), bool)
        if self.prefilter is not None:
            keep = cast(Matcher, self.matcher).scores(texts).max(-1) >= self.prefilter
            self.prefiltered += int((~keep).sum())
        rows = np.zeros((len(ids), len(self.subgoals)), np.float32)
        done = list(~keep)
        todo = [i for i in range(len(ids)) if keep[i]]
        judge = cast(LLMJudge, self.judge)  # checked in __init__
        verdicts = list(self._pool.map(lambda i: judge.judge(self.subgoals, texts[i]), todo))
        gid = {g.id: j for j, g in enumerate(self.subgoals)}
        for i, v in zip(todo, verdicts, strict=True):
            if v is not None:  # unknown/miss: stays unlabelled, pays 0
                rows[i, [gid[x] for x in v]] = 1.0
                done[i] = True
        self._write(ids, rows, done)

    def _write(self, ids, rows, done) -> None:
        with self._lock:
            for cid, row, ok in zip(ids, rows, done, strict=True):
                if ok:
                    self.values[cid] = row
                    self.labelled[cid] = True
            self._version += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._q.get(timeout=0.05)
            except queue.Empty:
                continue
            ids = [first]
            while len(ids) < self.batch:
                try:
                    ids.append(self._q.get_nowait())
                except queue.Empty:
                    break
            try:
                self._label(ids)
            except Exception as e:  # never kill the training run from the labelling thread
                self.error = e
            finally:
                for _ in ids:
                    self._q.task_done()

    def drain(self, timeout: float | None = None) -> bool:
        """Block until every submitted id is processed (tests, frozen-table evaluation)."""
        done = threading.Event()
        threading.Thread(target=lambda: (self._q.join(), done.set()), daemon=True).start()
        return done.wait(timeout)

    def table(self) -> jnp.ndarray:
        """The current [N_max, G] table as a jnp array (re-uploaded only when it changed)."""
        with self._lock:
            if self._snap_version != self._version:
                self._snap = jnp.asarray(self.values)
                self._snap_version = self._version
            return cast(jax.Array, self._snap)  # set just above on the first call

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False)
