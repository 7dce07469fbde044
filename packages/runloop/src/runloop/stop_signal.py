"""Stop on SIGTERM/SIGINT: a flag the loop polls, so a preempted run checkpoints and exits cleanly.

Example::

    with StopSignal() as stop:
        while not stop.requested:
            ...
"""

from __future__ import annotations

import signal
import threading
from typing import Any

__all__ = ["StopSignal"]


class StopSignal:
    """Records SIGTERM (and SIGINT) instead of dying while the ``with`` block runs; restores the previous handlers
    on exit. Outside the main thread (where Python cannot install handlers) it never turns on."""

    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> None:
        self.signals = signals
        self.requested = False
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        del frame
        self.requested, self.received = True, signum

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()
