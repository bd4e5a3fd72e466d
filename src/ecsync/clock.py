"""Time as a dependency: every wait in ecsync goes through here so it can stop at once.

Waits (rate pacing, retry backoff, interval sleeps) all take the ``Stop`` signal, so a
SIGINT or SIGTERM ends them immediately instead of after the wait, and tests can hand in a
clock of their own.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch: comparable across processes on one database."""
        ...

    def monotonic(self) -> float: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class Stop:
    """A stop request shared by every task of a run; set by the signal handlers."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.reason = ""

    def set(self, reason: str = "stop requested") -> None:
        if not self._event.is_set():
            self.reason = reason
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()

    async def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; returns True when woken by the stop request."""
        if seconds <= 0:
            return self._event.is_set()
        try:
            await asyncio.wait_for(self._event.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True
