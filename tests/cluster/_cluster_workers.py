"""Tiny plain classes placed as Ray actors by the cluster tests (no torch import: small actor processes)."""

from __future__ import annotations

import os
import time


class Counter:
    """Counts calls; its state resets when Ray restarts it (the constructor re-runs)."""

    def __init__(self, start: int = 0) -> None:
        self.value = start
        self.pid = os.getpid()

    def incr(self, by: int = 1) -> int:
        """Add ``by`` and return the new value."""
        self.value += by
        return self.value

    def echo(self, x: object) -> object:
        """Return ``x`` unchanged."""
        return x

    def sleep(self, seconds: float) -> float:
        """Sleep, then return the seconds slept."""
        time.sleep(seconds)
        return seconds

    def getpid(self) -> int:
        """Process id of this actor (changes after a restart)."""
        return self.pid

    def crash(self) -> None:
        """Exit the worker process abruptly, like a segfault or an OOM kill."""
        os._exit(1)
