"""Stopping a run on request: SIGINT, SIGTERM and SIGHUP end it at the next step with a checkpoint.

A signal handler only records the request; the trainer checks it where its state is
consistent (after an optimizer step, after an epoch) and there writes ``last.pt``,
releases the run directory and raises :class:`TrainingInterrupted`. Under torchrun the
ranks agree on the step by summing their requests in one small all-reduce, so every rank
stops after the same step. A second signal stops at once (KeyboardInterrupt); the last
checkpoint written stays valid, since every write is atomic.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["STOP_SIGNALS", "StopRequest", "TrainingInterrupted"]

STOP_SIGNALS = tuple(
    s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None
)


class TrainingInterrupted(KeyboardInterrupt):
    """The run stopped on a signal after writing a resumable checkpoint; ``signum`` says which."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


class StopRequest:
    """The signal received while :meth:`installed` is active (``signum``), or None."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:  # asked twice: stop now
            raise KeyboardInterrupt
        self.signum = signum

    @contextmanager
    def installed(self) -> Iterator[StopRequest]:
        """Handle the stop signals in this block (main thread only; elsewhere nothing changes)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
        for s in STOP_SIGNALS:
            signal.signal(s, self._handler)
        try:
            yield self
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    @staticmethod
    def name(signum: int) -> str:
        return signal.Signals(signum).name
