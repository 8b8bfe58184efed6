"""Clean stops: SIGTERM/SIGINT are recorded and acted on between chunks, never mid-chunk.

A compiled chunk cannot be interrupted, so the signal handler only sets a flag; the trainer
checks it after every chunk, checkpoints and raises `Preempted` (the CLI exits 128 + signal,
the convention SLURM and shells use). A second signal stops at once (the default behaviour).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


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
    """Context manager: while active, SIGTERM/SIGINT set `self.signum` instead of killing."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:  # second signal: stop now, as without us
            self._restore()
            signal.raise_signal(signum)
            return
        self.signum = signum

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():  # handlers: main thread only
            for s in STOP_SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def _restore(self) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous.clear()

    def __exit__(self, *exc) -> None:
        self._restore()
